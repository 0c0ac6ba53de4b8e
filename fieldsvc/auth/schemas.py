"""marshmallow schemas for accounts."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class TokenRequest(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
