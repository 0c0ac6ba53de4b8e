"""Sync bookkeeping: conflicts kept for an official, idempotent push receipts, the cursor epoch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

CONFLICT_KINDS = ("hard", "soft", "id_conflict", "duplicate_sample_code")
CONFLICT_STATUSES = ("open", "resolved")


class SyncConflict(db.Model):
    """Both bodies of a clash, so nothing a phone sent is lost; the same incoming body is kept once."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (
        UniqueConstraint("record_id", "kind", "incoming_hash"),
        Index("ix_sync_conflicts_status_county", "status", "county_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_type: Mapped[str] = mapped_column(String(16), default="sample")
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    code: Mapped[str] = mapped_column(String(40))
    base_version: Mapped[int | None] = mapped_column(Integer)
    server_version: Mapped[int | None] = mapped_column(Integer)
    server_record_id: Mapped[str | None] = mapped_column(String(36))
    server_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    incoming_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    incoming_hash: Mapped[str] = mapped_column(String(64))
    hard_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    soft_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    provisional: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resolved_version: Mapped[int | None] = mapped_column(Integer)
    resolved_by: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    county_code: Mapped[str | None] = mapped_column(String(12))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
