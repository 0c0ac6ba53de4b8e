"""Small helpers that hide the few SQL differences between SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db


def dialect_name() -> str:
    return db.session.get_bind().dialect.name


def upsert(table: Table):
    """``INSERT ... ON CONFLICT`` for the current engine (both support it)."""
    return (postgresql.insert if dialect_name() == "postgresql" else sqlite.insert)(table)
