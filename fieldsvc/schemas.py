"""Schema pieces shared by every domain's edge."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validates


class PageArgs(Schema):
    """``?limit=&cursor=``; limit is bounded by ``MAX_PAGE_SIZE``."""

    limit = fields.Integer(load_default=None)
    cursor = fields.String(load_default=None)

    @validates("limit")
    def _limit(self, value: int | None, **_kwargs) -> None:
        if value is not None and not 1 <= value <= current_app.config["MAX_PAGE_SIZE"]:
            raise ValidationError(f"must be between 1 and {current_app.config['MAX_PAGE_SIZE']}")


def page_limit(args: dict) -> int:
    return args.get("limit") or current_app.config["DEFAULT_PAGE_SIZE"]
