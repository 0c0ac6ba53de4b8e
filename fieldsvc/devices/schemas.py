"""marshmallow schemas for devices."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..places.schemas import CODE, DIVISION_CODE
from ..schemas import PageArgs

CODES = {"validate": validate.Length(max=5000)}


class DeviceIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    user = fields.String(required=True, validate=validate.Length(min=1, max=64))
    villages = fields.List(fields.String(validate=DIVISION_CODE), load_default=list, **CODES)
    parcels = fields.List(fields.String(validate=CODE), load_default=list, **CODES)


class DevicePatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    villages = fields.List(fields.String(validate=DIVISION_CODE), **CODES)
    parcels = fields.List(fields.String(validate=CODE), **CODES)
    base_version = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))  # refuse a stale change (409)


class DeviceArgs(PageArgs):
    include_revoked = fields.Boolean(load_default=False)


class PlanIn(Schema):
    """``POST /devices/<id>/plan``: parcel codes ranked best first (``sampling/next``'s order)."""
    parcels = fields.List(fields.String(validate=CODE), required=True, validate=validate.Length(max=500))
    assign = fields.Boolean(load_default=False)  # add parcels outside the device's assignment to it
