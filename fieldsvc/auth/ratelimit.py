"""Fixed-window limits kept in the database (shared by every app process)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..dbtypes import UTCDateTime, utcnow
from ..dbutil import dialect_name
from ..extensions import db
from .models import RateLimitWindow


def seconds_left(window_start: datetime, window_s: int, now: datetime) -> int:
    """Whole seconds (at least 1) until a window that started at ``window_start`` ends."""
    return max(1, math.ceil((window_start + timedelta(seconds=window_s) - now).total_seconds()))


def hit(key: str, window_s: int, now: datetime | None = None, *, connection: Any = None) -> tuple[int, datetime]:
    """Count one event; a window that has ended starts again at 1. Returns (count, window start).

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, built once per engine: the public
    verify page runs this on every scan.
    """
    now = now or utcnow()
    params = {"key": key, "now": now, "now_again": now, "cutoff": now - timedelta(seconds=window_s)}
    if connection is not None:  # a connection of its own (committed apart from the request)
        count, started = connection.execute(_hit_statement(connection.dialect.name), params).one()
    else:
        count, started = db.session.execute(_hit_statement(dialect_name()), params).one()
    return int(count), started


@lru_cache(maxsize=4)
def _hit_statement(dialect: str) -> Any:
    table = RateLimitWindow.__table__
    expired = table.c.window_start <= bindparam("cutoff", type_=UTCDateTime)
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = insert.values(key=bindparam("key"), window_start=bindparam("now", type_=UTCDateTime), count=1)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": case((expired, 1), else_=table.c.count + 1),
            "window_start": case((expired, bindparam("now_again", type_=UTCDateTime)), else_=table.c.window_start),
        },
    ).returning(table.c.count, table.c.window_start)


def reset(key: str) -> None:
    db.session.execute(delete(RateLimitWindow).where(RateLimitWindow.key == key))


def give_back(key: str) -> None:
    """Take one event back from ``key``'s window (never below zero)."""
    db.session.execute(update(RateLimitWindow).where(RateLimitWindow.key == key, RateLimitWindow.count > 0)
                       .values(count=RateLimitWindow.count - 1))


def count(key: str) -> int:
    return int(db.session.execute(select(RateLimitWindow.count).where(RateLimitWindow.key == key)).scalar() or 0)
