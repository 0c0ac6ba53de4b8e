"""Soil samples as synced from field devices (DESIGN §3).

The client's UUID is the primary key and the bag barcode is unique, both
enforced by the database rather than by check-then-insert, so parallel
retries can never make two rows. ``SyncConflict`` keeps both bodies of a clash a push found
(its table keeps the name ``sync_conflicts``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

STATES = ("awaiting_media", "complete", "held", "needs_review")


class Sample(db.Model):
    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_parcel_state", "parcel_code", "state"),
                      Index("ix_samples_lon_lat", "lon", "lat"))  # map tiles: the points in a tile

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parcel_code: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)
    state: Mapped[str] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    collected_at_raw: Mapped[str | None] = mapped_column(String(64))
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clock_skew_s: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    mock_location: Mapped[bool] = mapped_column(Boolean, default=False)
    location_raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    depth_top_cm: Mapped[float | None] = mapped_column(Float)
    depth_bottom_cm: Mapped[float | None] = mapped_column(Float)
    sample_type: Mapped[str | None] = mapped_column(String(32))
    land_use_observed: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # answers to the uploaded form extension's questions (DESIGN §4.3 ``extra``), typed, and the
    # extension version they were given under; null for a sample without answers (most of them)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    extension_version: Mapped[int | None] = mapped_column(Integer)
    # The canonical JSON text of the pushed-data fields (``samples.services.data_text``), written
    # with every insert and edit so a pull splices it in unparsed; null on rows written before it
    # existed or by hand (a pull then builds it from the columns).
    data_json: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    device_pk: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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


class SampleClient(db.Model):
    """Who made one sample version: the channel (``sync`` or ``openrosa``), the device id (the
    device's id for a sync push, Collect's ``deviceID`` for ODK Collect) and the User-Agent."""

    __tablename__ = "sample_clients"

    sample_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    device_pk: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
