"""Small helpers that hide the few SQL differences between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db


def dialect_name() -> str:
    return db.session.get_bind().dialect.name


def upsert(table: Table):
    """``INSERT ... ON CONFLICT`` for the current engine (both support it)."""
    return (postgresql.insert if dialect_name() == "postgresql" else sqlite.insert)(table)


def core_execute(statement: Any) -> CursorResult:
    """Run a Core statement on the session's connection (same transaction) without the ORM layer.

    For column SELECTs on hot paths (a sync push runs several per request): the ORM's per-row and
    per-statement handling cost more than the query. Pending ORM changes are flushed first, as
    ``Session.execute`` would.
    """
    db.session.flush()
    return db.session.connection().execute(statement)
