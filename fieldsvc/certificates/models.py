"""Certificates and their scan counts.

The stored ``status`` is what people did (``valid``, ``revoked``, ``superseded``); ``expired``
is never stored but computed from ``valid_until`` and the server clock whenever a certificate
is read, so no timer has to run for a certificate to expire.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

SUBJECT_TYPES = ("parcel", "farm_park", "village")
KINDS = ("certificate", "land_label")
STORED_STATUSES = ("valid", "revoked", "superseded")
CLIENT_CLASSES = ("mobile", "desktop", "bot", "other")


class Certificate(db.Model):
    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_subject", "subject_type", "subject_code", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(17), unique=True)
    # certificate: only for passing land, revoked when it fails; land_label: any graded land, pass or fail
    kind: Mapped[str] = mapped_column(String(16), default="certificate", server_default="certificate")
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_code: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str] = mapped_column(String(12), index=True)
    # grade, verdict, rule pack, tested on, place names at village level: never coordinates or people
    snapshot_json: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(120))
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="valid")
    reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(120))
    replaced_by: Mapped[str | None] = mapped_column(String(17))
    token: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    # certified area and crop, and the label quota they gave at issue (None: no quota)
    area_m2: Mapped[float | None] = mapped_column(Float)
    crop: Mapped[str | None] = mapped_column(String(64))
    label_quota: Mapped[int | None] = mapped_column(Integer)
    labels_printed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LandLabelChange(db.Model):
    """A land label's headline conclusion each time it changed (the first row is the one at issue)."""

    __tablename__ = "land_label_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    grade: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)


class LabelSheet(db.Model):
    """One printed label sheet, made once (``POST /api/v1/label-sheets``) and fetched as often as needed.

    Creating it counts its labels against the quotas and creates its serials; fetching its PDF
    again prints the same serials and counts nothing, so a retried or re-opened print never counts
    twice. ``request_sha256`` is the request an ``Idempotency-Key`` was first used with: the same
    key for a different request is a 409, never a second sheet.
    """

    __tablename__ = "label_sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    codes_json: Mapped[str] = mapped_column(Text)  # the codes in print order (a code listed twice prints twice)
    serials_per_code: Mapped[int] = mapped_column(Integer)  # 0: plain labels, one per listed code
    template: Mapped[str] = mapped_column(String(64))
    start_slot: Mapped[int] = mapped_column(Integer)
    labels: Mapped[int] = mapped_column(Integer)
    override_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class LabelSerial(db.Model):
    """One printed label of a certificate or land label: its serial and how often it was checked.

    ``days`` counts the distinct days it was scanned (a day change bumps it, in the same update as
    ``checks``); no address or anything else about who scanned is kept.
    """

    __tablename__ = "label_serials"
    __table_args__ = (UniqueConstraint("certificate_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    serial: Mapped[str] = mapped_column(String(8))
    # the sheet that printed it (its PDF reprints the same serials, in id order); None before sheets existed
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("label_sheets.id"), index=True)
    printed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    printed_by: Mapped[str] = mapped_column(String(120))
    checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_on: Mapped[date | None] = mapped_column(Date)


class CertificateScan(db.Model):
    """Scans per certificate, day and coarse client class: a count, never an address.

    One upsert per scan; a certificate's total, first and last scan day are summed from these rows.
    """

    __tablename__ = "certificate_scans"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    client_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Issuer(db.Model):
    """The institute that issues certificates and labels, one row per version (never edited in place).

    The current identity is the highest version; every certificate keeps the version it was issued
    under in its snapshot, and its signed claims name it as ``iss`` (``<ident>:<version>``).
    """

    __tablename__ = "issuers"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    ident: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    contact: Mapped[str] = mapped_column(String(200))
    co_issuer: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {name_zh, name_en} or None
    seal_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    seal_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
