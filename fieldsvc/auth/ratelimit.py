"""Fixed-window limits kept in the database (shared by every app process)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select

from ..dbtypes import UTCDateTime, utcnow
from ..dbutil import upsert
from ..extensions import db
from .models import RateLimitWindow


def retry_after(key: str, limit: int, window_s: int, now: datetime | None = None) -> int | None:
    """Seconds until ``key`` may try again, or None when it is under its limit."""
    now = now or utcnow()
    row = db.session.get(RateLimitWindow, key)
    if row is None or row.count < limit:
        return None
    ends = row.window_start + timedelta(seconds=window_s)
    if ends <= now:
        return None
    return max(1, math.ceil((ends - now).total_seconds()))


def hit(key: str, window_s: int, now: datetime | None = None) -> None:
    """Count one event; a window that has ended starts again at 1."""
    now = now or utcnow()
    table = RateLimitWindow.__table__
    expired = table.c.window_start <= literal(now - timedelta(seconds=window_s), UTCDateTime)
    stmt = upsert(table).values(key=key, window_start=now, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": case((expired, 1), else_=table.c.count + 1),
            "window_start": case((expired, literal(now, UTCDateTime)), else_=table.c.window_start),
        },
    )
    db.session.execute(stmt)


def reset(key: str) -> None:
    db.session.execute(delete(RateLimitWindow).where(RateLimitWindow.key == key))


def count(key: str) -> int:
    return int(db.session.execute(select(RateLimitWindow.count).where(RateLimitWindow.key == key)).scalar() or 0)
