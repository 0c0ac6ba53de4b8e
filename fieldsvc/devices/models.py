"""A device acts as its owner (a sampler) within its assignment of villages and parcels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db


class Device(db.Model):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    county_code: Mapped[str | None] = mapped_column(String(12))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The device token, encrypted with a key derived from SECRET_KEY, so that the device API and the
    # console can show ODK Collect's settings QR again (``fieldsvc.devices.collect``); null for
    # devices registered before it existed.
    collect_key: Mapped[str | None] = mapped_column(Text)


class DeviceAssignment(db.Model):
    """One assigned village or parcel; removal keeps the row (inactive) so pull can send deletes."""

    __tablename__ = "device_assignments"
    __table_args__ = (UniqueConstraint("device_pk", "kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # village | parcel
    code: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
