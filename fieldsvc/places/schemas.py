"""marshmallow schemas for places (the edge only)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..schemas import PageArgs
from .models import LAND_USES, LEVELS

CODE = validate.Regexp(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$", error="1–64 letters, digits, '.', '-', '_'")
DIVISION_CODE = validate.Regexp(r"^\d{6}(\d{3}){0,2}$", error="a 6, 9 or 12 digit division code")
NAME = validate.Length(min=1, max=120)


class RegionIn(Schema):
    code = fields.String(required=True, validate=DIVISION_CODE)
    name = fields.String(required=True, validate=NAME)
    name_en = fields.String(load_default=None, allow_none=True, validate=NAME)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    parent = fields.String(load_default=None, allow_none=True, validate=DIVISION_CODE)


class FarmParkIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    name_en = fields.String(load_default=None, allow_none=True, validate=NAME)
    county = fields.String(required=True, validate=DIVISION_CODE)
    geometry = fields.Dict(load_default=None, allow_none=True)


class ParcelProperties(Schema):
    """A feature's properties in a bulk import."""

    code = fields.String(required=True, validate=CODE)
    village = fields.String(required=True, validate=DIVISION_CODE)
    land_use = fields.String(required=True, validate=validate.OneOf(LAND_USES))
    farm_park = fields.String(load_default=None, allow_none=True, validate=CODE)
    crop = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    area_m2 = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                           validate=validate.Range(min=0, min_inclusive=False, max=1e9))


class ParcelPatch(Schema):
    village = fields.String(validate=DIVISION_CODE)
    land_use = fields.String(validate=validate.OneOf(LAND_USES))
    farm_park = fields.String(allow_none=True, validate=CODE)
    crop = fields.String(allow_none=True, validate=validate.Length(max=64))
    area_m2 = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(min=0, min_inclusive=False,
                                                                                     max=1e9))
    geometry = fields.Dict()
    base_version = fields.Integer(validate=validate.Range(min=1))


class RegionArgs(PageArgs):
    level = fields.String(validate=validate.OneOf(LEVELS))
    parent = fields.String(validate=DIVISION_CODE)
    county = fields.String(validate=DIVISION_CODE)


class FarmParkArgs(PageArgs):
    county = fields.String(validate=DIVISION_CODE)


class ParcelArgs(PageArgs):
    village = fields.String(validate=DIVISION_CODE)
    farm_park = fields.String(validate=CODE)
    land_use = fields.String(validate=validate.OneOf(LAND_USES))
    county = fields.String(validate=DIVISION_CODE)
    include_deleted = fields.Boolean(load_default=False)
