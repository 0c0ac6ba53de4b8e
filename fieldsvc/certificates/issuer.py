"""The issuing institute's identity: configured once, kept as versions, printed and signed.

``set_issuer`` adds a version only when something changed (audited); certificates and labels
keep the identity they were issued under in their snapshot and sign ``iss = <ident>:<version>``.
Flush, never commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ..audit.services import Change, record
from ..errors import not_found, validation_failed
from ..extensions import db
from .models import Issuer

SEAL_MAX_BYTES = 256 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
_IDENT = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}")
_TEXT_FIELDS = {"name_zh": 200, "name_en": 200, "address": 300, "contact": 200}


def current_issuer() -> Issuer | None:
    return db.session.scalar(select(Issuer).order_by(Issuer.version.desc()).limit(1))


def all_issuers() -> list[Issuer]:
    return list(db.session.scalars(select(Issuer).order_by(Issuer.version.desc())))


def iss_of(row: Issuer | None) -> str:
    """The ``iss`` claim: ``<ident>:<version>``, empty when no issuer is configured."""
    return f"{row.ident}:{row.version}" if row is not None else ""


def seal_path(version: int) -> str:
    return f"/.well-known/fieldsvc-issuer-seal/{version}.png"


def issuer_dict(row: Issuer | None) -> dict[str, Any] | None:
    """What certificates snapshot and the keys document and public page show (no seal bytes)."""
    if row is None:
        return None
    return {"iss": iss_of(row), "ident": row.ident, "version": row.version, "name_zh": row.name_zh,
            "name_en": row.name_en, "address": row.address, "contact": row.contact, "co_issuer": row.co_issuer,
            "seal_sha256": row.seal_sha256, "seal_url": seal_path(row.version) if row.seal_png else None}


def seal_png(version: int) -> bytes:
    """:raise 404: no such version, or it has no seal."""
    data = db.session.scalar(select(Issuer.seal_png).where(Issuer.version == version))
    if not data:
        raise not_found("issuer seal", str(version))
    return data


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    ident = str(data.get("ident") or "").strip().upper()
    if not _IDENT.fullmatch(ident):
        errors["ident"] = ["2 to 32 characters: A-Z, 0-9 and '-', starting with a letter or digit."]
    out["ident"] = ident
    for name, cap in _TEXT_FIELDS.items():
        value = str(data.get(name) or "").strip()
        if not value:
            errors[name] = ["Required."]
        elif len(value) > cap:
            errors[name] = [f"At most {cap} characters."]
        out[name] = value
    co_zh, co_en = (str(data.get(k) or "").strip() for k in ("co_issuer_zh", "co_issuer_en"))
    if bool(co_zh) != bool(co_en):
        errors["co_issuer"] = ["Give the co-issuer's name in both Chinese and English, or neither."]
    elif max(len(co_zh), len(co_en)) > 200:
        errors["co_issuer"] = ["At most 200 characters."]
    out["co_issuer"] = {"name_zh": co_zh, "name_en": co_en} if co_zh else None
    seal = data.get("seal_png")
    if seal is not None and (not isinstance(seal, bytes) or not seal.startswith(_PNG) or len(seal) > SEAL_MAX_BYTES):
        errors["seal"] = [f"A PNG image of at most {SEAL_MAX_BYTES // 1024} KiB."]
    out["seal_png"] = seal or None
    if errors:
        raise validation_failed(errors)
    return out


def set_issuer(data: Mapping[str, Any], by: str) -> tuple[Issuer, bool]:
    """A new version of the issuer identity, or the current one if nothing changed: ``(row, created)``.

    A missing seal keeps the current version's seal. :raise 422: naming the field.
    """
    clean = _clean(data)
    current = current_issuer()
    if clean["seal_png"] is None and current is not None:
        clean["seal_png"] = current.seal_png
    seal_sha = hashlib.sha256(clean["seal_png"]).hexdigest() if clean["seal_png"] else None
    if current is not None and all(getattr(current, k) == v for k, v in clean.items()):
        return current, False
    row = Issuer(version=(current.version + 1) if current else 1, seal_sha256=seal_sha, created_by=by, **clean)
    db.session.add(row)
    db.session.flush()
    record(by, Change("issuer", row.ident, "set", before=issuer_dict(current), after=issuer_dict(row),
                      version=row.version))
    return row, True
