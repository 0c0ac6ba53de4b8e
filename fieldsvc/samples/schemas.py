"""marshmallow at the samples edge (samples are written by sync push; officials only re-file held ones)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..schemas import PageArgs
from .models import STATES


class SampleArgs(PageArgs):
    parcel = fields.String(validate=validate.Length(min=1, max=64))
    state = fields.String(validate=validate.OneOf(STATES))
    include_deleted = fields.Boolean(load_default=False)


class MoveToParcelIn(Schema):
    parcel = fields.String(required=True, validate=validate.Length(min=1, max=64))
