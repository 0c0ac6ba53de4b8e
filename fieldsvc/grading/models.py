"""Grades (kept as history), maintained roll-up sums, parcel memberships, grading runs, pack verifications.

Decimal quantities (areas in the sums) are stored as exact decimal text: SQLite has no decimal
type, and the incremental roll-up must equal a full recompute to the last digit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

SUBJECT_TYPES = ("parcel", "village", "farm_park", "county")
AREA_TYPES = ("village", "farm_park", "county")
_ID = BigInteger().with_variant(Integer, "sqlite")


class Grade(db.Model):
    """One grade of one subject under one rule pack; a new row only when inputs or result change.

    The current grade of a subject is the row with ``superseded_by`` NULL.
    """

    __tablename__ = "grades"
    __table_args__ = (
        Index("ix_grades_subject", "subject_type", "subject_code", "rule_pack", "superseded_by"),
        # a map tile's grade look-up (thousands of parcels): the current parcel grades, read from the index alone
        # (PostgreSQL: strict_control included, so the console's live roll-up reads the index alone; SQLite would
        # need the condition's columns too, which cost a 1,000,000-parcel county run 2 s: migration d8b2f4a61c37)
        Index("ix_grades_current_parcel", "subject_code", "rule_pack", "grade", "verdict", "basis",
              postgresql_include=["strict_control"],
              postgresql_where=text("subject_type = 'parcel' AND superseded_by IS NULL"),
              sqlite_where=text("subject_type = 'parcel' AND superseded_by IS NULL")),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_code: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)
    rule_pack: Mapped[str] = mapped_column(String(32))
    rule_pack_version: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16))  # qualified | not_qualified | ... | not_assessed (DESIGN §4.6)
    # a parcel grade's basis: measured | estimated | not_assessed (``explanation.basis`` as a column, so that
    # a map tile of thousands of parcels tells estimates apart without parsing each explanation); null on areas
    basis: Mapped[str | None] = mapped_column(String(16))
    qualified: Mapped[bool] = mapped_column(Boolean)
    strict_control: Mapped[bool] = mapped_column(Boolean, default=False)
    limiting: Mapped[list[str]] = mapped_column(JSON, default=list)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"samples": [ids], "results": [ids]} or area sums
    tested_on: Mapped[date | None] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    computed_by: Mapped[str] = mapped_column(String(80))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("grading_runs.id"))
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("grades.id"))


class RollupMember(db.Model):
    """How one parcel is counted in its areas' sums under one pack (the "old outcome" of an update)."""

    __tablename__ = "rollup_members"
    __table_args__ = (
        Index("ix_rollup_members_village", "rule_pack", "village_code"),
        Index("ix_rollup_members_park", "rule_pack", "farm_park_code"),
        Index("ix_rollup_members_county_q", "rule_pack", "county_code", "qualified", "area_m2"),
    )

    rule_pack: Mapped[str] = mapped_column(String(32), primary_key=True)
    parcel_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(12))
    farm_park_code: Mapped[str | None] = mapped_column(String(32))
    county_code: Mapped[str] = mapped_column(String(12))
    area_m2: Mapped[float] = mapped_column(Float)  # the parcel's float; Decimal(repr) of it is exact
    verdict: Mapped[str | None] = mapped_column(String(16))  # None: not graded
    qualified: Mapped[bool] = mapped_column(Boolean, default=False)
    strict_control: Mapped[bool] = mapped_column(Boolean, default=False)


class RollupSum(db.Model):
    """The maintained ``RollupSums`` of one village, farm park or county under one pack."""

    __tablename__ = "rollup_sums"
    __table_args__ = (UniqueConstraint("subject_type", "subject_code", "rule_pack"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_code: Mapped[str] = mapped_column(String(32))
    county_code: Mapped[str] = mapped_column(String(12), index=True)
    rule_pack: Mapped[str] = mapped_column(String(32))
    total_area: Mapped[str] = mapped_column(String(48), default="0")
    graded_area: Mapped[str] = mapped_column(String(48), default="0")
    qualified_area: Mapped[str] = mapped_column(String(48), default="0")
    parcel_count: Mapped[int] = mapped_column(Integer, default=0)
    graded_count: Mapped[int] = mapped_column(Integer, default=0)
    qualified_count: Mapped[int] = mapped_column(Integer, default=0)
    strict_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GradingRun(db.Model):
    """A whole-scope run (or a demo/CLI run): what it covered, what it changed, who asked."""

    __tablename__ = "grading_runs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)
    rule_pack: Mapped[str] = mapped_column(String(32))
    rule_pack_version: Mapped[str] = mapped_column(String(16))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # capped; counts has the total
    created_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # the estimation models a county run fitted: {"epsg", "models": {analyte: Model.to_dict()}}
    estimation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RulePackVerification(db.Model):
    """An admin's statement that a pack version's values match the official text."""

    __tablename__ = "rule_pack_verifications"
    __table_args__ = (UniqueConstraint("rule_pack", "rule_pack_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_pack: Mapped[str] = mapped_column(String(32))
    rule_pack_version: Mapped[str] = mapped_column(String(16))
    verified_by: Mapped[str] = mapped_column(String(80))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500))
