"""Whole-scope grading runs (county, village, farm park, parcel): rule-pack changes and repairs.

A county run on SQLite may read and evaluate its chunks in worker processes while it writes
(``run_grading(..., workers=N)``: the CLI and the benchmark); it stores exactly what a serial run
stores. Flush, never commit: the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from .. import access, dbutil
from ..audit.services import Change, record
from ..auth.principal import SYSTEM, Actor
from ..dbtypes import isoformat, utcnow
from ..errors import not_found, validation_failed
from ..extensions import db
from ..places.models import FarmPark, Parcel, Region
from . import parallel
from .evaluation import GB_PACK
from .gradepass import (
    CHANGED_CAP,
    COUNT_KEYS,
    _apply_chunk,
    _apply_deltas,
    _finish,
    _grade_chunk,
    _Pass,
    _rebuild_county,
)
from .inputs import CHUNK, _fetch
from .models import GradingRun, RollupMember, RollupSum
from .pack_admin import pack_ref, resolve_pack
from .rules import DEFAULT_PACK, RulePack, load_pack
from .sums import _Acc, _lock_sums, _sums_from_row, _sums_values, county_has_state

Progress = Callable[[int], Any]


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
    if county is None or not access.may_see_county(actor, county):
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
    from . import estimated

    basis: Callable[[], Any] | None = None
    if estimated.applies(rp):
        if scope_type == "county":  # the variograms are fitted per whole-county run and recorded
            run.estimation = estimated.nothing_to_estimate()
            made: list[Any] = []

            def basis() -> Any:  # fitted at the first parcel without a usable sample, in this process
                if not made:  # (a worker that meets one asks this process: ``parallel.read_ahead``)
                    made.append(estimated.county_basis(county, rp))
                    if made[0] is not None:
                        run.estimation = made[0].record()
                return made[0]

            p.estimator = estimated.ChunkEstimator(rp, basis)
        else:
            scope = [r[0] for r in _fetch(_SCOPE_SQL.format(_SCOPE_COLUMNS[scope_type]), [code])]
            p.estimates = estimated.around(scope, rp)[1]
    path = parallel.path_for(workers, fresh)
    if path is not None:
        parallel.warm()  # the fork server imports while this process lists the parcels
    codes = [r[0] for r in _fetch(_SCOPE_SQL.format(_SCOPE_COLUMNS[scope_type]), [code])]
    chunks = [codes[start:start + CHUNK] for start in range(0, len(codes), CHUNK)]
    if len(chunks) < 2:
        path = None  # nothing to overlap
    restore = _large_cache()
    try:
        if path is None:
            for chunk in chunks:
                _grade_chunk(p, chunk)
                if progress is not None:
                    progress(len(chunk))
        else:
            fit_first = basis is not None and _some_unsampled(county)
            for chunk, state in zip(chunks, parallel.read_ahead(path, rp, p.gb_pack, chunks, workers, basis,
                                                                fit_first), strict=True):
                db.session.flush()
                _apply_chunk(p, *state)
                if progress is not None:
                    progress(len(chunk))
    finally:
        restore()
    if run.estimation and "epsg" in run.estimation:
        run.estimation = run.estimation | dict(zip(("estimated", "not_assessed"), p.estimation_counts, strict=True))
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


_LIVE_PARCELS_SQL = "SELECT count(*) FROM parcels WHERE county_code = ? AND deleted_at IS NULL"
_SAMPLES_SQL = "SELECT count(*) FROM samples WHERE county_code = ?"


def _some_unsampled(county: str) -> bool:
    """Whether some live parcel of the county surely has no sample (fewer samples than live
    parcels): then the run needs its estimation basis, and fits it before starting the workers
    (``parallel.read_ahead``'s ``fit_first``), while the fork server is still importing."""
    return _fetch(_SAMPLES_SQL, [county])[0][0] < _fetch(_LIVE_PARCELS_SQL, [county])[0][0]


def _large_cache() -> Callable[[], None]:
    """On SQLite, give a run's connection a big page cache and memory-mapped reads (with the default
    2 MiB cache every chunk re-reads index pages of the results table: 1 M parcels ran 1.7x slower per
    parcel than 20,000), and its commit leaves the WAL checkpoint to the checkpoint thread
    (``dbutil.defer_checkpoint``); returns what restores the cache settings (pooled connections
    are reused; the checkpoint setting comes back when the connection returns to the pool)."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return lambda: None
    raw = conn.connection
    cache = raw.execute("PRAGMA cache_size").fetchone()[0]
    mmap = raw.execute("PRAGMA mmap_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{RUN_CACHE_KIB}")
    raw.execute(f"PRAGMA mmap_size = {RUN_MMAP_BYTES}")
    dbutil.defer_checkpoint()  # the commit leaves copying the WAL back to the checkpoint thread

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
            "finished_at": isoformat(run.finished_at), "duration_ms": run.duration_ms,
            "estimation": run.estimation}
    if include_changed:
        body["changed"] = run.changed
    return body


def get_run(run_id: int, actor: Actor) -> GradingRun:
    run = db.session.get(GradingRun, run_id) if 0 < run_id < 2 ** 63 else None
    if run is None or not access.may_see_record(actor, run.county_code):
        raise not_found("grading_run", run_id)
    return run


def grade_demo_county(county_code: str) -> dict[str, Any]:
    """Grade the demo county with the default pack after its demo results are loaded; flushes only."""
    run = run_grading("county", county_code, DEFAULT_PACK, SYSTEM)
    return run_dict(run, include_changed=False)
