"""Certificates: issue, supersede, revoke, read, verify, count scans. Flush, never commit.

The signing key ring is read from the instance folder (or a configured PEM) once per process
and re-read only when the folder's index changes (``keys rotate`` in another process).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Date, bindparam, case, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import access
from ..audit.services import Change, record, record_many
from ..auth import ratelimit
from ..auth.principal import SYSTEM, Actor
from ..dbtypes import UTCDateTime, isoformat, utcnow
from ..dbutil import lock_for_transaction
from ..errors import Problem, conflict, not_found, rate_limited, validation_failed
from ..events import CertificateIssued, CertificateRevoked, publish
from ..extensions import db
from ..grading import qualification as grading
from ..grading.models import Grade
from ..grading.passport import soil_passport as grading_passport
from ..grading.rules import load_pack
from ..paging import Page, paginate
from ..places.models import FarmPark, Parcel, Region
from ..places.services import get_farm_park_by_code, get_parcel_by_code, get_region_by_code
from . import codes, issuer, pdf
from .models import CLIENT_CLASSES, SUBJECT_TYPES, Certificate, CertificateScan, LabelSerial, LandLabelChange
from .signing import Claims, KeyRing, KeyRingError, VerifiedToken, sign_claims, verify_token

SYSTEM_RETEST = "system: re-test"
# A well-formed code no certificate will ever get (the random part is all zeros): malformed
# codes are looked up as this one, so they cost the same query as an unknown code.
DUMMY_CODE = codes.code_from_bytes(bytes(10))


def now() -> datetime:
    """The server clock (tests may monkeypatch this to move time)."""
    return utcnow()


# --- signing keys -----------------------------------------------------------------------------

_rings: dict[str, tuple[Any, KeyRing]] = {}
_rings_lock = threading.Lock()


def keyring(config: Mapping[str, Any]) -> KeyRing:
    """The process's key ring: a configured PEM, else ``<instance>/keys`` (made on first use)."""
    configured = config.get("SIGNING_KEY_PATH") or ""
    folder = Path(config["INSTANCE_PATH"]) / "keys"
    cache_key = f"{configured}|{folder}"
    stamp = _stamp(configured, folder)
    cached = _rings.get(cache_key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _rings_lock:
        if configured:
            retired = [p.read_bytes() for p in sorted(folder.glob("signing-key-*.pem"))] if folder.is_dir() else []
            try:
                ring = KeyRing.from_pem(Path(configured).read_bytes(), retired=retired)
            except OSError as exc:
                raise KeyRingError(f"FIELDSVC_SIGNING_KEY_PATH={configured} cannot be read: {exc}") from exc
        else:
            ring = KeyRing.load_or_create(folder)
        _rings[cache_key] = (_stamp(configured, folder), ring)
        _token_checks.clear()
        return ring


def _stamp(configured: str, folder: Path) -> Any:
    try:
        index = (folder / "keys.json").stat().st_mtime_ns
    except OSError:
        index = None
    if configured:
        try:
            return (index, Path(configured).stat().st_mtime_ns)
        except OSError:
            return (index, None)
    return index


# --- reading ----------------------------------------------------------------------------------

def status_at(cert: Certificate, moment: datetime) -> str:
    """valid | expired | revoked | superseded, judged by the server clock."""
    if cert.status == "valid" and cert.valid_until <= moment:
        return "expired"
    return cert.status


def snapshot(cert: Certificate) -> dict[str, Any]:
    return json.loads(cert.snapshot_json)


def get_certificate_by_code(code: str, actor: Actor | None = None) -> Certificate:
    """By code (forgiving: lowercase, hyphens); county-scoped accounts see other counties' as absent."""
    normal = codes.normalise_code(code) if isinstance(code, str) else None
    cert = db.session.scalar(select(Certificate).where(Certificate.code == (normal or DUMMY_CODE)))
    if cert is None or normal is None:
        raise not_found("certificate", str(code)[:64])
    if actor is not None:
        access.require_record(actor, cert.county_code, "certificate", cert.code)
    return cert


def certificate_dict(cert: Certificate, config: Mapping[str, Any], moment: datetime | None = None) -> dict[str, Any]:
    snap = snapshot(cert)
    return {
        "code": cert.code,
        "kind": cert.kind,
        "code_formatted": codes.format_code(cert.code),
        "status": status_at(cert, moment or now()),
        "reason": cert.reason,
        "subject": {"type": cert.subject_type, "code": cert.subject_code, "name": snap.get("subject_name")},
        "grade": _grade_part(snap),
        "place": snap.get("place", {}),
        "issued_at": isoformat(cert.issued_at),
        "issued_by": cert.issued_by,
        "valid_until": isoformat(cert.valid_until),
        "revoked_at": isoformat(cert.revoked_at),
        "revoked_by": cert.revoked_by,
        "replaced_by": cert.replaced_by,
        "verify_url": codes.verify_url(config["PUBLIC_BASE_URL"], cert.code),
        "token": cert.token,
        "key_id": cert.key_id,
        "issuer": snap.get("issuer"),
        "area_m2": cert.area_m2,
        "crop": cert.crop,
        "labels": {"printed": cert.labels_printed, "quota": cert.label_quota},
        "scans": scan_summary(cert),
    }


def _grade_part(snap: Mapping[str, Any]) -> dict[str, Any]:
    return {"grade": snap.get("grade"), "verdict": snap.get("verdict"), "rule_pack": snap.get("rule_pack"),
            "standard": snap.get("standard"), "tested_on": snap.get("tested_on")}


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def scan_summary(cert: Certificate) -> dict[str, Any]:
    count, first, last = db.session.execute(
        select(func.coalesce(func.sum(CertificateScan.count), 0), func.min(CertificateScan.day),
               func.max(CertificateScan.day)).where(CertificateScan.certificate_id == cert.id)).one()
    return {"count": int(count), "first_on": _day(first), "last_on": _day(last)}


def scan_counts(cert: Certificate) -> dict[str, int]:
    rows = db.session.execute(
        select(CertificateScan.client_class, func.sum(CertificateScan.count))
        .where(CertificateScan.certificate_id == cert.id).group_by(CertificateScan.client_class))
    counts = dict.fromkeys(CLIENT_CLASSES, 0)
    counts.update({k: int(v) for k, v in rows})
    return counts


def list_filter(args: Mapping[str, Any], actor: Actor) -> list[Any]:
    where = [access.record_filter(actor, Certificate.county_code)]
    if args.get("subject"):
        where.append(Certificate.subject_code == args["subject"])
    if args.get("subject_type"):
        where.append(Certificate.subject_type == args["subject_type"])
    if args.get("kind"):
        where.append(Certificate.kind == args["kind"])
    status = args.get("status")
    moment = now()
    if status == "expired":
        where += [Certificate.status == "valid", Certificate.valid_until <= moment]
    elif status == "valid":
        where += [Certificate.status == "valid", Certificate.valid_until > moment]
    elif status:
        where.append(Certificate.status == status)
    return where


def list_certificates(args: Mapping[str, Any], actor: Actor, limit: int, config: Mapping[str, Any]) -> Page:
    """Certificates the caller may see, filtered (status judged now), one page."""
    rows, cursor = paginate(select(Certificate).where(*list_filter(args, actor)), Certificate.id, limit,
                            args.get("cursor"))
    moment = now()
    return Page([certificate_dict(c, config, moment) for c in rows], cursor)


# --- issuing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    type: str
    code: str
    name: str
    county_code: str
    place: dict[str, str]
    place_en: dict[str, str]


def resolve_subject(subject_type: str, code: str, actor: Actor) -> Subject:
    """The subject and its place names at village level (never coordinates, never people)."""
    if subject_type == "parcel":
        parcel = get_parcel_by_code(code, actor)
        village = db.session.scalar(select(Region).where(Region.code == parcel.village_code))
        place, place_en = _region_chain(village)
        if parcel.farm_park_code:
            park = db.session.scalar(select(FarmPark).where(FarmPark.code == parcel.farm_park_code))
            if park is not None:
                place["farm_park"], place_en["farm_park"] = park.name, park.name_en or park.name
        return Subject("parcel", parcel.code, parcel.code, parcel.county_code, place, place_en)
    if subject_type == "village":
        village = get_region_by_code(code, actor)
        if village.level != "village":
            raise validation_failed({"code": [f"{code} is a {village.level}, not a village."]})
        return Subject("village", village.code, village.name, village.county_code, *_region_chain(village))
    if subject_type == "farm_park":
        park = get_farm_park_by_code(code, actor)
        county = db.session.scalar(select(Region).where(Region.code == park.county_code))
        place = {"county": county.name if county else park.county_code, "farm_park": park.name}
        place_en = {"county": (county.name_en or county.name) if county else park.county_code,
                    "farm_park": park.name_en or park.name}
        return Subject("farm_park", park.code, park.name, park.county_code, place, place_en)
    raise validation_failed({"subject_type": [f"Must be one of: {', '.join(SUBJECT_TYPES)}."]})


def area_outline(subject: Subject) -> str | None:
    """The SVG outline the public page draws: the subject's park, else its village (never a parcel)."""
    from .outline import outline_path

    park_code = subject.code if subject.type == "farm_park" else None
    if subject.type == "parcel":
        parcel = db.session.scalar(select(Parcel).where(Parcel.code == subject.code))
        village = parcel.village_code if parcel is not None else None
    else:
        village = subject.code if subject.type == "village" else None
    if park_code:
        park = db.session.scalar(select(FarmPark.geometry_json).where(FarmPark.code == park_code))
        geometries = [park] if park else list(db.session.scalars(
            select(Parcel.geometry_json).where(Parcel.farm_park_code == park_code, Parcel.deleted_at.is_(None))))
    elif village:
        geometries = list(db.session.scalars(select(Parcel.geometry_json).where(
            Parcel.village_code == village, Parcel.deleted_at.is_(None))))
    else:
        return None
    return outline_path(geometries)


def _region_chain(region: Region | None) -> tuple[dict[str, str], dict[str, str]]:
    """County, township and village names, in Chinese and in English (falling back to Chinese)."""
    place: dict[str, str] = {}
    place_en: dict[str, str] = {}
    seen = 0
    while region is not None and seen < 4:
        place[region.level], place_en[region.level] = region.name, region.name_en or region.name
        region = (db.session.scalar(select(Region).where(Region.code == region.parent_code))
                  if region.parent_code else None)
        seen += 1
    return place, place_en


def qualification(subject_type: str, code: str, rule_pack: str | None = None) -> Any:
    """The grading service's answer."""
    return grading.qualification(subject_type, code, rule_pack)


def _pack_ref(q: Any) -> dict[str, Any]:
    ref = getattr(q, "rule_pack", None) or {}
    if not isinstance(ref, Mapping):
        ref = {"code": getattr(ref, "code", None), "version": getattr(ref, "version", None),
               "verified": getattr(ref, "verified", False)}
    code, version = str(ref.get("code") or ""), str(ref.get("version") or "")
    standard = ref.get("standard")
    if not standard:
        try:
            standard = load_pack(code, version or None).standard
        except Problem:
            standard = code
    return {"code": code, "version": version, "verified": bool(ref.get("verified")), "standard": standard}


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def issue_certificate(data: Mapping[str, Any], actor: Actor, config: Mapping[str, Any],
                      idempotency_key: str | None = None) -> tuple[Certificate, bool]:
    """Issue for a qualifying subject: ``(certificate, created)``; a retry with the same key returns the first.

    :raise 409 not_qualified: with ``details.reasons`` when grading says no.

    One valid certificate per subject: issues for one subject take a lock on it first, so a second
    issue waits and then supersedes the first one's certificate instead of missing it (8 parallel
    issues on PostgreSQL left two valid).
    """
    lock_for_transaction(f"certificate:{data['subject_type']}:{str(data['code']).strip().upper()}")
    if idempotency_key:
        earlier = db.session.scalar(select(Certificate).where(Certificate.idempotency_key == idempotency_key))
        if earlier is not None:
            access.require_record(actor, earlier.county_code, "certificate", earlier.code)
            if (earlier.subject_type, earlier.subject_code) != (data["subject_type"], data["code"]):
                raise conflict("idempotency_key_reused", "This Idempotency-Key was used for another subject.",
                               certificate=earlier.code)
            return earlier, False
    subject = resolve_subject(data["subject_type"], data["code"], actor)
    q = qualification(subject.type, subject.code, data.get("rule_pack"))
    tested_on = _as_date(getattr(q, "tested_on", None))
    reasons = list(getattr(q, "reasons", None) or [])
    if not getattr(q, "qualified", False) or tested_on is None:
        if tested_on is None and not reasons:
            reasons = ["no soil test date is known for this subject"]
        raise conflict("not_qualified", f"{subject.type} {subject.code} does not qualify for a certificate.",
                       reasons=reasons or ["not qualified"], verdict=getattr(q, "verdict", None))
    pack = _pack_ref(q)
    moment = now()
    identity = issuer.current_issuer()
    valid_days = data.get("valid_days") or config["CERTIFICATE_VALID_DAYS"]
    valid_until = moment + timedelta(days=valid_days)
    code = codes.new_code()
    snap = {
        "subject_name": subject.name, "place": subject.place, "place_en": subject.place_en,
        "grade": str(getattr(q, "grade", "") or ""),
        "verdict": getattr(q, "verdict", None) or "qualified", "rule_pack": {k: pack[k] for k in
                                                                             ("code", "version", "verified")},
        "standard": pack["standard"], "tested_on": tested_on.isoformat(),
        "grade_id": _json_safe(getattr(q, "grade_id", None)),
        "issuer": issuer.issuer_dict(identity), "outline": area_outline(subject),
    }
    ring = keyring(config)
    claims = Claims(code=code, subject_type=subject.type, subject_code=subject.code, grade=snap["grade"],
                    rule_pack=f"{pack['code']}:{pack['version']}", tested_on=tested_on,
                    valid_until=valid_until.date(), iss=issuer.iss_of(identity))
    token = sign_claims(claims, ring)
    area_m2, crop = certified_area(subject, data)
    cert = Certificate(code=code, subject_type=subject.type, subject_code=subject.code,
                       county_code=subject.county_code, snapshot_json=json.dumps(snap, ensure_ascii=False),
                       issued_at=moment, issued_by=actor.label, valid_until=valid_until, status="valid",
                       token=token, key_id=ring.current.kid, idempotency_key=idempotency_key,
                       area_m2=area_m2, crop=crop, label_quota=label_quota(area_m2, crop, config))
    db.session.add(cert)
    db.session.flush()
    changes = [Change("certificate", code, "issue", after=_audit_view(cert))]
    for old in _current_for(subject.type, subject.code, exclude=cert.id, moment=moment):
        before = _audit_view(old)
        old.status, old.replaced_by, old.reason = "superseded", code, f"replaced by {code}"
        changes.append(Change("certificate", old.code, "supersede", before=before, after=_audit_view(old)))
    db.session.flush()
    record_many(actor.label, changes)
    publish(CertificateIssued(cert.code, cert.subject_type, cert.subject_code))
    return cert, True


def certified_area(subject: Subject, data: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """The certified area and crop: as given, else a parcel's own (an area's must be given)."""
    area, crop = data.get("area_m2"), data.get("crop")
    if subject.type == "parcel" and (area is None or crop is None):
        parcel = db.session.scalar(select(Parcel).where(Parcel.code == subject.code))
        if parcel is not None:
            area = area if area is not None else parcel.area_m2
            crop = crop if crop is not None else parcel.crop
    return (float(area) if area is not None else None), (crop.strip() or None) if isinstance(crop, str) else None


def label_quota(area_m2: float | None, crop: str | None, config: Mapping[str, Any]) -> int | None:
    """Labels a certificate may print: area × the crop's expected yield ÷ package size (configuration)."""
    row = (config.get("LABEL_QUOTA_CROPS") or {}).get(crop or "")
    if area_m2 is None or not row:
        return None
    try:
        return int(area_m2 * float(row["yield_kg_per_m2"]) // float(row["package_kg"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _json_safe(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, str, float)) else str(value)


def _current_for(subject_type: str, code: str, *, exclude: int | None = None,
                 moment: datetime | None = None, kind: str = "certificate") -> list[Certificate]:
    stmt = select(Certificate).where(Certificate.subject_type == subject_type, Certificate.subject_code == code,
                                     Certificate.status == "valid", Certificate.kind == kind)
    if moment is not None:
        stmt = stmt.where(Certificate.valid_until > moment)
    if exclude is not None:
        stmt = stmt.where(Certificate.id != exclude)
    return list(db.session.scalars(stmt.order_by(Certificate.id).with_for_update()))


def _audit_view(cert: Certificate) -> dict[str, Any]:
    return {"code": cert.code, "subject_type": cert.subject_type, "subject_code": cert.subject_code,
            "status": cert.status, "reason": cert.reason, "valid_until": isoformat(cert.valid_until),
            "replaced_by": cert.replaced_by, "key_id": cert.key_id}


# --- revoking ---------------------------------------------------------------------------------

def revoke_certificate(code: str, reason: str, actor: Actor) -> Certificate:
    """Revoke now. Repeating the same revocation is a no-op; a revoked or superseded one is a 409."""
    cert = get_certificate_by_code(code, actor)
    if cert.status == "revoked" and cert.reason == reason:
        return cert
    if cert.status != "valid":
        raise conflict(f"certificate_{cert.status}", f"Certificate {cert.code} is already {cert.status}.",
                       current_status=cert.status, reason=cert.reason, replaced_by=cert.replaced_by)
    _revoke(cert, reason, actor.label)
    return cert


def _revoke(cert: Certificate, reason: str, by: str) -> None:
    before = _audit_view(cert)
    cert.status, cert.reason, cert.revoked_at, cert.revoked_by = "revoked", reason, now(), by
    db.session.flush()
    record(by, Change("certificate", cert.code, "revoke", before=before, after=_audit_view(cert)))
    publish(CertificateRevoked(cert.code, cert.subject_type, cert.subject_code, reason))


def certified_subjects(subjects: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of these (subject type, code) pairs holding a valid certificate or land label, the
    only ones ``on_grade_changed`` acts on: one query per 500 subjects instead of its two per
    subject (an approval re-grades hundreds of parcels, nearly all never certified)."""
    by_type: dict[str, set[str]] = {}
    for subject_type, code in subjects:
        by_type.setdefault(subject_type, set()).add(code)
    out: set[tuple[str, str]] = set()
    for subject_type, wanted in by_type.items():
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 500):
            out.update((t, c) for t, c in db.session.execute(
                select(Certificate.subject_type, Certificate.subject_code).where(
                    Certificate.subject_type == subject_type, Certificate.subject_code.in_(ordered[start:start + 500]),
                    Certificate.status == "valid", Certificate.kind.in_(("certificate", "land_label"))).distinct()))
    return out


def on_grade_changed(subject_type: str, code: str, qualified: bool, reason: str) -> list[str]:
    """A certified subject that stops qualifying loses its certificates at once (``GradesChanged``);
    its land labels (which say pass or fail) note the new conclusion in their history.

    Runs in the caller's transaction; returns the certificate codes revoked.
    """
    note_land_label_change(subject_type, code, reason)
    if qualified:
        return []
    revoked = []
    for cert in _current_for(subject_type, code):
        _revoke(cert, reason or "re-test failed", SYSTEM_RETEST)
        revoked.append(cert.code)
    return revoked


# --- printing ---------------------------------------------------------------------------------

def certificate_view(cert: Certificate, config: Mapping[str, Any], moment: datetime | None = None
                     ) -> pdf.CertificateView:
    snap = snapshot(cert)
    place = snap.get("place", {})
    pack = snap.get("rule_pack", {})
    status = status_at(cert, moment or now())
    reason = cert.reason if status in ("revoked", "superseded") else None
    return pdf.CertificateView(
        code=cert.code, verify_url=codes.verify_url(config["PUBLIC_BASE_URL"], cert.code), token=cert.token,
        key_id=cert.key_id, subject_type=cert.subject_type, subject_name=snap.get("subject_name", ""),
        subject_code=cert.subject_code, county=place.get("county", ""), township=place.get("township"),
        village=place.get("village") or place.get("farm_park"), grade=snap.get("grade", ""),
        verdict=snap.get("verdict", "qualified"), rule_pack_code=pack.get("code", ""),
        rule_pack_version=pack.get("version", ""), standard=snap.get("standard", ""),
        pack_verified=bool(pack.get("verified")), tested_on=date.fromisoformat(snap["tested_on"]),
        issued_at=cert.issued_at.date(), valid_until=cert.valid_until.date(), status=status,
        status_reason=reason, kind=cert.kind, conclusions=conclusion_lines(snap.get("conclusions") or []),
        elements=element_rows(snap.get("elements") or []), **issuer_print(snap.get("issuer")))


_RESULT = {(False, False): "未超标 within", (False, True): "超标 over",
           (True, False): "达到 reaches", (True, True): "未达 below"}  # (a threshold to reach?, failed?)


def element_rows(elements: Sequence[Mapping[str, Any]]) -> tuple[pdf.ElementRow, ...]:
    """A land label's element table as printed (zh + en): value vs limit, measured or estimated ±σ, over or not."""
    from .i18n import BASES, analyte_name

    rows = []
    for e in elements:
        try:
            value, limit = float(e.get("value")), float(e.get("limit"))
        except (TypeError, ValueError):
            value = limit = None  # type: ignore[assignment]
        censored = e.get("qualifier", "=") != "="
        shown = f"<{e.get('detection_limit')}" if censored and e.get("detection_limit") else str(e.get("value") or "—")
        ratio = value / limit if value is not None and limit else None
        minimum = e.get("bound") == "min"  # a threshold to reach (Se-rich), not a limit to stay under
        failed = e.get("verdict") in ("exceeds", "fail", "not_qualified")
        over = failed or (not minimum and ratio is not None and ratio > 1 and not censored)
        basis = e.get("basis") or "measured"
        words = f"{BASES['zh'].get(basis, basis)} {BASES['en'].get(basis, basis)}"
        if basis == "estimated" and e.get("sigma") is not None:
            shown += f" ±{e['sigma']}"  # an estimate prints its uncertainty (σ) beside it
        rows.append(pdf.ElementRow(
            name=f"{analyte_name(e['analyte'], 'zh')} {e['analyte']}", value=shown,
            limit=("≥" if minimum else "") + str(e.get("limit") or "—"), unit=str(e.get("unit") or ""), ratio=ratio,
            basis=words, over=over, result=_RESULT[(minimum, over)]))
    return tuple(rows)


def conclusion_lines(conclusions: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """A land label's conclusions as printed (as at issue; the page has them as of now)."""
    from .i18n import VERDICTS, analyte_name, basis_words, grade_label

    lines = []
    for c in conclusions:
        standard = str(c.get("standard") or "")
        verdict = f"{VERDICTS['zh'].get(c['verdict'], c['verdict'])} {VERDICTS['en'].get(c['verdict'], c['verdict'])}"
        grade = f" · {grade_label(c['grade'], 'zh')} {grade_label(c['grade'], 'en')}" if c.get("grade") else ""
        failing = c.get("failing") or []
        over = f" · 超标 over: {'、'.join(analyte_name(a, 'zh') + ' ' + a for a in failing)}" if failing else ""
        lines.append(f"{standard}: {verdict}{grade}{over} ({basis_words(c, 'zh')})")
    return tuple(lines)


def issuer_print(ident: Mapping[str, Any] | None) -> dict[str, Any]:
    """The issuer lines and seal a certificate or label prints (the identity it was issued under)."""
    if not ident:
        return {}
    names = [f"{ident['name_zh']} {ident['name_en']}"]
    if ident.get("co_issuer"):
        names.append(f"{ident['co_issuer']['name_zh']} {ident['co_issuer']['name_en']}")
    seal = None
    if ident.get("seal_url"):
        try:
            seal = issuer.seal_png(int(ident["version"]))
        except Problem:
            seal = None
    return {"issuer": " · ".join(names), "issuer_contact": f"{ident['address']} · {ident['contact']}",
            "issuer_short": ident["name_zh"], "seal_png": seal}


def certificate_pdf(cert: Certificate, config: Mapping[str, Any]) -> bytes:
    return pdf.render_certificate(certificate_view(cert, config))


_CODE_SPLIT = re.compile(r"[\s,;]+")


def parse_codes(text: str | Sequence[str], cap: int) -> list[str]:
    """Codes from ``A,B C``; each must be a certificate code; duplicates print several labels."""
    parts = [p for p in (_CODE_SPLIT.split(text) if isinstance(text, str) else text) if p]
    if not parts:
        raise validation_failed({"codes": ["Give at least one certificate code."]})
    if len(parts) > cap:
        raise validation_failed({"codes": [f"At most {cap} labels per request."]})
    bad = [p[:40] for p in parts if codes.normalise_code(p) is None]
    if bad:
        raise validation_failed({"codes": [f"Not certificate codes: {', '.join(bad[:20])}"]})
    return [codes.normalise_code(p) for p in parts]  # type: ignore[misc]


def printable(code_list: Sequence[str], template: str, actor: Actor, config: Mapping[str, Any],
              serials: int = 0) -> dict[str, Certificate]:
    """The listed certificates, checked for printing: unknown codes 422, non-valid ones 409."""
    if serials and len(code_list) * serials > config["LABELS_MAX_CODES"]:
        raise validation_failed({"serials": [f"At most {config['LABELS_MAX_CODES']} labels per request "
                                             f"({len(code_list)} codes × {serials} serials asked)."]})
    pdf.load_template(template)  # 422 unknown_template before any lookup
    wanted = sorted(set(code_list))
    found: dict[str, Certificate] = {}
    for chunk in range(0, len(wanted), 500):
        part = wanted[chunk:chunk + 500]
        found.update({c.code: c for c in db.session.scalars(select(Certificate).where(Certificate.code.in_(part)))})
    missing = [c for c in wanted if c not in found or not access.may_see_record(actor, found[c].county_code)]
    if missing:
        raise validation_failed({"codes": [f"Unknown certificates: {', '.join(missing[:20])}"]})
    moment = now()
    not_valid = {c: status_at(found[c], moment) for c in wanted if status_at(found[c], moment) != "valid"}
    if not_valid:
        raise conflict("certificate_not_valid", "Labels are printed only for valid certificates.",
                       certificates=not_valid)
    return found


def label_views(found: Mapping[str, Certificate], printed: Sequence[tuple[str, str]],
                config: Mapping[str, Any]) -> list[pdf.LabelView]:
    """What each label prints: ``printed`` is ``(code, serial)`` in sheet order (serial ``""``: a plain label)."""
    base = config["PUBLIC_BASE_URL"]
    shorts = {c: (snapshot(cert).get("issuer") or {}).get("name_zh") for c, cert in found.items()}
    captions = {c: land_label_caption(cert) for c, cert in found.items() if cert.kind == "land_label"}
    names = {c: label_name(cert) for c, cert in found.items()}

    def view(c: str, serial: str) -> pdf.LabelView:
        url = codes.serial_url(base, c, serial) if serial else codes.verify_url(base, c)
        return pdf.LabelView(code=c, verify_url=url, subject_name=names[c], issuer=shorts[c] or "", serial=serial,
                             **({"caption": captions[c]} if c in captions else {}))

    return [view(c, s) for c, s in printed]


def labels_pdf(code_list: Sequence[str], template: str, start_slot: int, actor: Actor,
               config: Mapping[str, Any]) -> bytes:
    """Plain labels (one ``/C/<CODE>`` QR per listed code) for valid certificates. Creates and counts nothing.

    A plain label carries the certificate's own code, the QR its A4 certificate prints too, so
    printing more of them makes nothing new to count. Labels with serials, the ones a quota
    counts, are printed through a label sheet (``sheets.create_sheet``), which counts them once
    however often its PDF is fetched.
    """
    found = printable(code_list, template, actor, config, 0)
    return pdf.render_labels(label_views(found, [(c, "") for c in code_list], config), template, start_slot)


_COUNT_PRINTED = text(
    "UPDATE certificates SET labels_printed = labels_printed + :n WHERE id = :id "
    "AND (:force OR label_quota IS NULL OR labels_printed + :n <= label_quota) RETURNING labels_printed")


def count_against_quota(found: Mapping[str, Certificate], code_list: Sequence[str], per_code: int, actor: Actor,
                        override_reason: str | None) -> None:
    """Count the labels about to print against each certificate's quota, in one conditional update each.

    :raise 409 quota_exceeded: naming each certificate's printed, quota and asked, unless an
        ``override_reason`` is given (then the override is audited).
    """
    asked: dict[str, int] = {}
    for c in code_list:
        asked[c] = asked.get(c, 0) + per_code
    over: dict[str, dict[str, int]] = {}
    overrides = []
    for c, n in sorted(asked.items()):
        cert = found[c]
        params = {"n": n, "id": cert.id, "force": override_reason is not None}
        printed = db.session.execute(_COUNT_PRINTED, params).scalar()
        if printed is None:  # over the quota and no override: nothing counted
            over[c] = {"printed": cert.labels_printed, "quota": cert.label_quota or 0, "asked": n}
        elif cert.label_quota is not None and printed > cert.label_quota:
            overrides.append(Change("certificate", c, "quota_override", after={
                "reason": override_reason, "printed": printed, "quota": cert.label_quota, "asked": n}))
    if over:
        raise conflict("quota_exceeded", "Printing these labels would pass the certificates' label quota; "
                       "an official may give override_reason.", certificates=over)
    if overrides:
        record_many(actor.label, overrides)
    for c in asked:
        db.session.expire(found[c], ["labels_printed"])  # counted by SQL: read again when next asked


def print_serials(certs: Sequence[Certificate], per_code: int, actor: Actor,
                  sheet_id: int | None = None) -> list[tuple[str, str]]:
    """New serials, ``per_code`` for each listed certificate (a code listed twice gets twice as many),
    inserted in print order (the sheet's PDF reads them back by id)."""
    wanted: dict[int, set[str]] = {}
    order: list[tuple[Certificate, str]] = []
    for cert in certs:
        taken = wanted.setdefault(cert.id, set())
        for _ in range(per_code):
            serial = codes.new_serial()
            while serial in taken:
                serial = codes.new_serial()
            taken.add(serial)
            order.append((cert, serial))
    for cert_id, fresh in wanted.items():  # 30 random bits: a clash with an earlier print is rare, not impossible
        clashes = set(db.session.scalars(select(LabelSerial.serial).where(
            LabelSerial.certificate_id == cert_id, LabelSerial.serial.in_(sorted(fresh)))))
        if clashes:
            for i, (cert, serial) in enumerate(order):
                if cert.id == cert_id and serial in clashes:
                    replacement = codes.new_serial()
                    while replacement in fresh or replacement in clashes:
                        replacement = codes.new_serial()
                    fresh.add(replacement)
                    order[i] = (cert, replacement)
    moment = now()
    db.session.execute(insert(LabelSerial), [
        {"certificate_id": cert.id, "serial": serial, "sheet_id": sheet_id, "printed_at": moment,
         "printed_by": actor.label, "checks": 0, "days": 0} for cert, serial in order])
    counts: dict[str, int] = {}
    for cert, _ in order:
        counts[cert.code] = counts.get(cert.code, 0) + 1
    record_many(actor.label, [Change("certificate", code, "print_serials", after={"serials": n, "sheet": sheet_id})
                              for code, n in sorted(counts.items())])
    return [(cert.code, serial) for cert, serial in order]


def label_name(cert: Certificate) -> str:
    snap = snapshot(cert)
    place = snap.get("place", {})
    if cert.subject_type == "parcel":
        return " ".join(p for p in (place.get("village"), cert.subject_code) if p)
    return snap.get("subject_name") or cert.subject_code


# --- land labels ------------------------------------------------------------------------------

def soil_passport(subject_type: str, code: str) -> dict[str, Any]:
    """Grading's soil passport of a subject now."""
    return grading_passport(subject_type, code)


def _headline(passport: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first conclusion (the green-food soil standard, NY/T 391, when it graded the subject)."""
    items = passport.get("conclusions") or []
    return items[0] if items else None


def issue_land_label(data: Mapping[str, Any], actor: Actor, config: Mapping[str, Any]) -> tuple[Certificate, bool]:
    """A land label for a graded subject, pass or fail: ``(label, created)``; a subject keeps one live label.

    The label's page reads the subject's grades when scanned, so a re-grade needs no new label.
    :raise 409 not_graded: nothing in the packs has graded the subject yet.
    """
    subject = resolve_subject(data["subject_type"], data["code"], actor)
    existing = _current_for(subject.type, subject.code, kind="land_label")
    if existing:
        return existing[0], False
    passport = soil_passport(subject.type, subject.code)
    head = _headline(passport)
    if head is None or not passport.get("tested_on"):
        raise conflict("not_graded", f"{subject.type} {subject.code} has no grade to put on a label yet.",
                       reasons=["not_graded"])
    moment = now()
    identity = issuer.current_issuer()
    valid_until = moment + timedelta(days=config["LAND_LABEL_VALID_DAYS"])
    tested_on = date.fromisoformat(passport["tested_on"])
    code = codes.new_code()
    pack = head["rule_pack"]
    snap = {
        "subject_name": subject.name, "place": subject.place, "place_en": subject.place_en,
        "grade": str(head.get("grade") or ""), "verdict": head["verdict"],
        "rule_pack": pack, "standard": head["standard"], "tested_on": tested_on.isoformat(),
        "conclusions": passport["conclusions"], "elements": passport["elements"],
        "issuer": issuer.issuer_dict(identity), "outline": area_outline(subject),
    }
    ring = keyring(config)
    claims = Claims(code=code, subject_type=subject.type, subject_code=subject.code, kind="land_label",
                    grade=f"{head['verdict']}:{head.get('grade') or ''}"[:64],
                    rule_pack=f"{pack['code']}:{pack['version']}", tested_on=tested_on,
                    valid_until=valid_until.date(), iss=issuer.iss_of(identity))
    label = Certificate(code=code, kind="land_label", subject_type=subject.type, subject_code=subject.code,
                        county_code=subject.county_code, snapshot_json=json.dumps(snap, ensure_ascii=False),
                        issued_at=moment, issued_by=actor.label, valid_until=valid_until, status="valid",
                        token=sign_claims(claims, ring), key_id=ring.current.kid)
    db.session.add(label)
    db.session.flush()
    db.session.add(LandLabelChange(certificate_id=label.id, changed_at=moment, grade=snap["grade"],
                                   verdict=head["verdict"], reason="issued"))
    db.session.flush()
    record(actor.label, Change("certificate", code, "issue_land_label", after=_audit_view(label)))
    return label, True


def note_land_label_change(subject_type: str, code: str, reason: str) -> None:
    """A re-grade: each live land label of the subject notes its new headline, if it changed."""
    labels = _current_for(subject_type, code, kind="land_label")
    if not labels:
        return
    head = _headline(soil_passport(subject_type, code)) or {"verdict": "not_assessed", "grade": None}
    moment = now()
    for label in labels:
        last = db.session.scalar(select(LandLabelChange).where(LandLabelChange.certificate_id == label.id)
                                 .order_by(LandLabelChange.id.desc()).limit(1))
        if last is not None and (last.verdict, last.grade) == (head["verdict"], head.get("grade")):
            continue
        db.session.add(LandLabelChange(certificate_id=label.id, changed_at=moment, grade=head.get("grade"),
                                       verdict=head["verdict"], reason=reason[:500] if reason else None))
    db.session.flush()


def land_label_now(label: Certificate) -> dict[str, Any]:
    """What a land label's page and JSON add: conclusions and elements as of now, since when, the history."""
    passport = soil_passport(label.subject_type, label.subject_code)
    history = [{"at": isoformat(h.changed_at), "grade": h.grade, "verdict": h.verdict}
               for h in db.session.scalars(select(LandLabelChange).where(LandLabelChange.certificate_id == label.id)
                                           .order_by(LandLabelChange.id.desc()).limit(50))]
    head = _headline(passport)
    if head is not None and (not history or (history[0]["verdict"], history[0]["grade"]) != (
            head["verdict"], head.get("grade"))):
        # a change no event told us of (an area without maintained sums is re-graded live, and only its
        # loss of a pass is published): the page still says the conclusion now, since its grades were made
        history.insert(0, {"at": passport.get("since") or isoformat(now()), "grade": head.get("grade"),
                           "verdict": head["verdict"]})
    return {"conclusion": head, "conclusions": passport["conclusions"], "elements": passport["elements"],
            "as_of": isoformat(now()), "since": history[0]["at"] if history else passport.get("since"),
            "tested_on": passport.get("tested_on"), "history": history}


def land_label_caption(label: Certificate) -> str:
    """The label's printed conclusion (as at printing): ``符合/不符合 NY/T 391``."""
    snap = snapshot(label)
    standard = str(snap.get("standard") or "").split("-")[0]
    verdict = snap.get("verdict")
    words = {"meets": "符合", "does_not_meet": "不符合"}.get(verdict, "待定")
    return f"结论：{words}{standard}"


# --- public verification ----------------------------------------------------------------------

_BOT = re.compile(r"bot|crawl|spider|slurp|curl|wget|python|http-client|go-http|java/|okhttp|headless|scan",
                  re.IGNORECASE)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ipod|micromessenger|alipay|harmonyos|windows phone",
                     re.IGNORECASE)
_DESKTOP = re.compile(r"windows nt|macintosh|x11|linux x86_64|cros", re.IGNORECASE)


def client_class(user_agent: str | None) -> str:
    """A coarse class from the User-Agent; nothing else about the client is kept."""
    ua = (user_agent or "")[:512]
    if not ua or _BOT.search(ua):
        return "bot"
    if _MOBILE.search(ua):
        return "mobile"
    if _DESKTOP.search(ua):
        return "desktop"
    return "other"


def check_rate(address: str | None, config: Mapping[str, Any], bucket: str = "verify", *,
               connection: Any = None, moment: datetime | None = None) -> None:
    """Count this request against its address (hashed with the secret key, never stored raw).

    The same fixed-window table as :mod:`fieldsvc.auth.ratelimit`, counted and read back in one
    statement (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``): this runs on every scan.
    """
    window = config["VERIFY_RATE_WINDOW_S"]
    digest = hmac.new(str(config["SECRET_KEY"]).encode(), (address or "unknown").encode(), hashlib.sha256)
    key = f"{bucket}:addr:{digest.hexdigest()[:32]}"
    moment = moment or now()
    count, started = ratelimit.hit(key, window, moment, connection=connection)
    if count > config["VERIFY_RATE_LIMIT"]:
        wait = (started + timedelta(seconds=window) - moment).total_seconds()
        raise rate_limited(max(1, math.ceil(wait)), "Too many verification requests from this address; wait.")


@lru_cache(maxsize=4)
def _scan_statement(dialect: str) -> Any:
    """Built once per engine: constructing the statement cost more than running it."""
    table = CertificateScan.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = insert.values(certificate_id=bindparam("certificate_id"), day=bindparam("day"),
                         client_class=bindparam("client_class"), count=1)
    return stmt.on_conflict_do_update(index_elements=["certificate_id", "day", "client_class"],
                                      set_={"count": table.c.count + 1})


DUMMY_SERIAL = "0000000"


@dataclass(frozen=True)
class Scan:
    """One counted scan of a certificate's or a printed label's QR: the certificate's row (its
    columns, read-only; not an ORM object) and, for a label, its serial and state after this scan."""

    cert: Any
    serial: str | None = None
    serial_status: dict[str, Any] | None = None


def scan(code_text: str, serial_text: str | None, address: str | None, user_agent: str | None,
         config: Mapping[str, Any]) -> Scan | None:
    """A public scan (``/C/<CODE>``, ``/C/<CODE>/<SERIAL>`` and their JSON), counted: the address's
    rate, the certificate's scans and, for a label, its checks. None for an unknown or malformed code
    or serial (a wrong check character too).

    Unknown and malformed codes and serials run the same statements (with a code and serial
    nothing has), so they cost the same and count against the address alike. A write transaction
    of its own, committed before the caller builds the page (so SQLite's write lock is held only
    for these statements): the rate first (a refused request counts nothing), then a label's serial
    found and counted in one ``UPDATE ... RETURNING`` (atomic under concurrent scans), the scan
    upsert and the certificate's row. Core rows on an engine connection, no ORM session or objects:
    on ``bench/certificates.py``'s serial page the ORM's per-statement and per-object work, the
    session's transaction and a second transaction cost more than the statements (with the page
    memo in ``public.py``, the gunicorn workers' CPU per serial page went from 2.5-3.2 to 1.7-2.0 ms,
    measured at load 6-8 on 2 cores).
    """
    code = codes.normalise_code(code_text) if isinstance(code_text, str) else None
    serial = codes.normalise_serial(serial_text) if isinstance(serial_text, str) else None
    moment = now()
    with db.engine.begin() as conn:  # committed on return; a 429 (or any error) rolls it back
        check_rate(address, config, connection=conn, moment=moment)
        if serial_text is None:
            cert = conn.execute(_certificate_by_code(), {"code": code or DUMMY_CODE}).first()
            if cert is None or code is None:
                return None
            _count_scan(conn, cert.id, moment, user_agent)
            return Scan(cert)
        row = conn.execute(_serial_count_statement(), {"code": code or DUMMY_CODE, "now": moment,
                                                       "label_serial": serial or DUMMY_SERIAL,
                                                       "day": moment.date()}).first()
        if row is None or code is None or serial is None:
            return None
        certificate_id, checks, first, days = row
        _count_scan(conn, certificate_id, moment, user_agent)
        cert = conn.execute(_certificate_by_id(), {"id": certificate_id}).one()
    return Scan(cert, serial, serial_status(int(checks), first, int(days), config))


def _count_scan(conn: Any, certificate_id: int, moment: datetime, user_agent: str | None) -> None:
    """One upsert per scan: (certificate, day, coarse client class) → count. No personal data."""
    conn.execute(_scan_statement(conn.dialect.name), {"certificate_id": certificate_id, "day": moment.date(),
                                                      "client_class": client_class(user_agent)})


@lru_cache(maxsize=1)
def _serial_count_statement() -> Any:
    """Built once: building and keying a statement cost more than running it (profiled on every scan)."""
    serials, certs = LabelSerial.__table__, Certificate.__table__
    day = bindparam("day", type_=Date)
    new_day = or_(serials.c.last_checked_on.is_(None), serials.c.last_checked_on != day)
    return (update(serials)
            .where(serials.c.certificate_id == select(certs.c.id).where(certs.c.code == bindparam("code"))
                   .scalar_subquery(), serials.c.serial == bindparam("label_serial"))
            .values(checks=serials.c.checks + 1,
                    first_checked_at=func.coalesce(serials.c.first_checked_at, bindparam("now", type_=UTCDateTime)),
                    days=serials.c.days + case((new_day, 1), else_=0), last_checked_on=day)
            .returning(serials.c.certificate_id, serials.c.checks, serials.c.first_checked_at, serials.c.days))


@lru_cache(maxsize=1)
def _certificate_by_code() -> Any:
    return select(Certificate.__table__).where(Certificate.__table__.c.code == bindparam("code"))


@lru_cache(maxsize=1)
def _certificate_by_id() -> Any:
    return select(Certificate.__table__).where(Certificate.__table__.c.id == bindparam("id"))


def serial_status(checks: int, first: datetime | None, days: int, config: Mapping[str, Any]) -> dict[str, Any]:
    warning = None
    if checks > config["SERIAL_WARN_CHECKS"]:
        warning = "too_many_checks"
    elif days > config["SERIAL_WARN_DAYS"]:
        warning = "too_many_days"
    return {"checks": checks, "first_checked_at": isoformat(first) if first else None, "days": days,
            "warning": warning}


def serial_flag_filter(config: Mapping[str, Any]) -> Any:
    return (LabelSerial.checks > config["SERIAL_WARN_CHECKS"]) | (LabelSerial.days > config["SERIAL_WARN_DAYS"])


def list_serials(actor: Actor, config: Mapping[str, Any], code: str | None = None, flagged: bool = False,
                 limit: int = 500) -> list[dict[str, Any]]:
    """Printed serials for officials: of one certificate, or the flagged ones of the account's county."""
    stmt = select(LabelSerial, Certificate.code).join(Certificate, Certificate.id == LabelSerial.certificate_id)
    if code is not None:
        cert = get_certificate_by_code(code, actor)
        stmt = stmt.where(LabelSerial.certificate_id == cert.id)
    else:
        stmt = stmt.where(access.record_filter(actor, Certificate.county_code))
    if flagged:
        stmt = stmt.where(serial_flag_filter(config))
    rows = db.session.execute(stmt.order_by(LabelSerial.checks.desc(), LabelSerial.id).limit(limit))
    return [{"code": c, "serial": s.serial, "printed_at": isoformat(s.printed_at), "printed_by": s.printed_by,
             **serial_status(s.checks, s.first_checked_at, s.days, config)} for s, c in rows]


def public_status(cert: Certificate, config: Mapping[str, Any]) -> tuple[str, bool]:
    """What a certificate's public page says besides its stored row: its status now, and whether its
    stored signature checks against the current key ring (memoised per ring)."""
    return status_at(cert, now()), _check_stored_token(cert, config) is not None


def verification(cert: Certificate, config: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/verify/<CODE>``: the stored certificate, its status now, and its signed token re-checked."""
    snap = snapshot(cert)
    verified = _check_stored_token(cert, config)
    body = {
        "genuine": verified is not None,
        "code": cert.code,
        "kind": cert.kind,
        "status": status_at(cert, now()),
        "reason": cert.reason,
        "replaced_by": cert.replaced_by,
        "replaced_by_url": (codes.verify_url(config["PUBLIC_BASE_URL"], cert.replaced_by)
                            if cert.replaced_by else None),
        "valid_until": isoformat(cert.valid_until),
        "revoked_at": isoformat(cert.revoked_at),
        "issued_at": isoformat(cert.issued_at),
        "subject": {"type": cert.subject_type, "code": cert.subject_code, "name": snap.get("subject_name"),
                    "place": snap.get("place", {}), "place_en": snap.get("place_en") or snap.get("place", {})},
        "grade": _grade_part(snap),
        "claims": verified.claims.to_dict() if verified else None,
        "signature": cert.token,
        "key_id": cert.key_id,
        "issuer": snap.get("issuer"),
    }
    if cert.kind == "land_label":
        body.update(land_label_now(cert))
    return body


_token_checks: dict[tuple[int, str], VerifiedToken | None] = {}


def _check_stored_token(cert: Certificate, config: Mapping[str, Any]) -> VerifiedToken | None:
    """Re-check the stored signature; a token's answer never changes for one key ring, so it is memoised."""
    ring = keyring(config)
    key = (id(ring), cert.token)
    if key in _token_checks:
        return _token_checks[key]
    try:
        verified: VerifiedToken | None = verify_token(cert.token, ring)
    except Problem:
        verified = None
    if verified is not None and verified.claims.code != cert.code:
        verified = None
    if len(_token_checks) > 50_000:
        _token_checks.clear()
    _token_checks[key] = verified
    return verified


def verify_offline_token(token: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/v1/verify/token``: the signature first (4xx with its reason), then today's status."""
    verified = verify_token(token, keyring(config))
    cert = db.session.scalar(select(Certificate).where(Certificate.code == verified.claims.code))
    status = status_at(cert, now()) if cert is not None else "unknown"
    return {"genuine": True, "status": status, "claims": verified.claims.to_dict(), "key_id": verified.kid,
            "key_status": verified.key_status, "reason": cert.reason if cert is not None else None,
            "replaced_by": cert.replaced_by if cert is not None else None}


# --- batches (CLI, demo) ----------------------------------------------------------------------

@dataclass
class BatchOutcome:
    issued: list[Certificate]
    refused: dict[str, list[str]]  # subject code → reasons


def issue_many(subjects: Sequence[tuple[str, str]], actor: Actor, config: Mapping[str, Any],
               valid_days: int | None = None) -> BatchOutcome:
    """Issue for each subject that qualifies (each in its own savepoint); collect why others did not."""
    outcome = BatchOutcome([], {})
    for subject_type, code in subjects:
        try:
            with db.session.begin_nested():
                cert, _ = issue_certificate({"subject_type": subject_type, "code": code, "valid_days": valid_days},
                                            actor, config)
            outcome.issued.append(cert)
        except Problem as problem:
            outcome.refused[code] = [str(r) for r in problem.details.get("reasons", [problem.message])]
    return outcome


def parcels_of(area_type: str, code: str, actor: Actor) -> list[str]:
    """Codes of the live parcels of a village or farm park."""
    if area_type == "village":
        get_region_by_code(code, actor)
        column = Parcel.village_code
    else:
        get_farm_park_by_code(code, actor)
        column = Parcel.farm_park_code
    stmt = select(Parcel.code).where(column == code, Parcel.deleted_at.is_(None)).order_by(Parcel.code)
    return list(db.session.scalars(stmt))


def issue_demo_certificates(county_code: str, config: Mapping[str, Any], *, max_parcels: int = 12,
                            actor: Actor | None = None) -> dict[str, Any]:
    """Demo: certificates for up to ``max_parcels`` qualifying parcels and one farm park, and one revoked."""
    actor = actor or SYSTEM
    issued: list[Certificate] = []
    # parcels qualified on measured values (tested_on: a grade from the parcel's own samples) first:
    # a survey-density county estimates most parcels, and a certificate needs measured values
    measured = select(Grade.subject_code).where(
        Grade.subject_type == "parcel", Grade.subject_code == Parcel.code, Grade.superseded_by.is_(None),
        Grade.verdict == "qualified", Grade.tested_on.is_not(None)).exists()
    parcels = db.session.scalars(select(Parcel.code).where(Parcel.county_code == county_code,
                                                           Parcel.deleted_at.is_(None))
                                 .order_by(measured.desc(), Parcel.id))
    for code in parcels:
        if len(issued) >= max_parcels:
            break
        issued += issue_many([("parcel", code)], actor, config).issued
    parks = db.session.scalars(select(FarmPark.code).where(FarmPark.county_code == county_code)
                               .order_by(FarmPark.id))
    park_cert = None
    for code in parks:
        done = issue_many([("farm_park", code)], actor, config).issued
        if done:
            park_cert = done[0]
            break
    revoked = None
    if len(issued) > 1:
        revoked = issued[-1]
        _revoke(revoked, "演示：复检不合格 Demo: a re-test failed", actor.label)
    return {"parcel_certificates": [c.code for c in issued], "farm_park_certificate": park_cert.code
            if park_cert else None, "revoked": revoked.code if revoked else None}
