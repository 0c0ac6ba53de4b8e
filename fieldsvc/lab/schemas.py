"""marshmallow schemas for lab results (the edge only)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..schemas import PageArgs
from .models import STATUSES

CODE = validate.Length(min=1, max=64)


class ImportArgs(Schema):
    dry_run = fields.Boolean(load_default=False)


class ImportListArgs(PageArgs):
    pass


class ResultArgs(PageArgs):
    sample = fields.String(validate=validate.Length(min=1, max=64), metadata={
        "description": "a sample id or its bag code (case and spaces do not matter)"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    analyte = fields.String(validate=validate.Length(min=1, max=16))
    import_id = fields.Integer(validate=validate.Range(min=1))
    current = fields.Boolean(load_default=False, metadata={"description": "only versions not superseded"})


class RejectIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ResultId(fields.Field):
    """A result id as the API writes it (a string of digits); a JSON integer is taken too."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        text = str(value).strip()
        if not text or len(text) > 32:
            raise self.make_error("invalid")
        return text

    default_error_messages = {"invalid": "an id is a string (or integer) of at most 32 characters"}


BULK_IDS = validate.Length(min=1, max=10_000, error="between 1 and 10,000 ids")


class BulkApproveIn(Schema):
    ids = fields.List(ResultId(), required=True, validate=BULK_IDS)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000),
                           metadata={"description": "kept in the audit trail"})


class BulkRejectIn(Schema):
    ids = fields.List(ResultId(), required=True, validate=BULK_IDS)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CertifiedValueIn(Schema):
    analyte = fields.String(required=True, validate=validate.Length(min=1, max=64))
    value = fields.Decimal(required=True, allow_nan=False, validate=validate.Range(min=0, max=10**9))
    u = fields.Decimal(load_default=None, allow_none=True, allow_nan=False,
                       validate=validate.Range(min=0, min_inclusive=False, max=10**9))
    unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32),
                         metadata={"description": "defaults to the analyte's canonical unit"})
    reference_only = fields.Boolean(load_default=False)


class ReferenceMaterialIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\S(.{0,62}\S)?$",
                                                                 error="1–64 characters, no outer spaces"))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    values = fields.List(fields.Nested(CertifiedValueIn), required=True, validate=validate.Length(min=1, max=100))
