"""The grading pass shared by incremental re-grades and whole-scope runs.

It evaluates chunks of parcels, writes new grade and member rows, moves the area sums (see
``sums``), grades the changed areas, and, after a grade under the default pack changes,
publishes ``GradesChanged`` (certificates react: ``fieldsvc.handlers``).

Flush, never commit: the request (or CLI command) that changed the inputs commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select

from ..audit.services import Change, _memo_map, insert_rows, record_many
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..events import GradeChanged, GradesChanged, publish
from ..extensions import db
from ..places.models import FarmPark, Region
from .estimated import ChunkEstimator, unsampled
from .evaluation import Evaluated, StoredExplanation, evaluate_parcel
from .inputs import CHUNK, _driver_sql, _fetch, _in_list, _listed, _load_inputs, _Reader, _session_reader
from .models import AREA_TYPES, Grade, RollupMember, RollupSum
from .queries import live_area_grade
from .rollup import AreaGrade
from .rules import DEFAULT_PACK, RulePack
from .sums import (
    Member,
    _Acc,
    _area_fingerprint,
    _areas_of,
    _lock_sums,
    _outcome,
    _sums_from_row,
    _sums_values,
    area_dict,
    county_has_state,
)

CHANGED_CAP = 1000  # changed subjects listed on a run (its counts hold the total)

COUNT_KEYS = ("parcels", "qualified", "not_qualified", "indeterminate", "not_assessed", "changed", "areas_changed",
              "repaired")


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
    # a village or farm-park run's estimated grades of unsampled parcels (``estimated.around``),
    # used where the parcel has no approved results
    estimates: dict[str, Evaluated] = field(default_factory=dict)
    # a county run's: values each chunk's unsampled parcels as the chunk is read
    estimator: ChunkEstimator | None = None
    estimation_counts: list[int] = field(default_factory=lambda: [0, 0])  # estimated, not assessed


def _keep(p: _Pass, c: GradeChange) -> None:
    """Keep a change: all of them when incremental; a run keeps the first CHANGED_CAP (its list is capped)
    and, past that, only those the certificates hook must hear about."""
    if p.run_id is None or len(p.changes) < CHANGED_CAP:
        p.changes.append(c)
    elif c.previous is not None and (c.previous.get("qualified"), c.previous.get("grade")) != (c.qualified, c.grade):
        p.notify_only.append(c)


_PARCELS_SQL = ("SELECT code, village_code, farm_park_code, county_code, land_use, area_m2, deleted_at, "
                "min_lon, min_lat, max_lon, max_lat FROM parcels WHERE code {}")
_CURRENT_SQL = ("SELECT id, subject_code, fingerprint, verdict, grade, qualified, strict_control FROM grades "
                "WHERE subject_type = 'parcel' AND rule_pack = ? AND superseded_by IS NULL AND subject_code {}")
_MEMBERS_SQL = ("SELECT parcel_code, village_code, farm_park_code, county_code, area_m2, verdict, qualified, "
                "strict_control FROM rollup_members WHERE rule_pack = ? AND parcel_code {}")


def _grade_chunk(p: _Pass, codes: Sequence[str]) -> None:
    """Evaluate a chunk of parcels; write new grade rows and member changes; collect sums deltas.

    Reads are driver-level statements (one per table per chunk), so a run pays for rows, not for
    SQL compilation or ORM objects.
    """
    db.session.flush()
    _apply_chunk(p, *_read_and_evaluate(_session_reader(), p.pack, p.gb_pack, codes, p.estimator))


# (parcel rows, current grade rows, member rows, Evaluated per parcel in code order, (estimated, not
# assessed)[, inputs bound])
ChunkState = tuple


def _read_and_evaluate(reader: _Reader, pack: RulePack, gb_pack: RulePack | None,
                       codes: Sequence[str], estimator: ChunkEstimator | None = None) -> ChunkState:
    """The read-only half of a chunk: its parcels, inputs, current grades and members, and the
    evaluation of each parcel (in code order; a county run's unsampled parcels estimated by
    ``estimator``). Touches no session: a worker process runs it too."""
    among, listed = reader.in_list(len(codes)), reader.listed(codes)
    parcels = reader.fetch(_PARCELS_SQL.format(among), listed)
    parcels.sort()
    inputs = _load_inputs(reader, [r[0] for r in parcels])
    current = reader.fetch(_CURRENT_SQL.format(among), [pack.code, *listed])
    members = reader.fetch(_MEMBERS_SQL.format(among), [pack.code, *listed])
    evaluated = [evaluate_parcel(pack, r[4], inputs.get(r[0]), r[6] is not None, gb_pack) for r in parcels]
    counts = (0, 0)
    if estimator is not None:
        evaluated, n_estimated, n_not_assessed = estimator.apply(parcels, evaluated)
        counts = (n_estimated, n_not_assessed)
    return parcels, current, members, evaluated, counts


def _apply_chunk(p: _Pass, parcels: list[tuple], current_rows: list[tuple], member_rows: list[tuple],
                 evaluated: Sequence[Evaluated], estimation_counts: tuple[int, int] = (0, 0),
                 inputs_bound: bool = False) -> None:
    """The writing half of a chunk: new grade rows, member changes, counts and sums deltas.

    ``estimation_counts``: the chunk's parcels estimated and not assessed (a county run's);
    ``inputs_bound``: each ``Evaluated.inputs`` is already the column's bound JSON text (from a worker).
    """
    now = utcnow()
    p.estimation_counts[0] += estimation_counts[0]
    p.estimation_counts[1] += estimation_counts[1]
    if p.estimates:  # a parcel without a sample takes its estimate (basis estimated)
        bind = _memo_last(_inputs_binder()) if inputs_bound else None
        evaluated = [_estimate(p.estimates[r[0]], bind) if r[0] in p.estimates and unsampled(r, ev) else ev
                     for r, ev in zip(parcels, evaluated, strict=True)]
    current = {r[1]: r for r in current_rows}
    members = {r[0]: (r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7])) for r in member_rows}
    new_rows, superseded, previous = [], [], []
    member_upserts: dict[str, Member] = {}
    member_deletes: list[str] = []
    rebuild = p.rebuild_counties
    verdicts: dict[str, int] = defaultdict(int)
    for (code, village, park, county, _, area, deleted_at, *_), ev in zip(parcels, evaluated, strict=True):
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


def _inputs_binder() -> Callable[[Any], Any]:
    """The grades.inputs column's own bind processor (a worker's chunk arrives with inputs bound)."""
    dialect = db.session.connection().dialect
    return Grade.__table__.c.inputs.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)


def _memo_last(bind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``bind`` that binds the value it was last given once: every estimated parcel's inputs are
    one shared dict (``estimated._NO_INPUTS``), and binding it again per parcel (``json.dumps``
    through the column) took 2.5 s of 33 s in a profile of a 200,000-parcel county run."""
    last: list[Any] = [None, None]

    def memo(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, bind(value)
        return last[1]

    return memo


def _estimate(ev: Evaluated, bind: Callable[[Any], Any] | None) -> Evaluated:
    # the tuple made directly: ``_replace`` rebuilds it through keyword pops (1.1 µs against 0.46)
    return ev if bind is None else Evaluated(*ev[:7], bind(ev[7]), ev[8])


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
                  "explanation", "fingerprint", "inputs", "tested_on", "basis")
_GRADE_MEMO = ("qualified", "strict_control", "limiting", "explanation", "tested_on", "basis")


def grade_basis(ev: Evaluated) -> str:
    """The ``basis`` column of a parcel grade: what ``basis.basis_of`` reads from its explanation."""
    if not ev.graded or ev.verdict == "not_graded":
        return "not_assessed"
    explanation = ev.explanation if isinstance(ev.explanation, dict) else {}
    return "estimated" if explanation.get("basis") == "estimated" else "measured"


def _write_grades(p: _Pass, rows: list[tuple], superseded: list[int | None], previous: list, now: Any,
                  inputs_bound: bool = False) -> None:
    """Insert the new parcel grade rows, supersede the old ones, and note the changes."""
    if not rows:
        return
    t = Grade.__table__
    values = [(code, county, ev.grade, ev.verdict, ev.qualified, ev.strict_control, ev.limiting, ev.explanation,
               ev.fingerprint, ev.inputs, ev.tested_on, grade_basis(ev)) for code, county, ev, _, _ in rows]
    if p.run_id is None:  # a few rows: ids straight back
        values = [(*v[:_EXPLANATION], _full(v[_EXPLANATION]), *v[_EXPLANATION + 1:]) for v in values]
        dicts = [dict(zip(_GRADE_COLUMNS, v, strict=True)) | {
            "subject_type": "parcel", "rule_pack": p.pack.code, "rule_pack_version": p.pack.version,
            "computed_at": now, "computed_by": p.actor.label, "run_id": None, "superseded_by": None} for v in values]
        ids: list[int | None] = [r[0] for r in db.session.execute(
            insert(t).returning(t.c.id, sort_by_parameter_order=True), dicts)]
    else:  # a run: one driver executemany, then the ids of the rows that supersede one or are listed
        prebound = ("inputs",) if inputs_bound else ()
        if _bind_estimated_explanations(p, rows, values):
            prebound = (*prebound, "explanation")
        insert_rows(t, _GRADE_FIXED, ("parcel", p.pack.code, p.pack.version, now, p.actor.label, p.run_id, None),
                    _GRADE_COLUMNS, values, memo=_GRADE_MEMO, prebound=prebound)
        room = max(0, CHANGED_CAP - len(p.changes))
        wanted = [row[0] for k, (row, old) in enumerate(zip(rows, superseded, strict=True))
                  if old is not None or k < room]
        made: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            made.update((r[0], r[1]) for r in _fetch(
                "SELECT subject_code, id FROM grades WHERE subject_type = 'parcel' AND rule_pack = ? "
                f"AND run_id = ? AND superseded_by IS NULL AND subject_code {_in_list(len(chunk))}",
                [p.pack.code, p.run_id, *_listed(chunk)]))
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


_EXPLANATION = _GRADE_COLUMNS.index("explanation")


def _bind_estimated_explanations(p: _Pass, rows: list[tuple], values: list[tuple]) -> bool:
    """Bind the explanation column in ``values`` (in place) when the chunk holds estimated parcels.

    The column is memoised for measured parcels (few distinct explanations), which keys each
    value by its ``repr``; an estimated parcel's explanation is its own (neighbour sets, σ), so
    that key only costs. Estimated ones are bound straight away: their JSON text, made once with
    the fingerprint (``estimated.stored``), where the column writes plain JSON text (no
    custom serializer); the others through the same memo as before.
    """
    estimated = [isinstance(ev.explanation, StoredExplanation) for _, _, ev, _, _ in rows]
    if not any(estimated):
        return False
    dialect = db.session.connection().dialect
    bind = Grade.__table__.c.explanation.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
    others = [k for k, e in enumerate(estimated) if not e]
    memo = _memo_map(bind, [values[k][_EXPLANATION] for k in others]) if others else []
    bound = [None] * len(values)
    for k, b in zip(others, memo, strict=True):
        bound[k] = b
    wrap = _text_binder(dialect)
    for k, e in enumerate(estimated):
        if e:
            v = values[k][_EXPLANATION]
            text = getattr(v, "text", None) if wrap is not None else None
            bound[k] = wrap(text) if text is not None else bind(_full(v))
    for k, b in enumerate(bound):
        row = values[k]
        values[k] = (*row[:_EXPLANATION], b, *row[_EXPLANATION + 1:])
    return True


def _full(explanation: Any) -> Any:
    """An explanation as the column binds it: a stored estimated one (``StoredExplanation``, its
    text) as the dict that text is."""
    return explanation.full() if isinstance(explanation, StoredExplanation) else explanation


def _text_binder(dialect: Any) -> Callable[[str], Any] | None:
    """How JSON text already made binds to the explanation column as the column would bind its
    dict: as it is on SQLite (json.dumps text), in psycopg's ``Json`` with the text as its dump
    on PostgreSQL; None where the column serialises some other way (then it binds the dict)."""
    if getattr(dialect, "_json_serializer", None) is not None:
        return None
    if dialect.name == "sqlite":
        return _same
    wrapper = getattr(dialect, "_psycopg_Json", None)
    if dialect.name == "postgresql" and wrapper is not None:
        return lambda text: wrapper(text, dumps=_same)
    return None


def _same(text: str) -> str:
    return text


_MEMBER_COLUMNS = ("parcel_code", "village_code", "farm_park_code", "county_code", "area_m2", "verdict", "qualified",
                   "strict_control")


def _write_members(p: _Pass, upserts: Mapping[str, Member], deletes: list[str], stored: Mapping[str, Any]) -> None:
    """Replace changed member rows; ``stored`` holds the chunk's rows as read (only those are deleted)."""
    gone = [code for code in (*deletes, *upserts) if code in stored]
    conn = db.session.connection()
    for start in range(0, len(gone), CHUNK):
        chunk = gone[start:start + CHUNK]
        conn.exec_driver_sql(_driver_sql(f"DELETE FROM rollup_members WHERE rule_pack = ? AND parcel_code "
                                         f"{_in_list(len(chunk))}"), (p.pack.code, *_listed(chunk)))
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
                          verdict=ag.verdict, qualified=ag.qualified,
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
    """Publish ``GradesChanged`` for the subjects whose verdict or grade moved under the default
    pack (certificates revoke on it, ``fieldsvc.handlers``); a first grade moves nothing."""
    if p.pack.code != DEFAULT_PACK:
        return
    changed: list[GradeChanged] = []
    live: set[tuple[str, str]] = set()
    for c in [*p.changes, *p.notify_only]:
        if c.previous is None:
            continue  # a first grade: no certificate can exist yet
        if (c.previous.get("qualified"), c.previous.get("grade")) == (c.qualified, c.grade):
            continue
        reason = f"regraded: {c.verdict}" + (f" ({c.grade})" if c.grade else "")
        changed.append(GradeChanged(c.subject_type, c.code, c.qualified, reason))
        if c.previous.get("qualified") and not c.qualified:
            live.update(c.live_areas)
    for kind, code in sorted(live):  # areas without maintained sums: their grade is recomputed live
        ag = live_area_grade(kind, code, p.pack)
        changed.append(GradeChanged(kind, code, ag.qualified, f"regraded: grade {ag.grade}"))
    if changed:
        publish(GradesChanged(tuple(changed), p.actor))
