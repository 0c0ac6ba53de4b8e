"""What the OpenRosa edge keeps of its own: each received instance, and uploaded form extensions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db


class OpenRosaSubmission(db.Model):
    """One received instance (``meta/instanceID``) and the sample version it made.

    An edit (``meta/deprecatedID``) names the instance it replaces; its base is that instance's
    version, so the edit goes through the sync merge like a push with ``base_version``. The
    device id Collect sends (``?deviceID=``) and the User-Agent are kept with each version.
    """

    __tablename__ = "openrosa_submissions"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sample_id: Mapped[str] = mapped_column(String(36), index=True)
    sample_version: Mapped[int | None] = mapped_column(Integer)
    deprecated_id: Mapped[str | None] = mapped_column(String(64))
    form_version: Mapped[str | None] = mapped_column(String(64))
    collect_device_id: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    device_pk: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # answers to the uploaded extension questions (validated by type), and the extension version
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    extension_version: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FormExtension(db.Model):
    """One uploaded XLSForm's extra questions (parsed by pyxform), versioned: the newest is served."""

    __tablename__ = "form_extensions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    xform_json: Mapped[str] = mapped_column(Text)  # pyxform's survey JSON, for the record
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
