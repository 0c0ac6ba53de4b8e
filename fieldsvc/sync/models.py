"""Sync bookkeeping: idempotent push receipts and the cursor epoch.

(The conflicts a push keeps are sample versions: ``fieldsvc.samples.models.SyncConflict``.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db


class IdempotentPush(db.Model):
    """A push's stored response per (caller, Idempotency-Key): a replay gets the same bytes."""

    __tablename__ = "sync_idempotency"

    actor_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=200)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SyncMeta(db.Model):
    """Small server-wide sync values, e.g. the cursor ``epoch`` of this database's life."""

    __tablename__ = "sync_meta"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
