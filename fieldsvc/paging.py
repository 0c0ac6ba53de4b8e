"""Keyset pagination and its opaque cursors: what a service returns for one page of a list. No Flask."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import Select

from .errors import validation_failed
from .extensions import db


@dataclass(frozen=True)
class Page:
    """One page of a list as the API shows it: the items and the cursor of the next page (or None)."""

    items: list[Any]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(values: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, param: str = "cursor") -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict):
            raise ValueError
        return data
    except (ValueError, TypeError):
        raise validation_failed({param: ["is not a cursor this server issued"]}) from None


def paginate(stmt: Select, key_column: Any, limit: int, cursor: str | None, *, newest_first: bool = False,
             param: str = "cursor") -> tuple[list[Any], str | None]:
    """Keyset pagination of ORM rows on one unique, increasing column; ``newest_first`` walks it
    from the top down. ``param`` names the query parameter the cursor came in (for the 422)."""
    after = decode_cursor(cursor, param)
    if after is not None:
        key = after.get("k")
        if type(key) is not int or not -(2**63) <= key < 2**63:  # (a bigger one would overflow the column)
            raise validation_failed({param: ["is not a cursor this server issued"]})
        stmt = stmt.where(key_column < key if newest_first else key_column > key)
    order = key_column.desc() if newest_first else key_column
    rows = list(db.session.scalars(stmt.order_by(order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"k": getattr(rows[-1], key_column.key)}) if more and rows else None
    return rows, next_cursor
