"""Small helpers that hide the few SQL differences between SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import CursorResult, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db

# keys of a pooled connection's ``info``: a thread checkpoints its SQLite database after commits;
# its automatic checkpoint is off until it returns to the pool (``defer_checkpoint``)
CHECKPOINT_THREAD = "fieldsvc.checkpoint_thread"
AUTOCHECKPOINT_OFF = "fieldsvc.wal_autocheckpoint_off"


def dialect_name() -> str:
    return db.session.get_bind().dialect.name


def upsert(table: Table):
    """``INSERT ... ON CONFLICT`` for the current engine (both support it)."""
    return (postgresql.insert if dialect_name() == "postgresql" else sqlite.insert)(table)


def core_execute(statement: Any, params: Mapping[str, Any] | None = None) -> CursorResult:
    """Run a Core statement on the session's connection (same transaction) without the ORM layer.

    For column SELECTs on hot paths (a sync push runs several per request): the ORM's per-row and
    per-statement handling cost more than the query. Pending ORM changes are flushed first, as
    ``Session.execute`` would.
    """
    db.session.flush()
    return db.session.connection().execute(statement, params)


def lock_for_transaction(name: str) -> None:
    """Serialise the transactions that take the lock ``name`` until they end.

    PostgreSQL: a transaction-level advisory lock on a 64-bit key derived from the name (released
    at commit or rollback; statements after it see what the previous holder committed). SQLite
    needs nothing: a write transaction holds the database's write lock from its first statement.
    """
    if dialect_name() != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def defer_checkpoint() -> None:
    """Leave this transaction's WAL checkpoint to the checkpoint thread, where one runs (SQLite).

    For a transaction that writes gigabytes (a county run of a million parcels): at its commit
    SQLite's automatic checkpoint would copy the whole WAL back into the database file inside
    the commit (~8 s), while the caller waits on one core; the thread copies it while the
    caller goes on (the element maps that follow a run are computed meanwhile). The connection
    gets the automatic checkpoint back when it returns to the pool
    (``fieldsvc._checkpoint_in_background``).
    Nothing changes where no thread checkpoints (PostgreSQL, or an interval of 0)."""
    conn = db.session.connection()
    if not conn.info.get(CHECKPOINT_THREAD):
        return
    conn.info[AUTOCHECKPOINT_OFF] = True
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
