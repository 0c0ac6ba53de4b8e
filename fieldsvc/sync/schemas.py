"""marshmallow at the sync edge. The push body is checked by ``push`` per record (no marshmallow on
the per-record hot path: it cost more than the rest of the push; see bench/sync.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..samples.models import CONFLICT_KINDS, CONFLICT_STATUSES
from ..schemas import PageArgs

RESOLUTIONS = ("keep_server", "take_incoming", "merge")


class PullArgs(PageArgs):
    pass


class ConflictArgs(PageArgs):
    record = fields.String(validate=validate.Length(min=1, max=36))
    status = fields.String(validate=validate.OneOf(CONFLICT_STATUSES))
    kind = fields.String(validate=validate.OneOf(CONFLICT_KINDS))


class ConflictResolveIn(Schema):
    resolution = fields.String(required=True, validate=validate.OneOf(RESOLUTIONS))
    values = fields.Dict(keys=fields.String(), load_default=dict)


PUSH_BODY = {
    "type": "object", "required": ["records"],
    "properties": {
        "device_sent_at": {"type": "string", "format": "date-time"},
        "schema_version": {"type": "integer", "enum": [1]},
        "records": {"type": "array", "items": {"type": "object", "required": ["id", "data"], "properties": {
            "type": {"type": "string", "enum": ["sample"]}, "id": {"type": "string", "format": "uuid"},
            "base_version": {"type": "integer", "nullable": True}, "deleted": {"type": "boolean"},
            "data": {"type": "object"}}}},
    },
}
