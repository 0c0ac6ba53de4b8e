"""marshmallow schemas for certificates (the edge only)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from ..places.schemas import CODE
from ..schemas import PageArgs
from .models import KINDS, SUBJECT_TYPES

STATUSES = ("valid", "expired", "revoked", "superseded")


def _meaningful(text: str) -> None:
    if len(text.strip()) < 3:
        raise ValidationError("Give a reason of at least 3 characters; the public page shows it.")


class CertificateIn(Schema):
    subject_type = fields.String(required=True, validate=validate.OneOf(SUBJECT_TYPES))
    code = fields.String(required=True, validate=CODE)
    valid_days = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=3 * 366))
    rule_pack = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    area_m2 = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, max=1e10))
    crop = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


class LandLabelIn(Schema):
    subject_type = fields.String(required=True, validate=validate.OneOf(SUBJECT_TYPES))
    code = fields.String(required=True, validate=CODE)


class RevokeIn(Schema):
    reason = fields.String(required=True, validate=[validate.Length(max=500), _meaningful])


class CertificateArgs(PageArgs):
    subject = fields.String(load_default=None, validate=CODE)
    subject_type = fields.String(load_default=None, validate=validate.OneOf(SUBJECT_TYPES))
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))


def _sheet_fields() -> dict[str, fields.Field]:
    """What a label sheet is printed on and why it may pass a quota: the GET of ``labels.pdf`` and the
    POST of ``label-sheets`` take the same."""
    return {"template": fields.String(load_default="a4_3x7", validate=validate.Length(min=1, max=64)),
            "start_slot": fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000)),
            "override_reason": fields.String(load_default=None, allow_none=True,
                                             validate=[validate.Length(max=500), _meaningful])}


class LabelArgs(Schema.from_dict(_sheet_fields())):  # type: ignore[misc]
    codes = fields.String(required=True, validate=validate.Length(min=1, max=40_000))
    serials = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))


class LabelSheetIn(Schema.from_dict(_sheet_fields())):  # type: ignore[misc]
    """``POST /api/v1/label-sheets``: codes as a list or ``"A,B C"``; ``serials`` labels per listed code."""

    codes = fields.Raw(required=True)
    serials = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))


class SheetPdfArgs(Schema):
    """Reprint a sheet on another template or from another slot (the same serials)."""

    template = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    start_slot = fields.Integer(load_default=None, validate=validate.Range(min=0, max=10_000))


class SerialArgs(Schema):
    flagged = fields.Boolean(load_default=False)
    code = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class TokenIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2048))
