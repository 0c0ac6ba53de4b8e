"""marshmallow schemas for grading (the edge only)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..schemas import PageArgs

PACK_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="a rule pack code such as green_food_soil")
SCOPE_KEYS = ("county", "village", "farm_park", "parcel")


class ScopeIn(Schema):
    county = fields.String(validate=validate.Length(min=1, max=64))
    village = fields.String(validate=validate.Length(min=1, max=64))
    farm_park = fields.String(validate=validate.Length(min=1, max=64))
    parcel = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _one(self, data: dict, **_kwargs) -> None:
        if len(data) != 1:
            raise ValidationError(f"give exactly one of {', '.join(SCOPE_KEYS)}", field_name="scope")


class RunIn(Schema):
    scope = fields.Nested(ScopeIn, required=True)
    rule_pack = fields.String(load_default=None, allow_none=True, validate=PACK_CODE)


class GradeArgs(Schema):
    rule_pack = fields.String(load_default=None, validate=PACK_CODE)


class ElementMapArgs(GradeArgs):
    overlay = fields.Boolean(load_default=False)  # .png only: the classes alone, on Web Mercator, for a web map


class HistoryArgs(PageArgs):
    rule_pack = fields.String(load_default=None, validate=PACK_CODE)


class NextSamplesArgs(Schema):
    county = fields.String(load_default=None, validate=validate.Length(min=1, max=12))
    village = fields.String(load_default=None, validate=validate.Length(min=1, max=12))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    rule_pack = fields.String(load_default=None, validate=PACK_CODE)

    @validates_schema
    def _one(self, data: dict, **_kwargs) -> None:
        if (data.get("county") is None) == (data.get("village") is None):
            raise ValidationError("give exactly one of county, village", field_name="county")
