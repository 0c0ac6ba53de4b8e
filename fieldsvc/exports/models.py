"""A background export: who asked, within which scope, for what, and how far it has got.

An export above ``EXPORT_JOB_ROWS`` rows is not written inside the request (a million-row
GeoPackage takes minutes); a row here is queued instead and a worker (a thread of the web process,
or ``flask exports work``) writes the file under the instance folder. The requester's role and
county are recorded with the job: the rows are read under that scope, and only an account that
may see that county's records downloads the file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

STATES = ("queued", "running", "done", "failed", "expired")


class ExportJob(db.Model):
    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resource: Mapped[str] = mapped_column(String(16))
    fmt: Mapped[str] = mapped_column(String(8))
    lang: Mapped[str] = mapped_column(String(4))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    requester: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))
    county_code: Mapped[str | None] = mapped_column(String(12), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
