"""Sampling plans: a ranked list of parcels an official sends to one device (``POST /devices/<id>/plan``).

A plan is never edited: sending another list makes a new plan (``number`` + 1) and withdraws the
open points of the one before, whose rows stay (``status = replaced``) with their audit events, so
what a device was asked to do, when and by whom is never lost. Each planned point carries a change
``seq`` like every pulled row, so it comes down the device's pull (change kind ``planned_point``)
when it is made, closed by a sample, or withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

PLAN_STATUSES = ("active", "replaced")
POINT_STATUSES = ("open", "closed", "withdrawn")


class SamplingPlan(db.Model):
    """One list sent to one device; ``digest`` (of the ordered parcel codes) makes a retry a no-op."""

    __tablename__ = "sampling_plans"
    __table_args__ = (UniqueConstraint("device_pk", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per device
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)
    parcels: Mapped[list[str]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlannedPoint(db.Model):
    """One parcel of a plan with its suggested point; ``key`` (``<plan number>:<parcel>``) is the pull id."""

    __tablename__ = "planned_points"
    __table_args__ = (UniqueConstraint("plan_id", "parcel_code"),
                      Index("ix_planned_points_device_seq", "device_pk", "seq"),
                      # status first: every reader asks for the open points (a sync push whether any is
                      # open at all, plans.close_for_samples; pulls and tiles of some parcels)
                      Index("ix_planned_points_status_parcel", "status", "parcel_code"),
                      Index("ix_planned_points_lon_lat", "lon", "lat"))

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("sampling_plans.id"))
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    key: Mapped[str] = mapped_column(String(80))
    parcel_code: Mapped[str] = mapped_column(String(64))
    village_code: Mapped[str | None] = mapped_column(String(12))
    county_code: Mapped[str | None] = mapped_column(String(12))
    rank: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(24))  # not_assessed | needs_sampling | requested
    sigma: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    nearest_sample_m: Mapped[float | None] = mapped_column(Float)
    # Live samples already on the parcel when it was planned: they do not close it (a new one does).
    prior_samples: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_by_sample: Mapped[str | None] = mapped_column(String(36))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
