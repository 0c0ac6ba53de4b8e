"""Grade parcels from their stored inputs, keep grade history, and maintain area roll-ups incrementally.

Flush, never commit: the request (or CLI command) that changed the inputs commits.

State per county and rule pack (created by a county run, ``run_grading`` or ``grade_demo_county``):
every parcel of the county has a ``RollupMember`` row (how it is counted: area, village, park,
verdict), and every village, farm park and the county itself has a ``RollupSum`` row equal to the
sum of its members. ``regrade_parcels`` keeps both exact: old outcome out, new outcome in, under a
row lock on the county's sums so concurrent requests cannot lose an update. Without that state
(no county run yet) parcels are still graded, and area grades are computed live on read.

A county run on SQLite may read and evaluate its chunks in worker processes while it writes
(``run_grading(..., workers=N)``: the CLI and the benchmark); it stores exactly what a serial run stores.

Certificates call ``qualification``; after a grade under the default pack changes, this module
calls ``fieldsvc.certificates.services.on_grade_changed`` when that function exists.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select

from ..audit.services import Change, canonical_json, insert_rows, record, record_many
from ..auth.principal import SYSTEM, Actor
from ..dbtypes import isoformat, utcnow
from ..errors import Problem, not_found, validation_failed
from ..extensions import db
from ..gcpause import gc_paused
from ..places.models import FarmPark, Parcel, Region
from ..samples.models import Sample
from . import parallel
from .grade import Measurement, SampleInput, classify_gb15618, evaluate, gb15618_class
from .models import AREA_TYPES, Grade, GradingRun, RollupMember, RollupSum, RulePackVerification
from .rollup import HOLDING_BACK_CAP, AreaGrade, ParcelOutcome, RollupSums, rollup
from .rules import DEFAULT_PACK, RulePack, list_packs, load_pack, to_decimal

GB_PACK = "gb15618_2018"
CHUNK = 2000  # parcels per step of a run (and per IN (...) list)
CHANGED_CAP = 1000  # changed subjects listed on a run (its counts hold the total)
BLOCKING_CONFLICTS = ("hard", "id_conflict")  # open conflicts of these kinds keep a sample out
UNVERIFIED_NOTE = ("The values of this rule pack have not yet been checked against the official standard "
                   "text; treat grades made with it as provisional.")
UNVERIFIED_NOTE_ZH = "本规则包的限值尚未与官方标准文本核对，据此作出的评价仅供参考。"
URL_TYPES = {"parcel": "parcel", "village": "village", "farm-park": "farm_park", "county": "county"}
_EXACT = Context(prec=80)
_ZERO = Decimal(0)

Progress = Callable[[int], Any]
COUNT_KEYS = ("parcels", "qualified", "not_qualified", "indeterminate", "not_graded", "changed", "areas_changed",
              "repaired")


# --- rule packs --------------------------------------------------------------------------

def resolve_pack(code: str | None) -> RulePack:
    """The newest version of a pack; an unknown code is a 422 naming ``rule_pack``."""
    try:
        return load_pack(code or DEFAULT_PACK)
    except Problem as exc:
        if exc.status == 404:
            known = sorted({p.code for p in list_packs()})
            raise validation_failed({"rule_pack": [f"unknown rule pack {code!r}; known: {', '.join(known)}"]}) \
                from None
        raise


def _verifications() -> dict[tuple[str, str], RulePackVerification]:
    return {(v.rule_pack, v.rule_pack_version): v for v in db.session.scalars(select(RulePackVerification))}


def pack_ref(code: str, version: str, verifications: Mapping | None = None) -> dict[str, Any]:
    """``{code, version, verified}`` (plus a note when not verified): what every grade shows."""
    verifications = _verifications() if verifications is None else verifications
    try:
        pack = load_pack(code, version)
        verified = pack.verified or (code, version) in verifications
        standard = pack.standard
    except Problem:  # a version no longer shipped: history stays readable
        verified, standard = (code, version) in verifications, None
    ref: dict[str, Any] = {"code": code, "version": version, "verified": verified, "standard": standard}
    if not verified:
        ref["note"] = UNVERIFIED_NOTE
        ref["note_zh"] = UNVERIFIED_NOTE_ZH
    return ref


def rule_pack_list() -> list[dict[str, Any]]:
    verifications = _verifications()
    items = []
    for pack in list_packs():
        item = pack.to_summary()
        v = verifications.get((pack.code, pack.version))
        item["verified"] = pack.verified or v is not None
        item["verified_by"] = v.verified_by if v else None
        item["verified_at"] = isoformat(v.verified_at) if v else None
        if not item["verified"]:
            item["note"] = UNVERIFIED_NOTE
        items.append(item)
    return items


def verify_rule_pack(code: str, by: str, version: str | None = None, note: str | None = None,
                     actor: Actor = SYSTEM) -> RulePackVerification:
    """An admin states that the pack's values match the official text (CLI ``rule-packs verify``)."""
    from ..auth.services import get_user_by_username

    pack = load_pack(code, version)
    user = get_user_by_username(by)
    if user is None or user.role != "admin":
        raise validation_failed({"by": [f"{by!r} is not an admin account; only an admin may verify a pack"]})
    existing = db.session.scalar(select(RulePackVerification).where(
        RulePackVerification.rule_pack == pack.code, RulePackVerification.rule_pack_version == pack.version))
    if existing is not None:
        return existing
    row = RulePackVerification(rule_pack=pack.code, rule_pack_version=pack.version, verified_by=by, note=note)
    db.session.add(row)
    db.session.flush()
    record(actor.label, Change("rule_pack", f"{pack.code}@{pack.version}", "verify",
                               before={"verified": pack.verified}, after={"verified": True, "by": by, "note": note}))
    return row


# --- inputs ------------------------------------------------------------------------------

@dataclass
class ParcelInputs:
    samples: list[SampleInput] = field(default_factory=list)
    result_ids: list[int] = field(default_factory=list)
    tested_on: date | None = None
    excluded: list[dict[str, str]] = field(default_factory=list)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _qmark() -> bool:
    """Whether the session's driver takes ``?`` marks (SQLite) rather than ``%s`` (psycopg)."""
    return db.session.connection().dialect.paramstyle == "qmark"


def _in_list(n: int) -> str:
    """``IN (…)`` placeholders in the driver's own style (driver-level statements skip SQL compilation)."""
    return _Reader.marks_for(_qmark(), n)


def _driver_sql(sql: str) -> str:
    return _Reader.translate(_qmark(), sql)


def _fetch(sql: str, params: Sequence[Any]) -> list[Any]:
    """Plain tuples of a driver-level SELECT (``?`` marks; no type processing: booleans may be 0/1).

    The DB-API cursor of the session's connection (same transaction), without SQLAlchemy's Row
    wrapping: a county run reads millions of rows.
    """
    return _Reader(db.session.connection().connection, _qmark(), _same).fetch(sql, params)


def _same(value: Any) -> Any:
    return value


class _Reader:
    """Driver-level SELECTs on one DB-API connection: ``?`` marks in, plain tuples out.

    The session's connection (``_session_reader``), or a worker process's own SQLite connection
    (``parallel.read_ahead``); the pure read-and-evaluate half of a run takes one of these.
    """

    __slots__ = ("raw", "qmark", "to_datetime")

    def __init__(self, raw: Any, qmark: bool, to_datetime: Callable[[Any], Any]) -> None:
        self.raw, self.qmark, self.to_datetime = raw, qmark, to_datetime

    @staticmethod
    def marks_for(qmark: bool, n: int) -> str:
        return ",".join(["?" if qmark else "%s"] * n)

    @staticmethod
    def translate(qmark: bool, sql: str) -> str:
        """A statement written with ``?`` marks, in the driver's style."""
        return sql if qmark else sql.replace("?", "%s")

    def marks(self, n: int) -> str:
        return self.marks_for(self.qmark, n)

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self.raw.cursor()
        try:
            cursor.execute(self.translate(self.qmark, sql), tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()


def _session_reader() -> _Reader:
    from ..lab.models import LabResult

    return _Reader(db.session.connection().connection, _qmark(), _result_processor(LabResult.__table__.c.created_at))


def _result_processor(column: Any) -> Callable[[Any], Any]:
    dialect = db.session.connection().dialect
    proc = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return proc or _same


_MEASUREMENTS: dict[tuple, Measurement] = {}  # one immutable object per distinct stored result
_MEASUREMENTS_MAX = 200_000

_SAMPLES_SQL = "SELECT id, code, parcel_code, state, deleted_at FROM samples WHERE parcel_code IN ({})"
_BLOCKED_SQL = ("SELECT c.record_id FROM sync_conflicts c JOIN samples s ON s.id = c.record_id "
                "WHERE s.parcel_code IN ({}) AND c.status = 'open' AND c.kind IN ('"
                + "','".join(BLOCKING_CONFLICTS) + "')")
_RESULTS_SQL = ("SELECT r.sample_id, r.id, r.created_at, r.analyte, r.qualifier, r.value, "
                "r.detection_limit, r.unit FROM samples s JOIN lab_results r ON r.sample_id = s.id "
                "WHERE s.parcel_code IN ({}) AND r.status = 'approved' AND r.qc_type IS NULL "
                "ORDER BY r.sample_id, r.analyte, r.version, r.id")  # a sample's rows together, latest version last
_KEY = slice(3, 8)  # (analyte, qualifier, value, detection_limit, unit) of a results row: the measurement


def _measurement(analyte: str, qualifier: str, value: str | None, dl: str | None, unit: str) -> Measurement:
    key = (analyte, qualifier, value, dl, unit)
    m = _MEASUREMENTS.get(key)
    if m is None:
        if len(_MEASUREMENTS) >= _MEASUREMENTS_MAX:
            _MEASUREMENTS.clear()
        m = _MEASUREMENTS[key] = Measurement(analyte, qualifier, None if value is None else Decimal(value),
                                             None if dl is None else Decimal(dl), unit)
    return m


def load_inputs(parcel_codes: Sequence[str]) -> dict[str, ParcelInputs]:
    """Approved results of each parcel's complete, live samples without open hard conflicts.

    Three driver-level queries per chunk (samples, their blocking conflicts, their approved
    results; no ORM objects, no SQL compilation): a county run reads millions of rows.
    """
    db.session.flush()  # pending ORM writes (a result just approved) must be seen
    return _load_inputs(_session_reader(), parcel_codes)


def _load_inputs(reader: _Reader, parcel_codes: Sequence[str]) -> dict[str, ParcelInputs]:
    codes = list(parcel_codes)
    samples: list[Any] = []
    blocked: set[str] = set()
    per_sample: dict[str, list] = {}  # id → [analyte → measurement, analyte → result id, latest created_at]
    known = _MEASUREMENTS
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        marks = reader.marks(len(chunk))
        samples.extend(reader.fetch(_SAMPLES_SQL.format(marks), chunk))
        blocked.update(r[0] for r in reader.fetch(_BLOCKED_SQL.format(marks), chunk))
        last = entry = measurements = result_ids = None
        for r in reader.fetch(_RESULTS_SQL.format(marks), chunk):
            if r[0] != last:
                last = r[0]
                measurements, result_ids = {}, {}
                entry = per_sample[last] = [measurements, result_ids, r[2]]
            elif r[2] > entry[2]:  # stored timestamps order as text (SQLite) or as values
                entry[2] = r[2]
            key = r[_KEY]  # rows come by version: the highest approved version of an analyte wins
            measurements[r[3]] = known.get(key) or _measurement(*key)
            result_ids[r[3]] = r[1]
    out: dict[str, ParcelInputs] = {}
    to_datetime = reader.to_datetime
    days: dict[Any, date] = {}  # stored timestamp → its day (a lab's batch shares one)
    for sid, code, parcel_code, state, deleted_at in sorted(samples):
        inputs = out.get(parcel_code)
        if inputs is None:
            inputs = out[parcel_code] = ParcelInputs()
        if deleted_at is not None:
            continue
        if sid in blocked:
            inputs.excluded.append({"sample_id": sid, "sample_code": code, "reason": "unresolved_conflict"})
            continue
        if state != "complete":
            inputs.excluded.append({"sample_id": sid, "sample_code": code, "reason": f"incomplete:{state}"})
            continue
        entry = per_sample.get(sid)
        if entry is None:
            continue
        measurements, result_ids, stamp = entry
        inputs.samples.append(SampleInput(sid, code, measurements))
        inputs.result_ids.extend(result_ids.values())
        day = days.get(stamp)
        if day is None:
            day = days[stamp] = to_datetime(stamp).date()
        inputs.tested_on = day if inputs.tested_on is None or day > inputs.tested_on else inputs.tested_on
    return out


# --- evaluating one parcel ------------------------------------------------------------------

class Evaluated(NamedTuple):
    """One parcel's evaluation (a named tuple: a county run moves a million of them between processes).

    ``explanation`` and ``limiting`` may be shared with other parcels: read only. ``inputs`` is the
    dict, or, from a worker process (``parallel._chunk_worker``), its JSON text as the column binds it.
    """

    verdict: str  # qualified | not_qualified | indeterminate | ... | not_graded
    grade: str | None
    qualified: bool
    strict_control: bool
    limiting: list[str]
    explanation: dict[str, Any]
    fingerprint: str
    inputs: dict[str, Any] | str
    tested_on: date | None

    @property
    def graded(self) -> bool:
        return self.verdict != "not_graded"


def _not_graded(reason: str, inputs: ParcelInputs | None) -> Evaluated:
    excluded = inputs.excluded if inputs else []
    fp = hashlib.sha256(canonical_json(["not_graded", reason]).encode()).hexdigest()
    return Evaluated("not_graded", None, False, False, [], {"reason": reason, "excluded_samples": excluded}, fp,
                     {"samples": [], "results": [], "excluded": excluded}, None)


def evaluate_parcel(pack: RulePack, land_use: str, inputs: ParcelInputs | None, deleted: bool = False,
                    gb_pack: RulePack | None = None) -> Evaluated:
    """Grade one parcel; strict control (which caps an area at C) comes from GB 15618 when it can matter.

    A parcel that qualifies under the green-food pack cannot be strict-control, because every
    green-food limit is below the GB 15618 intervention value (a unit test holds the packs to
    that), so GB 15618 is consulted only for parcels that do not qualify.
    """
    if deleted:
        return _not_graded("parcel_deleted", inputs)
    if inputs is None or not inputs.samples:
        return _not_graded("no_approved_results", inputs)
    samples = inputs.samples
    res = evaluate(pack, land_use, samples)
    fp = res.fingerprint
    strict = False
    explanation: dict[str, Any] = {"land_use": land_use}
    if pack.kind == "gb15618":
        strict = res.strict_control  # type: ignore[union-attr]
    elif not res.qualified:
        gb_grade, gb_fp = gb15618_class(land_use, samples, gb_pack or load_pack(GB_PACK))
        strict = gb_grade == "strict_control"  # ClassGrade.strict_control: certain strict control only
        explanation["gb15618_class"] = gb_grade
        fp = hashlib.sha256(f"{fp}|{gb_fp}".encode()).hexdigest()
    explanation["strict_control"] = strict
    explanation["excluded_samples"] = inputs.excluded
    if not inputs.excluded:  # most parcels: one shared object per distinct explanation (cheap to bind)
        explanation = _shared(explanation, (land_use, "gb15618_class" in explanation,
                                            explanation.get("gb15618_class"), strict))
    used = {"samples": sorted([s.sample_id for s in samples]), "results": sorted(map(str, inputs.result_ids)),
            "excluded": inputs.excluded}
    limiting = _shared(list(res.limiting), res.limiting)
    return Evaluated(res.verdict, res.grade, res.qualified, strict, limiting, explanation, fp, used,
                     inputs.tested_on)


_SHARED: dict[Any, Any] = {}  # explanations and limiting lists many parcels share (read-only by contract)


def _shared(value: Any, key: Any) -> Any:
    """The one object kept for ``key`` (``value`` itself the first time): a county run binds few
    distinct explanations, and the row writer processes each distinct object once."""
    key = (type(value), key)
    got = _SHARED.get(key)
    if got is None:
        if len(_SHARED) >= 10_000:
            _SHARED.clear()
        got = _SHARED[key] = value
    return got


def explain(g: Grade) -> dict[str, Any]:
    """A parcel grade's full explanation, rebuilt from the exact result rows it used.

    Stored parcel rows keep only what cannot be recomputed (excluded samples, strict control):
    result rows are immutable and packs are versioned, so the engine gives the same per-analyte
    rows again. ``reproduced`` says whether the rebuilt fingerprint equals the stored one.
    """
    from ..lab.models import LabResult

    stored = dict(g.explanation or {})
    ids = [int(i) for i in (g.inputs or {}).get("results", [])]
    if g.subject_type != "parcel" or not ids:
        return stored
    codes = dict(db.session.execute(select(Sample.id, Sample.code).where(
        Sample.id.in_((g.inputs or {}).get("samples", [])))).all())
    per_sample: dict[str, dict[str, Measurement]] = defaultdict(dict)
    for start in range(0, len(ids), CHUNK):
        for r in db.session.scalars(select(LabResult).where(LabResult.id.in_(ids[start:start + CHUNK]))):
            per_sample[r.sample_id][r.analyte] = Measurement(r.analyte, r.qualifier, _dec(r.value),
                                                             _dec(r.detection_limit), r.unit)
    samples = [SampleInput(sid, codes.get(sid, ""), m) for sid, m in sorted(per_sample.items())]
    try:
        pack = load_pack(g.rule_pack, g.rule_pack_version)
    except Problem:
        return stored | {"reproduced": False, "reason": "rule pack version no longer available"}
    res = evaluate(pack, stored.get("land_use") or "", samples) if stored.get("land_use") else None
    if res is None:
        return stored
    d = res.to_dict()
    fp = res.fingerprint
    if "gb15618_class" in stored and pack.kind != "gb15618":
        fp = hashlib.sha256(f"{fp}|{classify_gb15618(res.land_use, samples, load_pack(GB_PACK)).fingerprint}"
                            .encode()).hexdigest()
    extra = {k: v for k, v in d.items() if k not in ("verdict", "qualified", "grade", "limiting", "pack",
                                                    "fingerprint", "explanation", "land_use")}
    return {"analytes": d["explanation"], **extra, **stored, "reproduced": fp == g.fingerprint}


# --- members and sums -----------------------------------------------------------------------

Member = tuple  # (village, park, county, area float, verdict|None, qualified, strict)


def _outcome(code: str, m: Member) -> ParcelOutcome:
    return ParcelOutcome(code, m[3], m[4], m[6])


def _areas_of(m: Member) -> list[tuple[str, str]]:
    areas = [("village", m[0]), ("county", m[2])]
    if m[1]:
        areas.append(("farm_park", m[1]))
    return areas


def _sums_from_row(row: RollupSum) -> RollupSums:
    return RollupSums(Decimal(row.total_area), Decimal(row.graded_area), Decimal(row.qualified_area),
                      row.parcel_count, row.graded_count, row.qualified_count, row.strict_count)


def canonical_decimal(d: Decimal) -> str:
    """One text per value ("6927.7", never "6927.70"): sums reached by different paths print alike."""
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return str(d.normalize())


AREA_KEYS = ("total_area_m2", "graded_area_m2", "qualified_area_m2", "coverage", "qualified_share")


def area_dict(ag: AreaGrade) -> dict[str, Any]:
    """``AreaGrade.to_dict`` with areas in canonical decimal text."""
    body = ag.to_dict()
    for key in AREA_KEYS:
        body[key] = canonical_decimal(Decimal(body[key]))
    return body


def _sums_values(s: RollupSums) -> dict[str, Any]:
    return {"total_area": canonical_decimal(s.total_area), "graded_area": canonical_decimal(s.graded_area),
            "qualified_area": canonical_decimal(s.qualified_area), "parcel_count": s.parcel_count,
            "graded_count": s.graded_count, "qualified_count": s.qualified_count, "strict_count": s.strict_count}


class _Acc:
    """A mutable RollupSums for full rebuilds (same exact arithmetic, without a copy per parcel)."""

    __slots__ = ("total", "graded", "qualified", "n", "ng", "nq", "ns")

    def __init__(self) -> None:
        self.total = self.graded = self.qualified = _ZERO
        self.n = self.ng = self.nq = self.ns = 0

    def add(self, m: Member, area: Decimal | None = None) -> None:
        area = to_decimal(m[3]) if area is None else area
        self.total = _EXACT.add(self.total, area)
        self.n += 1
        if m[4] is not None:
            self.graded = _EXACT.add(self.graded, area)
            self.ng += 1
        if m[5]:
            self.qualified = _EXACT.add(self.qualified, area)
            self.nq += 1
        if m[6]:
            self.ns += 1

    def merge(self, other: _Acc) -> None:
        self.total = _EXACT.add(self.total, other.total)
        self.graded = _EXACT.add(self.graded, other.graded)
        self.qualified = _EXACT.add(self.qualified, other.qualified)
        self.n += other.n
        self.ng += other.ng
        self.nq += other.nq
        self.ns += other.ns

    def sums(self) -> RollupSums:
        return RollupSums(self.total, self.graded, self.qualified, self.n, self.ng, self.nq, self.ns)


def county_has_state(county: str, pack_code: str) -> bool:
    return db.session.scalar(select(RollupSum.id).where(
        RollupSum.subject_type == "county", RollupSum.subject_code == county, RollupSum.rule_pack == pack_code)) \
        is not None


def _lock_sums(pack_code: str, areas: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RollupSum]:
    """Sums rows for these areas, locked (PostgreSQL) county first, then parks, then villages."""
    order = {"county": 0, "farm_park": 1, "village": 2}
    wanted = sorted(set(areas), key=lambda a: (order[a[0]], a[1]))
    found: dict[tuple[str, str], RollupSum] = {}
    for kind in ("county", "farm_park", "village"):
        codes = [c for t, c in wanted if t == kind]
        for start in range(0, len(codes), CHUNK):
            stmt = (select(RollupSum).where(RollupSum.subject_type == kind, RollupSum.rule_pack == pack_code,
                                            RollupSum.subject_code.in_(codes[start:start + CHUNK]))
                    .order_by(RollupSum.subject_code).with_for_update())
            found.update({(r.subject_type, r.subject_code): r for r in db.session.scalars(stmt)})
    return found


def _area_fingerprint(pack: RulePack, sums: RollupSums) -> str:
    body = {"pack": [pack.code, pack.version], "thresholds": {k: str(v) for k, v in pack.rollup_thresholds.items()},
            "sums": _sums_values(sums)}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


# --- the grading pass (shared by incremental re-grades and whole-scope runs) ---------------------

@dataclass
class GradeChange:
    subject_type: str
    code: str
    grade_id: int
    grade: str | None
    verdict: str
    qualified: bool
    previous: dict[str, Any] | None  # {grade, verdict, qualified} of the superseded row, None if first
    live_areas: tuple[tuple[str, str], ...] = ()  # a parcel's village/park when their grades are computed live

    def to_dict(self) -> dict[str, Any]:
        return {"subject_type": self.subject_type, "code": self.code, "grade_id": str(self.grade_id),
                "grade": self.grade, "verdict": self.verdict, "qualified": self.qualified,
                "previous": self.previous}


@dataclass
class _Pass:
    pack: RulePack
    actor: Actor
    run_id: int | None
    rebuild_counties: set[str]  # counties whose sums are rebuilt from scratch in this pass
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int, dict.fromkeys(COUNT_KEYS, 0)))
    changes: list[GradeChange] = field(default_factory=list)
    deltas: list[tuple[str, Member | None, Member | None]] = field(default_factory=list)
    state: dict[str, bool] = field(default_factory=dict)  # county → has maintained state
    gb_pack: RulePack | None = None
    notify_only: list[GradeChange] = field(default_factory=list)  # a run's changes past CHANGED_CAP, for _notify
    # rebuilt counties' sums, per (village, park, county) of members (summed into areas at the end)
    accs: dict[tuple[str, str | None, str], _Acc] = field(default_factory=lambda: defaultdict(_Acc))
    accumulated: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # members counted in ``accs``


def _keep(p: _Pass, c: GradeChange) -> None:
    """Keep a change: all of them when incremental; a run keeps the first CHANGED_CAP (its list is capped)
    and, past that, only those the certificates hook must hear about."""
    if p.run_id is None or len(p.changes) < CHANGED_CAP:
        p.changes.append(c)
    elif c.previous is not None and (c.previous.get("qualified"), c.previous.get("grade")) != (c.qualified, c.grade):
        p.notify_only.append(c)


_PARCELS_SQL = ("SELECT code, village_code, farm_park_code, county_code, land_use, area_m2, deleted_at "
                "FROM parcels WHERE code IN ({})")
_CURRENT_SQL = ("SELECT id, subject_code, fingerprint, verdict, grade, qualified, strict_control FROM grades "
                "WHERE subject_type = 'parcel' AND rule_pack = ? AND superseded_by IS NULL AND subject_code IN ({})")
_MEMBERS_SQL = ("SELECT parcel_code, village_code, farm_park_code, county_code, area_m2, verdict, qualified, "
                "strict_control FROM rollup_members WHERE rule_pack = ? AND parcel_code IN ({})")


def _grade_chunk(p: _Pass, codes: Sequence[str]) -> None:
    """Evaluate a chunk of parcels; write new grade rows and member changes; collect sums deltas.

    Reads are driver-level statements (one per table per chunk), so a run pays for rows, not for
    SQL compilation or ORM objects.
    """
    db.session.flush()
    _apply_chunk(p, *_read_and_evaluate(_session_reader(), p.pack, p.gb_pack, codes))


ChunkState = tuple  # (parcel rows, current grade rows, member rows, Evaluated per parcel in code order[, bound])


def _read_and_evaluate(reader: _Reader, pack: RulePack, gb_pack: RulePack | None,
                       codes: Sequence[str]) -> ChunkState:
    """The read-only half of a chunk: its parcels, inputs, current grades and members, and the
    evaluation of each parcel (in code order). Touches no session: a worker process runs it too."""
    marks = reader.marks(len(codes))
    parcels = reader.fetch(_PARCELS_SQL.format(marks), codes)
    parcels.sort()
    inputs = _load_inputs(reader, [r[0] for r in parcels])
    current = reader.fetch(_CURRENT_SQL.format(marks), [pack.code, *codes])
    members = reader.fetch(_MEMBERS_SQL.format(marks), [pack.code, *codes])
    evaluated = [evaluate_parcel(pack, r[4], inputs.get(r[0]), r[6] is not None, gb_pack) for r in parcels]
    return parcels, current, members, evaluated


def _apply_chunk(p: _Pass, parcels: list[tuple], current_rows: list[tuple], member_rows: list[tuple],
                 evaluated: Sequence[Evaluated], inputs_bound: bool = False) -> None:
    """The writing half of a chunk: new grade rows, member changes, counts and sums deltas.

    ``inputs_bound``: each ``Evaluated.inputs`` is already the column's bound JSON text (from a worker).
    """
    now = utcnow()
    current = {r[1]: r for r in current_rows}
    members = {r[0]: (r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7])) for r in member_rows}
    new_rows, superseded, previous = [], [], []
    member_upserts: dict[str, Member] = {}
    member_deletes: list[str] = []
    rebuild = p.rebuild_counties
    verdicts: dict[str, int] = defaultdict(int)
    for (code, village, park, county, _, area, deleted_at), ev in zip(parcels, evaluated, strict=True):
        deleted = deleted_at is not None
        verdicts[ev.verdict] += 1
        cur = current.get(code)
        same = cur is not None and (cur[2], cur[3], cur[4], bool(cur[6])) == (
            ev.fingerprint, ev.verdict, ev.grade, ev.strict_control)
        if not same and (cur is not None or ev.graded):
            new_rows.append((code, county, ev, village, park))
            superseded.append(cur[0] if cur is not None else None)
            previous.append(None if cur is None else {"grade": cur[4], "verdict": cur[3], "qualified": bool(cur[5])})
        in_rebuild = county in rebuild
        new_m = None
        if not deleted and (in_rebuild or _has_state(p, county)):
            new_m = (village, park, county, float(area), ev.verdict if ev.graded else None, ev.qualified,
                     ev.strict_control)
            if in_rebuild:
                _accumulate(p, new_m)
        old_m = members.get(code)
        if old_m != new_m:
            if new_m is None:
                member_deletes.append(code)
            else:
                member_upserts[code] = new_m
            if not ((old_m is None or old_m[2] in rebuild) and (new_m is None or new_m[2] in rebuild)):
                p.deltas.append((code, old_m, new_m))  # a rebuilt county counts its members itself
    p.counts["parcels"] += len(parcels)
    for verdict, n in verdicts.items():
        p.counts[verdict] += n
    _write_grades(p, new_rows, superseded, previous, now, inputs_bound)
    _write_members(p, member_upserts, member_deletes, members)


def _accumulate(p: _Pass, m: Member) -> None:
    """Count a member of a county being rebuilt (once, into its village-park-county bucket)."""
    p.accs[(m[0], m[1], m[2])].add(m)
    p.accumulated[m[2]] += 1


def _area_accs(buckets: Mapping[tuple[str, str | None, str], _Acc]) -> dict[tuple[str, str], _Acc]:
    """Village, park and county sums from the buckets (exact sums: the order of adding does not matter)."""
    accs: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    for (village, park, county), acc in buckets.items():
        accs[("village", village)].merge(acc)
        accs[("county", county)].merge(acc)
        if park:
            accs[("farm_park", park)].merge(acc)
    return accs


def _has_state(p: _Pass, county: str) -> bool:
    """Whether the county has maintained state for this pass's pack (looked up once per county)."""
    if county not in p.state:
        p.state[county] = county_has_state(county, p.pack.code)
    return p.state[county]


_GRADE_FIXED = ("subject_type", "rule_pack", "rule_pack_version", "computed_at", "computed_by", "run_id",
                "superseded_by")
_GRADE_COLUMNS = ("subject_code", "county_code", "grade", "verdict", "qualified", "strict_control", "limiting",
                  "explanation", "fingerprint", "inputs", "tested_on")
_GRADE_MEMO = ("qualified", "strict_control", "limiting", "explanation", "tested_on")


def _write_grades(p: _Pass, rows: list[tuple], superseded: list[int | None], previous: list, now: Any,
                  inputs_bound: bool = False) -> None:
    """Insert the new parcel grade rows, supersede the old ones, and note the changes."""
    if not rows:
        return
    t = Grade.__table__
    values = [(code, county, ev.grade, ev.verdict, ev.qualified, ev.strict_control, ev.limiting, ev.explanation,
               ev.fingerprint, ev.inputs, ev.tested_on) for code, county, ev, _, _ in rows]
    if p.run_id is None:  # a few rows: ids straight back
        dicts = [dict(zip(_GRADE_COLUMNS, v, strict=True)) | {
            "subject_type": "parcel", "rule_pack": p.pack.code, "rule_pack_version": p.pack.version,
            "computed_at": now, "computed_by": p.actor.label, "run_id": None, "superseded_by": None} for v in values]
        ids: list[int | None] = [r[0] for r in db.session.execute(
            insert(t).returning(t.c.id, sort_by_parameter_order=True), dicts)]
    else:  # a run: one driver executemany, then the ids of the rows that supersede one or are listed
        insert_rows(t, _GRADE_FIXED, ("parcel", p.pack.code, p.pack.version, now, p.actor.label, p.run_id, None),
                    _GRADE_COLUMNS, values, memo=_GRADE_MEMO,
                    prebound=("inputs",) if inputs_bound else ())
        room = max(0, CHANGED_CAP - len(p.changes))
        wanted = [row[0] for k, (row, old) in enumerate(zip(rows, superseded, strict=True))
                  if old is not None or k < room]
        made: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            made.update((r[0], r[1]) for r in _fetch(
                "SELECT subject_code, id FROM grades WHERE subject_type = 'parcel' AND rule_pack = ? "
                f"AND run_id = ? AND superseded_by IS NULL AND subject_code IN ({_in_list(len(chunk))})",
                [p.pack.code, p.run_id, *chunk]))
        ids = [made.get(row[0]) for row in rows]
    pairs = [(new, old) for old, new in zip(superseded, ids, strict=True) if old is not None]
    if pairs:
        db.session.connection().exec_driver_sql(_driver_sql("UPDATE grades SET superseded_by = ? WHERE id = ?"),
                                                pairs)
    p.counts["changed"] += len(rows)
    for (code, county, ev, village, park), gid, prev in zip(rows, ids, previous, strict=True):
        if gid is None:
            continue  # past the run's listed changes and a first grade: nothing to note
        live = () if county in p.rebuild_counties or _has_state(p, county) else \
            tuple(a for a in (("village", village), ("farm_park", park)) if a[1])
        _keep(p, GradeChange("parcel", code, gid, ev.grade, ev.verdict, ev.qualified, prev, live))


_MEMBER_COLUMNS = ("parcel_code", "village_code", "farm_park_code", "county_code", "area_m2", "verdict", "qualified",
                   "strict_control")


def _write_members(p: _Pass, upserts: Mapping[str, Member], deletes: list[str], stored: Mapping[str, Any]) -> None:
    """Replace changed member rows; ``stored`` holds the chunk's rows as read (only those are deleted)."""
    gone = [code for code in (*deletes, *upserts) if code in stored]
    conn = db.session.connection()
    for start in range(0, len(gone), CHUNK):
        chunk = gone[start:start + CHUNK]
        conn.exec_driver_sql(_driver_sql(f"DELETE FROM rollup_members WHERE rule_pack = ? AND parcel_code IN "
                                         f"({_in_list(len(chunk))})"), (p.pack.code, *chunk))
    if upserts:
        insert_rows(RollupMember.__table__, ("rule_pack",), (p.pack.code,), _MEMBER_COLUMNS,
                    [(code, *m) for code, m in upserts.items()], memo=("qualified", "strict_control"))


def _apply_deltas(p: _Pass) -> set[tuple[str, str]]:
    """Old outcome out, new outcome in, for every area a changed member touches; returns changed areas.

    Members of counties this pass rebuilds from scratch are skipped (the rebuild counts them).
    """
    def areas(m: Member | None) -> set[tuple[str, str]]:
        return set(_areas_of(m)) if m is not None and m[2] not in p.rebuild_counties else set()

    touched = {a for _, old, new in p.deltas for a in areas(old) | areas(new)}
    if not touched:
        return set()
    rows = _lock_sums(p.pack.code, touched)
    sums = {a: _sums_from_row(r) for a, r in rows.items()}
    for code, old, new in p.deltas:
        old_areas, new_areas = areas(old), areas(new)
        for area in old_areas | new_areas:
            if area in sums:  # an area made after the county's last run gets its row at the next run
                sums[area] = sums[area].apply(_outcome(code, old) if area in old_areas else None,
                                              _outcome(code, new) if area in new_areas else None)
    changed = set()
    now = utcnow()
    for area, row in rows.items():
        if sums[area] != _sums_from_row(row):
            for k, v in _sums_values(sums[area]).items():
                setattr(row, k, v)
            row.updated_at = now
            changed.add(area)
    db.session.flush()
    return changed


def _rebuild_county(p: _Pass, county: str) -> set[tuple[str, str]]:
    """Sums of the county, its villages and its parks from its members (the full recompute)."""
    stored = db.session.scalar(select(func.count()).select_from(RollupMember).where(
        RollupMember.rule_pack == p.pack.code, RollupMember.county_code == county))
    if stored == p.accumulated.get(county, 0):  # every member was counted while grading: the same set
        accs = _area_accs(p.accs)  # a pass rebuilds one county: every accumulated member is of this county
    else:  # members this pass did not see (a parcel moved out of the county since): count them all
        accs = defaultdict(_Acc)
        for m in db.session.execute(select(RollupMember.village_code, RollupMember.farm_park_code,
                                           RollupMember.county_code, RollupMember.area_m2, RollupMember.verdict,
                                           RollupMember.qualified, RollupMember.strict_control)
                                    .where(RollupMember.rule_pack == p.pack.code,
                                           RollupMember.county_code == county)):
            m = tuple(m)
            for area in _areas_of(m):
                accs[area].add(m)
    accs[("county", county)]  # noqa: B018  (a county with no parcels still gets its row)
    for code in db.session.scalars(select(Region.code).where(Region.county_code == county, Region.level == "village")):
        accs[("village", code)]  # noqa: B018
    for code in db.session.scalars(select(FarmPark.code).where(FarmPark.county_code == county)):
        accs[("farm_park", code)]  # noqa: B018
    existing = _lock_sums(p.pack.code, accs)
    changed, now = set(), utcnow()
    for area, acc in accs.items():
        sums = acc.sums()
        row = existing.get(area)
        if row is None:
            db.session.add(RollupSum(subject_type=area[0], subject_code=area[1], county_code=county,
                                     rule_pack=p.pack.code, updated_at=now, **_sums_values(sums)))
            changed.add(area)
        elif _sums_from_row(row) != sums:
            for k, v in _sums_values(sums).items():
                setattr(row, k, v)
            row.updated_at = now
            changed.add(area)
    db.session.flush()
    return changed


def _write_area_grades(p: _Pass, areas: Iterable[tuple[str, str]]) -> None:
    """A new area grade row for each area whose sums (hence grade inputs) changed."""
    areas = sorted(set(areas))
    if not areas:
        return
    rows = _lock_sums(p.pack.code, areas)
    now = utcnow()
    for kind in AREA_TYPES:
        codes = [c for t, c in areas if t == kind]
        for start in range(0, len(codes), CHUNK):
            chunk = codes[start:start + CHUNK]
            current = {g.subject_code: g for g in db.session.scalars(select(Grade).where(
                Grade.subject_type == kind, Grade.rule_pack == p.pack.code, Grade.superseded_by.is_(None),
                Grade.subject_code.in_(chunk)))}
            for code in chunk:
                row = rows.get((kind, code))
                if row is None:
                    continue
                sums = _sums_from_row(row)
                fp = _area_fingerprint(p.pack, sums)
                cur = current.get(code)
                if cur is not None and cur.fingerprint == fp:
                    continue
                ag = AreaGrade.from_sums(sums, p.pack)
                explanation = area_dict(ag)
                explanation.pop("holding_back")  # listed live on read (it is a query, not a sum)
                g = Grade(subject_type=kind, subject_code=code, county_code=row.county_code, rule_pack=p.pack.code,
                          rule_pack_version=p.pack.version, grade=ag.grade,
                          verdict="qualified" if ag.qualified else "not_qualified", qualified=ag.qualified,
                          strict_control=sums.strict_count > 0, limiting=[], explanation=explanation, fingerprint=fp,
                          inputs=_sums_values(sums), tested_on=None, computed_at=now, computed_by=p.actor.label,
                          run_id=p.run_id)
                db.session.add(g)
                db.session.flush()
                if cur is not None:
                    cur.superseded_by = g.id
                prev = None if cur is None else {"grade": cur.grade, "verdict": cur.verdict,
                                                 "qualified": cur.qualified}
                p.changes.append(GradeChange(kind, code, g.id, g.grade, g.verdict, g.qualified, prev))
                p.counts["areas_changed"] += 1
    db.session.flush()


def _finish(p: _Pass, changed_areas: set[tuple[str, str]]) -> None:
    _write_area_grades(p, changed_areas)
    if p.run_id is None:  # incremental: one audit event per new grade row (runs audit the run itself)
        record_many(p.actor.label, [Change("grade", f"{c.subject_type}:{c.code}", "regrade", before=c.previous,
                                           after={"grade_id": str(c.grade_id), "grade": c.grade, "verdict": c.verdict,
                                                  "rule_pack": f"{p.pack.code}@{p.pack.version}"})
                                    for c in p.changes])
    _notify(p)


def _notify(p: _Pass) -> None:
    """Tell certificates about changed grades under the default pack (skipped until they exist)."""
    if p.pack.code != DEFAULT_PACK:
        return
    hook = _certificate_hook()
    if hook is None:
        return
    live: set[tuple[str, str]] = set()
    for c in [*p.changes, *p.notify_only]:
        if c.previous is None:
            continue  # a first grade: no certificate can exist yet
        if (c.previous.get("qualified"), c.previous.get("grade")) == (c.qualified, c.grade):
            continue
        reason = f"regraded: {c.verdict}" + (f" ({c.grade})" if c.grade else "")
        hook(c.subject_type, c.code, c.qualified, reason)
        if c.previous.get("qualified") and not c.qualified:
            live.update(c.live_areas)
    for kind, code in sorted(live):  # areas without maintained sums: their grade is recomputed live
        ag = live_area_grade(kind, code, p.pack)
        hook(kind, code, ag.qualified, f"regraded: grade {ag.grade}")


def _certificate_hook() -> Callable[..., Any] | None:
    if importlib.util.find_spec("fieldsvc.certificates.services") is None:
        return None
    module = importlib.import_module("fieldsvc.certificates.services")
    return getattr(module, "on_grade_changed", None)


# --- incremental re-grading --------------------------------------------------------------------

def regrade_parcels(parcel_codes: Iterable[str], pack: str | RulePack | None = None,
                    actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """Re-grade these parcels in the current transaction; idempotent; areas follow incrementally.

    ``pack`` None: the default pack and every pack with maintained state in the parcels' counties.
    Returns the grade changes (parcels and areas), empty when nothing changed.
    """
    codes = sorted(set(parcel_codes))
    if not codes:
        return []
    if pack is None:
        packs = {DEFAULT_PACK} | set(db.session.scalars(select(RollupSum.rule_pack).where(
            RollupSum.subject_type == "county", RollupSum.subject_code.in_(_counties_of(codes)))))
        chosen = [load_pack(c) for c in sorted(packs)]
    else:
        chosen = [pack if isinstance(pack, RulePack) else resolve_pack(pack)]
    changes: list[dict[str, Any]] = []
    for rp in chosen:
        p = _Pass(rp, actor, None, set(), gb_pack=load_pack(GB_PACK))
        _lock_counties(p, codes)
        for start in range(0, len(codes), CHUNK):
            _grade_chunk(p, codes[start:start + CHUNK])
        _finish(p, _apply_deltas(p))
        changes.extend(c.to_dict() | {"rule_pack": rp.code} for c in p.changes)
    return changes


def _lock_counties(p: _Pass, codes: Sequence[str]) -> None:
    """Take the county sums' row locks first, so two re-grades in one county serialise (PostgreSQL)."""
    _lock_sums(p.pack.code, [("county", c) for c in _counties_of(codes)])


def _counties_of(codes: Sequence[str]) -> set[str]:
    counties: set[str] = set()
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        counties.update(db.session.scalars(select(Parcel.county_code).where(Parcel.code.in_(chunk))))
    return counties


def regrade_for_samples(sample_ids: Iterable[str], actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """The parcels of these samples, re-graded (lab approval, sample edit, conflict resolution)."""
    ids = sorted(set(sample_ids))
    parcels: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        parcels.update(db.session.scalars(select(Sample.parcel_code).where(Sample.id.in_(ids[start:start + CHUNK]))))
    return regrade_parcels(parcels, actor=actor)


# --- whole-scope runs --------------------------------------------------------------------------

SCOPE_TYPES = ("county", "village", "farm_park", "parcel")


_SCOPE_COLUMNS = {"county": "county_code", "village": "village_code", "farm_park": "farm_park_code", "parcel": "code"}
_SCOPE_SQL = "SELECT code FROM parcels WHERE {} = ? ORDER BY code"  # a run's parcels, in the order it grades them


def scope_county(scope_type: str, code: str, actor: Actor) -> str:
    """The county a scope lies in (404 when unknown or outside the actor's county)."""
    if scope_type == "county":
        region = db.session.scalar(select(Region).where(Region.code == code, Region.level == "county"))
        county = region.county_code if region else None
    elif scope_type == "village":
        region = db.session.scalar(select(Region).where(Region.code == code, Region.level == "village"))
        county = region.county_code if region else None
    elif scope_type == "farm_park":
        park = db.session.scalar(select(FarmPark).where(FarmPark.code == code))
        county = park.county_code if park else None
    else:
        parcel = db.session.scalar(select(Parcel).where(Parcel.code == code))
        county = parcel.county_code if parcel else None
    if county is None or not actor.can_see_county(county):
        raise not_found(scope_type, code)
    return county


def run_grading(scope_type: str, code: str, pack: str | RulePack | None = None, actor: Actor = SYSTEM,
                progress: Progress | None = None, workers: int = 0) -> GradingRun:
    """Recompute every parcel in scope and rebuild the sums it covers (rule-pack changes, repairs).

    A county run creates the county's maintained state when it has none. A village or farm-park
    run re-grades its parcels, follows with the county incrementally, and rebuilds its own sums,
    counting a difference as ``repaired``.

    ``workers`` > 0 lets that many worker processes read and evaluate chunks ahead while this
    process writes (see ``parallel.read_ahead``); it is only used where that is safe (SQLite in WAL
    mode, called outside any transaction) and the run is otherwise serial, with the same result.
    """
    if scope_type not in SCOPE_TYPES:
        raise validation_failed({"scope": [f"one of {', '.join(SCOPE_TYPES)}"]})
    session = db.session()
    fresh = not (session.in_transaction() or session.new or session.dirty or session.deleted)  # parallel.path_for
    rp = pack if isinstance(pack, RulePack) else resolve_pack(pack)
    county = scope_county(scope_type, code, actor)
    started = time.perf_counter()
    run = GradingRun(scope_type=scope_type, scope_code=code, county_code=county, rule_pack=rp.code,
                     rule_pack_version=rp.version, counts={}, changed=[], created_by=actor.label,
                     started_at=utcnow())
    db.session.add(run)
    db.session.flush()
    rebuild = {county} if scope_type == "county" else set()
    p = _Pass(rp, actor, run.id, rebuild, gb_pack=load_pack(GB_PACK))
    _lock_sums(rp.code, [("county", county)])
    path = parallel.path_for(workers, fresh)
    if path is not None:
        parallel.warm()  # the fork server imports while this process lists the parcels
    codes = [r[0] for r in _fetch(_SCOPE_SQL.format(_SCOPE_COLUMNS[scope_type]), [code])]
    chunks = [codes[start:start + CHUNK] for start in range(0, len(codes), CHUNK)]
    if len(chunks) < 2:
        path = None  # nothing to overlap
    restore = _large_cache()
    try:
        with gc_paused():
            if path is None:
                for chunk in chunks:
                    _grade_chunk(p, chunk)
                    if progress is not None:
                        progress(len(chunk))
            else:
                for chunk, state in zip(chunks, parallel.read_ahead(path, rp, p.gb_pack, chunks, workers), strict=True):
                    db.session.flush()
                    _apply_chunk(p, *state)
                    if progress is not None:
                        progress(len(chunk))
    finally:
        restore()
    if scope_type == "county":
        changed = _rebuild_county(p, county)
    else:
        changed = _apply_deltas(p)
        if scope_type in ("village", "farm_park") and county_has_state(county, rp.code):
            changed |= _repair_area(p, scope_type, code)
    _finish(p, changed)
    run.counts = {k: int(p.counts[k]) for k in (*COUNT_KEYS, *sorted(set(p.counts) - set(COUNT_KEYS)))}
    run.changed = [c.to_dict() for c in p.changes[:CHANGED_CAP]]
    run.finished_at = utcnow()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    db.session.flush()
    record(actor.label, Change("grading_run", str(run.id), "run", after=run_dict(run, include_changed=False)))
    return run


RUN_CACHE_KIB = 262_144  # SQLite page cache of a run's connection (256 MiB), restored afterwards
RUN_MMAP_BYTES = 0x7FFF0000  # SQLite's default ceiling (2 GiB): reads come straight from the OS cache


def _large_cache() -> Callable[[], None]:
    """On SQLite, give a run's connection a big page cache and memory-mapped reads (with the default
    2 MiB cache every chunk re-reads index pages of the results table: 1 M parcels ran 1.7x slower per
    parcel than 20,000); returns what restores the connection's settings (pooled connections are reused)."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return lambda: None
    raw = conn.connection
    cache = raw.execute("PRAGMA cache_size").fetchone()[0]
    mmap = raw.execute("PRAGMA mmap_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{RUN_CACHE_KIB}")
    raw.execute(f"PRAGMA mmap_size = {RUN_MMAP_BYTES}")

    def restore() -> None:
        raw.execute(f"PRAGMA cache_size = {int(cache)}")
        raw.execute(f"PRAGMA mmap_size = {int(mmap)}")

    return restore


def _repair_area(p: _Pass, kind: str, code: str) -> set[tuple[str, str]]:
    column = {"village": RollupMember.village_code, "farm_park": RollupMember.farm_park_code}[kind]
    acc = _Acc()
    for m in db.session.execute(select(RollupMember.village_code, RollupMember.farm_park_code,
                                       RollupMember.county_code, RollupMember.area_m2, RollupMember.verdict,
                                       RollupMember.qualified, RollupMember.strict_control)
                                .where(RollupMember.rule_pack == p.pack.code, column == code)):
        acc.add(tuple(m))
    rows = _lock_sums(p.pack.code, [(kind, code)])
    row = rows.get((kind, code))
    sums = acc.sums()
    if row is None:
        county = db.session.scalar(select(RollupMember.county_code).where(column == code).limit(1))
        if county is None:
            return set()
        db.session.add(RollupSum(subject_type=kind, subject_code=code, county_code=county, rule_pack=p.pack.code,
                                 updated_at=utcnow(), **_sums_values(sums)))
    elif _sums_from_row(row) == sums:
        return set()
    else:
        for k, v in _sums_values(sums).items():
            setattr(row, k, v)
    p.counts["repaired"] += 1
    db.session.flush()
    return {(kind, code)}


def run_dict(run: GradingRun, include_changed: bool = True) -> dict[str, Any]:
    body = {"id": str(run.id), "scope": {run.scope_type: run.scope_code}, "county": run.county_code,
            "rule_pack": pack_ref(run.rule_pack, run.rule_pack_version), "counts": run.counts,
            "created_by": run.created_by, "started_at": isoformat(run.started_at),
            "finished_at": isoformat(run.finished_at), "duration_ms": run.duration_ms}
    if include_changed:
        body["changed"] = run.changed
    return body


def get_run(run_id: int, actor: Actor) -> GradingRun:
    run = db.session.get(GradingRun, run_id) if 0 < run_id < 2 ** 63 else None
    if run is None or not actor.can_see_county(run.county_code):
        raise not_found("grading_run", run_id)
    return run


def grade_demo_county(county_code: str) -> dict[str, Any]:
    """Grade the demo county with the default pack after its demo results are loaded; flushes only."""
    run = run_grading("county", county_code, DEFAULT_PACK, SYSTEM)
    return run_dict(run, include_changed=False)


# --- reading grades -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    type: str
    code: str
    county: str
    info: dict[str, Any]


def get_subject(subject_type: str, code: str, actor: Actor | None = None) -> Subject:
    """The subject of a grade; 404 when unknown, outside the actor's county or a device's assignment."""
    if subject_type == "parcel":
        stmt = select(Parcel).where(Parcel.code == code)
        if actor is not None:
            from ..places.services import parcel_scope

            stmt = stmt.where(*parcel_scope(actor))
        parcel = db.session.scalar(stmt)
        if parcel is None:
            raise not_found("parcel", code)
        return Subject("parcel", code, parcel.county_code, {
            "village": parcel.village_code, "farm_park": parcel.farm_park_code, "county": parcel.county_code,
            "land_use": parcel.land_use, "crop": parcel.crop, "area_m2": parcel.area_m2,
            "deleted": parcel.deleted_at is not None})
    if subject_type in ("village", "county"):
        region = db.session.scalar(select(Region).where(Region.code == code, Region.level == subject_type))
        if region is None or (actor is not None and not _may_see_area(actor, subject_type, code, region.county_code)):
            raise not_found(subject_type, code)
        return Subject(subject_type, code, region.county_code, {"name": region.name, "name_en": region.name_en,
                                                                "county": region.county_code})
    if subject_type == "farm_park":
        park = db.session.scalar(select(FarmPark).where(FarmPark.code == code))
        if park is None or (actor is not None and not _may_see_area(actor, subject_type, code, park.county_code)):
            raise not_found("farm_park", code)
        return Subject("farm_park", code, park.county_code, {"name": park.name, "name_en": park.name_en,
                                                             "county": park.county_code, "area_m2": park.area_m2})
    raise not_found("subject type", subject_type)


def _may_see_area(actor: Actor, kind: str, code: str, county: str) -> bool:
    if not actor.can_see_county(county):
        return False
    if actor.device_pk is None:
        return True
    from ..devices.models import DeviceAssignment

    return kind == "village" and db.session.scalar(select(DeviceAssignment.id).where(
        DeviceAssignment.device_pk == actor.device_pk, DeviceAssignment.active.is_(True),
        DeviceAssignment.kind == "village", DeviceAssignment.code == code)) is not None


def current_grade(subject_type: str, code: str, pack_code: str) -> Grade | None:
    return db.session.scalar(select(Grade).where(
        Grade.subject_type == subject_type, Grade.subject_code == code, Grade.rule_pack == pack_code,
        Grade.superseded_by.is_(None)).order_by(Grade.id.desc()).limit(1))


def _area_column(kind: str) -> Any:
    return {"village": Parcel.village_code, "farm_park": Parcel.farm_park_code, "county": Parcel.county_code}[kind]


def live_area_grade(kind: str, code: str, pack: RulePack) -> AreaGrade:
    """The full recompute: the area's live parcels and their current grades, rolled up from scratch."""
    grades = {g.subject_code: g for g in db.session.execute(
        select(Grade.subject_code, Grade.verdict, Grade.strict_control)
        .join(Parcel, Parcel.code == Grade.subject_code)
        .where(_area_column(kind) == code, Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
               Grade.superseded_by.is_(None)))}
    outcomes = []
    for parcel_code, area in db.session.execute(select(Parcel.code, Parcel.area_m2).where(
            _area_column(kind) == code, Parcel.deleted_at.is_(None))):
        g = grades.get(parcel_code)
        verdict = g.verdict if g is not None and g.verdict != "not_graded" else None
        outcomes.append(ParcelOutcome(parcel_code, area, verdict, bool(g.strict_control) if g else False))
    return rollup(outcomes, pack)


def maintained_sums(kind: str, code: str, pack_code: str) -> RollupSums | None:
    row = db.session.scalar(select(RollupSum).where(RollupSum.subject_type == kind, RollupSum.subject_code == code,
                                                    RollupSum.rule_pack == pack_code))
    return None if row is None else _sums_from_row(row)


def _holding_back(kind: str, code: str, pack_code: str) -> tuple[tuple[str, ...], int]:
    column = {"village": RollupMember.village_code, "farm_park": RollupMember.farm_park_code,
              "county": RollupMember.county_code}[kind]
    where = (RollupMember.rule_pack == pack_code, column == code, RollupMember.qualified.is_(False))
    codes = tuple(db.session.scalars(select(RollupMember.parcel_code).where(*where)
                                     .order_by(RollupMember.area_m2.desc(), RollupMember.parcel_code)
                                     .limit(HOLDING_BACK_CAP)))
    return codes, len(codes)


def area_grade(kind: str, code: str, pack: RulePack) -> tuple[AreaGrade, Grade | None]:
    """From maintained sums when the county has state, otherwise computed live."""
    sums = maintained_sums(kind, code, pack.code)
    if sums is None:
        return live_area_grade(kind, code, pack), None
    holding, _ = _holding_back(kind, code, pack.code)
    ag = AreaGrade.from_sums(sums, pack, holding)
    return ag, current_grade(kind, code, pack.code)


def grade_dict(subject: Subject, pack: RulePack) -> dict[str, Any]:
    """The body of ``GET /api/v1/grades/<type>/<code>``."""
    subject_body = {"type": subject.type, "code": subject.code, **subject.info}
    if subject.type == "parcel":
        g = current_grade("parcel", subject.code, pack.code)
        if g is None:
            return {"subject": subject_body, "rule_pack": pack_ref(pack.code, pack.version), "grade": None,
                    "qualified": False, "verdict": "not_graded", "limiting": [],
                    "explanation": {"reason": "no_approved_results"}, "computed_at": None,
                    "inputs": {"samples": [], "results": []}, "id": None, "fingerprint": None, "tested_on": None,
                    "strict_control": False}
        return parcel_grade_dict(g, subject_body)
    ag, g = area_grade(subject.type, subject.code, pack)
    explanation = area_dict(ag)
    return {"subject": subject_body,
            "rule_pack": pack_ref(pack.code, g.rule_pack_version if g else pack.version),
            "grade": ag.grade, "qualified": ag.qualified, "verdict": "qualified" if ag.qualified else "not_qualified",
            "limiting": list(ag.holding_back), "explanation": explanation,
            "computed_at": isoformat(g.computed_at) if g else isoformat(utcnow()),
            "inputs": {"parcel_count": ag.parcel_count, "graded_count": ag.graded_count,
                       "maintained": g is not None},
            "id": str(g.id) if g else None, "fingerprint": g.fingerprint if g else None,
            "strict_control": ag.strict_control_count > 0}


def parcel_grade_dict(g: Grade, subject_body: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"subject": subject_body or {"type": g.subject_type, "code": g.subject_code},
            "rule_pack": pack_ref(g.rule_pack, g.rule_pack_version), "grade": g.grade, "qualified": g.qualified,
            "verdict": g.verdict, "limiting": g.limiting, "explanation": explain(g),
            "computed_at": isoformat(g.computed_at), "inputs": g.inputs, "id": str(g.id),
            "fingerprint": g.fingerprint, "tested_on": g.tested_on.isoformat() if g.tested_on else None,
            "strict_control": g.strict_control}
    return body


def history_item(g: Grade, verifications: Mapping) -> dict[str, Any]:
    return {"id": str(g.id), "rule_pack": pack_ref(g.rule_pack, g.rule_pack_version, verifications),
            "grade": g.grade, "verdict": g.verdict, "qualified": g.qualified, "limiting": g.limiting,
            "fingerprint": g.fingerprint, "computed_at": isoformat(g.computed_at), "computed_by": g.computed_by,
            "run_id": str(g.run_id) if g.run_id else None, "current": g.superseded_by is None,
            "superseded_by": str(g.superseded_by) if g.superseded_by else None, "explanation": explain(g),
            "inputs": g.inputs}


def grade_summaries(parcel_codes: Sequence[str], pack_code: str = DEFAULT_PACK) -> dict[str, dict[str, Any]]:
    """The small ``grade`` property of parcels in GET /parcels (one query for a page)."""
    out: dict[str, dict[str, Any]] = {}
    codes = list(parcel_codes)
    for start in range(0, len(codes), CHUNK):
        for g in db.session.execute(select(Grade.id, Grade.subject_code, Grade.rule_pack, Grade.rule_pack_version,
                                           Grade.grade, Grade.verdict, Grade.qualified, Grade.computed_at)
                                    .where(Grade.subject_type == "parcel", Grade.rule_pack == pack_code,
                                           Grade.superseded_by.is_(None),
                                           Grade.subject_code.in_(codes[start:start + CHUNK]))):
            out[g.subject_code] = {"id": str(g.id), "rule_pack": g.rule_pack, "rule_pack_version": g.rule_pack_version,
                                   "grade": g.grade, "verdict": g.verdict, "qualified": g.qualified,
                                   "computed_at": isoformat(g.computed_at)}
    return out


# --- the contract for certificates ----------------------------------------------------------------

@dataclass(frozen=True)
class Qualification:
    """Whether a subject may be certified now, and why not.

    ``reasons`` are strings whose part before any ``:`` is a stable code: ``not_graded``,
    ``not_qualified`` (``not_qualified: Cd exceeds``), ``indeterminate`` (``indeterminate: Hg
    no_ph``), ``unresolved_conflicts``, ``incomplete_samples``, ``grade_below_A`` (``grade_below_A: B``),
    ``parcel_deleted``.
    """

    qualified: bool
    reasons: list[str]
    grade: str | None
    verdict: str
    rule_pack: dict[str, Any]
    tested_on: date | None
    grade_id: int | None
    explanation: dict[str, Any]


def _blocking_samples(kind: str, code: str) -> list[str]:
    """``unresolved_conflicts`` / ``incomplete_samples`` reasons for the samples of a subject's parcels."""
    from ..sync.models import SyncConflict

    parcels = select(Parcel.code).where(_area_column(kind) == code, Parcel.deleted_at.is_(None)) \
        if kind != "parcel" else select(Parcel.code).where(Parcel.code == code)
    live = (Sample.parcel_code.in_(parcels), Sample.deleted_at.is_(None))
    reasons = []
    conflicts = db.session.scalar(select(SyncConflict.id).join(Sample, Sample.id == SyncConflict.record_id).where(
        *live, SyncConflict.status == "open", SyncConflict.kind.in_(BLOCKING_CONFLICTS)).limit(1))
    if conflicts is not None:
        reasons.append("unresolved_conflicts")
    incomplete = db.session.scalar(select(Sample.id).where(*live, Sample.state != "complete").limit(1))
    if incomplete is not None:
        reasons.append("incomplete_samples")
    return reasons


def qualification(subject_type: str, code: str, rule_pack: str | None = None) -> Qualification:
    """May this parcel, village or farm park be certified now? (Certificates call this.)

    :raise Problem: 404 for an unknown subject, 422 for an unknown rule pack.
    """
    pack = resolve_pack(rule_pack)
    if subject_type not in ("parcel", "village", "farm_park", "county"):
        raise validation_failed({"subject_type": ["one of parcel, village, farm_park"]})
    subject = get_subject(subject_type, code)
    reasons: list[str] = []
    if subject_type == "parcel":
        g = current_grade("parcel", code, pack.code)
        if subject.info["deleted"]:
            reasons.append("parcel_deleted")
        if g is None or g.verdict == "not_graded":
            reasons.append("not_graded")
        elif g.verdict != "qualified":
            rows = explain(g).get("analytes", [])
            if g.verdict == "not_qualified":
                bad = [r["analyte"] for r in rows if r.get("verdict") == "exceeds"] or list(g.limiting)
                reasons.extend(f"not_qualified: {a} exceeds" for a in bad)
            else:
                reasons.append("indeterminate")
                reasons.extend(f"indeterminate: {r['analyte']} {r.get('reason')}" for r in rows
                               if r.get("verdict") == "indeterminate")
        reasons.extend(_blocking_samples("parcel", code))
        ref = pack_ref(pack.code, g.rule_pack_version if g else pack.version)
        return Qualification(not reasons, reasons, g.grade if g else None, g.verdict if g else "not_graded", ref,
                             g.tested_on if g else None, g.id if g else None,
                             explain(g) if g else {"reason": "no_approved_results"})
    ag, g = area_grade(subject_type, code, pack)
    if ag.grade != "A":
        reasons.append(f"grade_below_A: {ag.grade}")
    reasons.extend(_blocking_samples(subject_type, code))
    tested_on = db.session.scalar(select(Grade.tested_on).join(Parcel, Parcel.code == Grade.subject_code).where(
        _area_column(subject_type) == code, Parcel.deleted_at.is_(None), Grade.subject_type == "parcel",
        Grade.rule_pack == pack.code, Grade.superseded_by.is_(None)).order_by(Grade.tested_on.desc()).limit(1))
    return Qualification(not reasons, reasons, ag.grade, "qualified" if ag.qualified else "not_qualified",
                         pack_ref(pack.code, g.rule_pack_version if g else pack.version), tested_on,
                         g.id if g else None, area_dict(ag))


# --- rows for reports -------------------------------------------------------------------------

def report_rows(kind: str, code: str, pack: RulePack) -> list[dict[str, Any]]:
    """The area's live parcels with their current grade, for the report renderers (plain dicts)."""
    grades = {g.subject_code: g for g in db.session.execute(
        select(Grade.subject_code, Grade.grade, Grade.verdict, Grade.qualified, Grade.limiting, Grade.tested_on,
               Grade.strict_control)
        .join(Parcel, Parcel.code == Grade.subject_code)
        .where(_area_column(kind) == code, Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
               Grade.superseded_by.is_(None)))}
    rows = []
    for p in db.session.execute(select(Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.land_use,
                                       Parcel.crop, Parcel.area_m2, Parcel.geometry_json)
                                .where(_area_column(kind) == code, Parcel.deleted_at.is_(None))
                                .order_by(Parcel.code)):
        g = grades.get(p.code)
        graded = g is not None and g.verdict != "not_graded"
        rows.append({"code": p.code, "village": p.village_code, "farm_park": p.farm_park_code,
                     "land_use": p.land_use, "crop": p.crop, "area_m2": p.area_m2, "geometry_json": p.geometry_json,
                     "verdict": g.verdict if graded else "not_graded", "grade": g.grade if graded else None,
                     "qualified": bool(g.qualified) if graded else False,
                     "limiting": list(g.limiting or []) if graded else [],
                     "strict_control": bool(g.strict_control) if graded else False,
                     "tested_on": g.tested_on.isoformat() if graded and g.tested_on else None})
    return rows
