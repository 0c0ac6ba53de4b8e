"""marshmallow at the samples edge (reads only; samples are written by sync push)."""

from __future__ import annotations

from marshmallow import fields, validate

from ..schemas import PageArgs
from .models import STATES


class SampleArgs(PageArgs):
    parcel = fields.String(validate=validate.Length(min=1, max=64))
    state = fields.String(validate=validate.OneOf(STATES))
    include_deleted = fields.Boolean(load_default=False)
