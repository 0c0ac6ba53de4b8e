"""Lab imports, results (immutable versions), approvals, reference materials and lab-ID aliases.

Values are exact decimal *strings*: SQLite has no decimal type, and a float
column would turn 0.1 into 0.1000000000000000055. A result row is never
edited after import except for its review status, its link to a sample that
arrives later, and ``superseded_by`` when a re-test replaces it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

STATUSES = ("pending", "approved", "rejected")
DECIMAL_TEXT = 40  # a canonical decimal below 1e9 with any sane number of decimals


class LabImport(db.Model):
    """One uploaded file (= one QC batch); its SHA-256 makes a re-upload a no-op."""

    __tablename__ = "lab_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    lab: Mapped[str] = mapped_column(String(120))
    created_by: Mapped[str] = mapped_column(String(80))
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)  # the importer's; NULL: province-wide
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    layout: Mapped[str] = mapped_column(String(8))
    file_kind: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer)
    qc_rows: Mapped[int] = mapped_column(Integer)
    qc_held: Mapped[int] = mapped_column(Integer)
    superseded: Mapped[int] = mapped_column(Integer)
    outcomes: Mapped[dict[str, Any]] = mapped_column(JSON)  # warnings, QC items, held codes


class LabResult(db.Model):
    """One measured (or censored) value; a re-test is a new row with ``version + 1``."""

    __tablename__ = "lab_results"
    __table_args__ = (
        # One version number per series (sample code key + analyte); QC rows have no series.
        UniqueConstraint("series", "analyte", "version"),
        Index("ix_lab_results_sample_analyte", "sample_id", "analyte"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("lab_imports.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    sample_id: Mapped[str | None] = mapped_column(ForeignKey("samples.id"))  # null: held or QC
    sample_code: Mapped[str] = mapped_column(String(64))
    sample_code_key: Mapped[str] = mapped_column(String(64), index=True)
    series: Mapped[str | None] = mapped_column(String(64))  # sample_code_key, null for QC rows
    lab_id: Mapped[str | None] = mapped_column(String(64))
    analyte: Mapped[str] = mapped_column(String(16))
    qualifier: Mapped[str] = mapped_column(String(1))
    value: Mapped[str | None] = mapped_column(String(DECIMAL_TEXT))
    detection_limit: Mapped[str | None] = mapped_column(String(DECIMAL_TEXT))
    unit: Mapped[str] = mapped_column(String(16))
    raw_value: Mapped[str] = mapped_column(Text)
    raw_unit: Mapped[str] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    qc_type: Mapped[str | None] = mapped_column(String(16))
    duplicate_of: Mapped[str | None] = mapped_column(String(64))
    crm: Mapped[str | None] = mapped_column(String(64))
    qc_flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    qc_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes: Mapped[int | None] = mapped_column(ForeignKey("lab_results.id"), unique=True)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("lab_results.id"))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_reason: Mapped[str | None] = mapped_column(Text)


class Approval(db.Model):
    """One official's approval of one result; the same official cannot approve twice."""

    __tablename__ = "lab_approvals"
    __table_args__ = (UniqueConstraint("result_id", "actor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("lab_results.id"), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferenceMaterial(db.Model):
    """A certified reference material's value for one analyte, in the analyte's canonical unit."""

    __tablename__ = "lab_reference_materials"
    __table_args__ = (UniqueConstraint("code", "analyte"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    code_key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    analyte: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(DECIMAL_TEXT))
    u: Mapped[str | None] = mapped_column(String(DECIMAL_TEXT))
    unit: Mapped[str] = mapped_column(String(16))
    reference_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabSampleAlias(db.Model):
    """A lab's own sample number for a bag code, learnt from a ``lab_id``/``实验室编号`` column."""

    __tablename__ = "lab_sample_aliases"
    __table_args__ = (UniqueConstraint("lab", "lab_id_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lab: Mapped[str] = mapped_column(String(120))
    lab_id: Mapped[str] = mapped_column(String(64))
    lab_id_key: Mapped[str] = mapped_column(String(64))
    sample_code: Mapped[str] = mapped_column(String(64))
    import_id: Mapped[int] = mapped_column(ForeignKey("lab_imports.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
