"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; SQLite would otherwise hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``, as the contract asks."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sqlite_datetime_text(value: datetime | None) -> str | None:
    """What a ``UTCDateTime`` column stores on SQLite, without SQLAlchemy's two processors (the
    type's, then the dialect's ``%``-format): ~1 µs instead of ~2.5 µs per value, for bulk inserts.
    The same text to the byte (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC): SQLite compares it as text."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # (what utcnow and the RFC 3339 parser make) no conversion; cut the "+00:00"
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is None:
        raise ValueError("naive datetime refused; use an aware UTC datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
