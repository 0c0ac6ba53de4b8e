"""marshmallow for the exports' query string (the edge only)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..lab.models import STATUSES

CODE = validate.Length(min=1, max=64)


class ExportArgs(Schema):
    lang = fields.String(load_default="en", validate=validate.OneOf(("zh", "en")),
                         metadata={"description": "language of the CSV and XLSX headers"})
    county = fields.String(validate=CODE)
    village = fields.String(validate=CODE)
    farm_park = fields.String(validate=CODE)
    parcel = fields.String(validate=CODE)
    sample = fields.String(validate=CODE, metadata={"description": "results: a sample id or bag code"})
    state = fields.String(validate=validate.OneOf(("awaiting_media", "complete", "held", "needs_review")))
    status = fields.String(validate=validate.OneOf((*STATUSES, "valid", "revoked", "expired", "superseded")),
                           metadata={"description": "results: review status; certificates: status"})
    analyte = fields.String(validate=validate.Length(min=1, max=16))
    import_id = fields.Integer(validate=validate.Range(min=1, max=2**62))
    current = fields.Boolean(metadata={"description": "results: only versions not superseded (default true)"})
    verdict = fields.String(validate=validate.Length(min=1, max=32))
    rule_pack = fields.String(validate=validate.Length(min=1, max=32))
    subject_type = fields.String(validate=validate.OneOf(("parcel", "village", "farm_park")))
