"""Vector tiles over a whole county on SQLite and PostgreSQL: z10-z17, p50/p95 ms per tile and bytes.

Baseline in the same run (PostgreSQL): PostGIS's ``ST_AsMVT`` of the same tile as bare SQL: the same
parcels (index test, minimum size, largest first up to the same cap) and simplification, but no scope,
no grade, village or sampling-state look-ups and no cache: the least that engine does for that tile.
Each tile is measured cold (cache bypassed, the full build) with wall and CPU time (this process plus
the PostgreSQL backend, from /proc), then warm (read back from the tile cache).
Run: .venv/bin/python bench/tiles.py [--parcels 1000000] [--tiles 25] [--engines sqlite,postgresql]
Targets (issue 15): p95 <= 50 ms on PostgreSQL and <= 150 ms on SQLite; >= 0.5x the bare-SQL rate.
The county is the demo generator's (``places.demo_data``), written with bulk SQL (COPY on PostgreSQL),
with a survey over it (``survey``): about one sample per 50 parcels on a jittered grid (some gaps the survey
did not reach) and a current grade row for every parcel as a county run writes them (measured where a parcel
has a complete sample, estimated within the pack's search radius of enough samples, else not assessed), so
the tile's grade, village and sampling-state look-ups do real work.
``--reuse`` keeps a county already loaded (the migrations still run on it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from fieldsvc import create_app, sequence  # noqa: E402
from fieldsvc.auth.principal import SYSTEM, Actor  # noqa: E402
from fieldsvc.demo import load_areas  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402
from fieldsvc.grading.rules import DEFAULT_PACK, load_pack  # noqa: E402
from fieldsvc.places import services as places  # noqa: E402
from fieldsvc.places.demo_data import COUNTY_CODE, generate_county, local_xy, parcel_centre  # noqa: E402
from fieldsvc.places.geometry import areas_m2  # noqa: E402
from fieldsvc.tiles import encode  # noqa: E402
from fieldsvc.tiles import services as tiles  # noqa: E402
from fieldsvc.tiles.tilemath import SIMPLIFY_UNITS, tile_for  # noqa: E402

ZOOMS = range(10, 18)
BARE = ("SELECT ST_AsMVT(t, 'parcels', 4096, 'geom') FROM (SELECT id, code, "
        "ST_AsMVTGeom(ST_Simplify(geom, :tol), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom "
        "FROM parcels WHERE geom && ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096) "
        "AND CASE WHEN max_lon - min_lon >= max_lat - min_lat THEN max_lon - min_lon ELSE max_lat - min_lat END "
        "{plus} >= :min_size ORDER BY area_m2 DESC, id LIMIT :limit) t WHERE geom IS NOT NULL")


PARCEL_COLUMNS = ("code", "village_code", "county_code", "farm_park_code", "land_use", "crop", "area_m2",
                  "area_computed", "geometry_json", "min_lon", "min_lat", "max_lon", "max_lat", "version", "seq",
                  "created_at", "updated_at")


def parcel_rows(county, first_seq: int):
    """The county's parcels as table rows (what the import service writes, without its per-row checks):
    the bounding box from the ring, area from the same computation the importer uses where missing."""
    missing = [i for i, f in enumerate(county.parcels) if f["properties"].get("area_m2") is None]
    computed = dict(zip(missing, areas_m2([county.parcels[i]["geometry"] for i in missing]), strict=True))
    now = datetime.now(UTC)
    for i, f in enumerate(county.parcels):
        p, ring = f["properties"], f["geometry"]["coordinates"][0]
        lons, lats = [c[0] for c in ring], [c[1] for c in ring]
        yield (p["code"], p["village"], county.county, p.get("farm_park"), p["land_use"], p.get("crop"),
               p["area_m2"] if i not in computed else round(computed[i], 2), i in computed,
               json.dumps(f["geometry"], separators=(",", ":")), min(lons), min(lats), max(lons), max(lats), 1,
               first_seq + i, now, now)


def fill_parcels(county, url: str) -> None:
    """Bulk SQL, not the ORM: COPY on PostgreSQL (the geometry trigger fills ``geom``; the GiST index is
    built once afterwards), one ``executemany`` per 50,000 rows on SQLite (the R*Tree trigger fills the
    R*Tree). The change sequence is advanced past the rows as the import service would."""
    first = sequence.allocate(len(county.parcels))[0]
    db.session.commit()
    columns = ", ".join(PARCEL_COLUMNS)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if url.startswith("postgresql"):
            cur.execute("DROP INDEX IF EXISTS ix_parcels_geom")
            with cur.copy(f"COPY parcels ({columns}) FROM STDIN") as copy:
                for row in parcel_rows(county, first):
                    copy.write_row(row)
            cur.execute("CREATE INDEX ix_parcels_geom ON parcels USING gist (geom)")
        else:
            marks = ", ".join("?" * len(PARCEL_COLUMNS))
            rows = parcel_rows(county, first)
            while chunk := list(itertools.islice(rows, 50_000)):
                cur.executemany(f"INSERT INTO parcels ({columns}) VALUES ({marks})",
                                [(*r[:-2], r[-2].strftime("%Y-%m-%d %H:%M:%S.%f"),
                                  r[-1].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in chunk])
            cur.execute(places.RTREE_FILL)  # the boxes into the R*Tree, as the import does (no trigger does it)
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


# --- the survey: samples and grades ---------------------------------------------------------------

PARCELS_PER_SAMPLE = 50
SAMPLE_STATES = (("complete", 90), ("awaiting_media", 4), ("held", 4), ("needs_review", 2))
MEASURED = (("qualified", "clean", 62), ("qualified", "still_clean", 18), ("not_qualified", "polluted", 12),
            ("indeterminate", None, 8))
ESTIMATED = (("qualified", 84), ("not_qualified", 9), ("indeterminate", 7))
ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")
LIMITS = {"Cd": 0.3, "Hg": 0.3, "As": 25.0, "Pb": 50.0, "Cr": 120.0, "Cu": 50.0}
SAMPLE_COLUMNS = ("id", "code", "parcel_code", "county_code", "state", "flags", "collected_at_raw", "collected_at",
                  "received_at", "lat", "lon", "accuracy_m", "mock_location", "depth_top_cm", "depth_bottom_cm",
                  "sample_type", "land_use_observed", "note", "media", "content_hash", "version", "seq",
                  "created_by", "created_at", "updated_at")
GRADE_COLUMNS = ("subject_type", "subject_code", "county_code", "rule_pack", "rule_pack_version", "grade", "verdict",
                 "qualified", "strict_control", "limiting", "explanation", "fingerprint", "inputs", "tested_on",
                 "computed_at", "computed_by", "run_id", "basis")


def _pick(rng: random.Random, table: tuple) -> tuple:
    return rng.choices(table, weights=[t[-1] for t in table])[0]


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def survey(county, first_seq: int, run_id: int, seed: int = 15) -> tuple[list[tuple], list[tuple]]:
    """A county survey as table rows: (samples, grades).

    Samples: one per cell of a jittered grid sized for ``PARCELS_PER_SAMPLE`` parcels a sample, at the parcel
    nearest the node, none in a few round gaps (land the survey did not reach); one cell in twenty has a second
    sample in the same parcel; states mostly complete, some awaiting photos, held or needing review.
    Grades (one current row per parcel, rule pack ``DEFAULT_PACK``, as ``grading.gradepass`` writes a county
    run): measured where the parcel has a complete sample (verdict and NY/T 1054 class, explanation and inputs
    as ``evaluation.evaluate_parcel`` makes them); estimated where at least ``min_neighbours`` measured samples
    lie within ``search_radius_m`` (grade None, ``basis`` and ``explanation.basis`` "estimated", per-analyte value, σ
    and upper bound, as ``estimated.stored``; the real one also carries the fitted models and each
    analyte's neighbours, ~9 KB that PostgreSQL keeps out of line, left out so the fill takes minutes);
    else not assessed (``no_approved_results``)."""
    rng = random.Random(seed)
    pack = load_pack(DEFAULT_PACK)
    radius, least = pack.estimation.search_radius_m, pack.estimation.min_neighbours
    xy = np.array([local_xy(county, *parcel_centre(f)) for f in county.parcels])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    target = max(1, len(county.parcels) // PARCELS_PER_SAMPLE)
    spacing = float(np.sqrt((hi - lo).prod() / target))
    for _ in range(4):  # (the farmland is not the whole extent: size the grid on the cells parcels fill)
        cell = np.floor((xy - lo) / spacing).astype(np.int64)
        key = cell[:, 0] * 1_000_003 + cell[:, 1]
        spacing *= float(np.sqrt(len(np.unique(key)) / target))
    cell = np.floor((xy - lo) / spacing).astype(np.int64)
    key = cell[:, 0] * 1_000_003 + cell[:, 1]
    extent = float((hi - lo).mean())
    gaps = [(lo + (hi - lo) * (gx, gy), r * extent) for gx, gy, r in
            ((0.85, 0.9, 0.12), (0.1, 0.7, 0.1), (0.55, 0.45, 0.08), (0.3, 0.15, 0.09))]
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    chosen = []
    for members in np.split(order, bounds):
        i, j = cell[members[0]]
        node = lo + (np.array([i, j]) + 0.5 + np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)])) * spacing
        if any(np.hypot(*(node - centre)) < r for centre, r in gaps):
            continue
        chosen.append(int(members[np.argmin(np.hypot(*(xy[members] - node).T))]))
    now = datetime.now(UTC)
    start = datetime(2026, 10, 12, tzinfo=UTC)
    samples, complete = [], {}
    for parcel in chosen:
        for _ in range(2 if rng.random() < 0.05 else 1):
            n = len(samples)
            feature = county.parcels[parcel]
            props = feature["properties"]
            (a, b, c, d, _) = feature["geometry"]["coordinates"][0]
            u, v = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)
            lon = (1 - u) * (1 - v) * a[0] + u * (1 - v) * b[0] + u * v * c[0] + (1 - u) * v * d[0]
            lat = (1 - u) * (1 - v) * a[1] + u * (1 - v) * b[1] + u * v * c[1] + (1 - u) * v * d[1]
            accuracy = round(min(60.0, max(2.0, rng.lognormvariate(np.log(5.0), 0.45))), 1)
            state = _pick(rng, SAMPLE_STATES)[0]
            flags = ["low_accuracy"] if accuracy > 30 else []
            photos = [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "kind": "photo", "content_type": "image/jpeg"}
                      for _ in range(0 if state == "awaiting_media" else rng.choice((1, 2, 2, 3)))]
            collected = start + timedelta(minutes=n * 7 % (60 * 24 * 40))
            sid = str(uuid.UUID(int=rng.getrandbits(128)))
            samples.append((sid, f"QH{n + 1:06d}", props["code"], county.county, state, _dump(flags),
                            collected.strftime("%Y-%m-%dT%H:%M:%SZ"), collected, collected + timedelta(hours=3),
                            round(lat, 7), round(lon, 7), accuracy, False, 0.0, 20.0, "composite", props["land_use"],
                            "", _dump(photos), hashlib.sha256(sid.encode()).hexdigest(), 1, first_seq + n,
                            f"sampler{n % 40 + 1:02d}", now, now))
            if state == "complete":
                complete.setdefault(parcel, []).append(sid)
    measured_at = np.array(sorted(complete)) if complete else np.zeros(0, dtype=int)
    near = (cKDTree(xy[measured_at]).query_ball_point(xy, radius, return_length=True)
            if len(measured_at) else np.zeros(len(xy), dtype=int))
    version, label = pack.version, SYSTEM.label
    grades = []
    for i, feature in enumerate(county.parcels):
        code, land_use = feature["properties"]["code"], feature["properties"]["land_use"]
        if i in complete:
            verdict, grade, _ = _pick(rng, MEASURED)
            limiting = [] if verdict == "qualified" else sorted(rng.sample(ANALYTES, rng.choice((1, 1, 2))))
            explanation: dict[str, Any] = {"land_use": land_use}
            if verdict != "qualified":
                explanation["gb15618_class"] = rng.choice(("safe_use", "safe_use", "priority_protection"))
            explanation |= {"strict_control": False, "excluded_samples": []}
            inputs = {"samples": sorted(complete[i]), "results": sorted(str(rng.randrange(10**6)) for _ in ANALYTES),
                      "excluded": []}
            basis = "measured"
            tested: date | None = date(2026, 11, 1) + timedelta(days=i % 30)
        elif near[i] >= least:
            verdict, _ = _pick(rng, ESTIMATED)
            grade, tested = None, None
            rows = []
            for analyte in ANALYTES:
                value = LIMITS[analyte] * rng.uniform(0.2, 0.9 if verdict == "qualified" else 1.3)
                sigma = value * rng.uniform(0.08, 0.3)
                upper = value + 1.645 * sigma
                rows.append({"analyte": analyte, "basis": "estimated", "method": "ordinary_kriging",
                             "value": round(value, 4), "sigma": round(sigma, 4), "upper": round(upper, 4),
                             "limit": LIMITS[analyte], "neighbours_used": int(min(12, near[i])),
                             "verdict": "qualified" if upper <= LIMITS[analyte] else
                             "not_qualified" if value > LIMITS[analyte] else "indeterminate"})
            limiting = sorted(r["analyte"] for r in rows if r["verdict"] != "qualified")
            explanation = {"basis": "estimated", "land_use": land_use, "method": "ordinary_kriging", "analytes": rows,
                           "parameters": {"search_radius_m": radius, "min_neighbours": least,
                                          "z": pack.estimation.z}, "strict_control": False}
            inputs = {"samples": [], "results": [], "excluded": []}  # as estimated.stored stores them
            basis = "estimated"
        else:
            verdict, grade, tested, limiting = "not_assessed", None, None, []
            explanation = {"reason": "no_approved_results", "excluded_samples": []}
            inputs = {"samples": [], "results": [], "excluded": []}
            basis = "not_assessed"
        fingerprint = hashlib.sha256(f"{code}|{verdict}|{grade}".encode()).hexdigest()
        grades.append(("parcel", code, county.county, DEFAULT_PACK, version, grade, verdict, verdict == "qualified",
                       False, _dump(limiting), _dump(explanation), fingerprint, _dump(inputs), tested, now, label,
                       run_id, basis))
    return samples, grades


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def fill_survey(county, url: str) -> dict[str, int]:
    """The survey's samples and grades (``survey``) with bulk SQL as ``fill_parcels`` writes the parcels, under
    one grading run row; the change sequence is advanced past the samples."""
    from fieldsvc.grading.models import GradingRun

    pack = load_pack(DEFAULT_PACK)
    run = GradingRun(scope_type="county", scope_code=county.county, county_code=county.county,
                     rule_pack=DEFAULT_PACK, rule_pack_version=pack.version, counts={}, changed=[],
                     created_by=SYSTEM.label, started_at=datetime.now(UTC), finished_at=datetime.now(UTC),
                     duration_ms=0, estimation={"epsg": 32650, "models": {}})
    db.session.add(run)
    db.session.flush()
    first = sequence.allocate(len(county.parcels) // PARCELS_PER_SAMPLE * 2)[0]
    run_id = run.id
    db.session.commit()
    samples, grades = survey(county, first, run_id)
    counts = {"samples": len(samples), "grades": len(grades)}
    for basis in ("measured", "estimated", "not_assessed"):
        counts[basis] = sum(1 for g in grades if g[-1] == basis)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, columns, rows in (("samples", SAMPLE_COLUMNS, samples), ("grades", GRADE_COLUMNS, grades)):
            if url.startswith("postgresql"):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                for start in range(0, len(rows), 50_000):
                    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                    [tuple(_sqlite_value(v) for v in r) for r in rows[start:start + 50_000]])
        cur.execute("ANALYZE")
        raw.commit()
        if url.startswith("postgresql"):  # (what autovacuum does to a county soon after its first grading run:
            # the visibility map lets the tile's grade look-up read ix_grades_current_parcel alone)
            raw.driver_connection.autocommit = True
            raw.driver_connection.execute("VACUUM (ANALYZE) parcels, samples, grades")
            raw.driver_connection.autocommit = False
    finally:
        raw.close()
    return counts


def load(county, url: str, instance: Path) -> dict[str, int]:
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    with app.app_context():
        upgrade()
        load_areas(county)
        db.session.commit()
        fill_parcels(county, url)
        counts = fill_survey(county, url)
        db.engine.dispose()
    return counts


def loaded(url: str, instance: Path, parcels: int) -> bool:
    """Whether ``url`` already holds a county of ``parcels`` parcels and its survey (``--reuse``: the fill is
    skipped; the migrations still run, so a new one applies to the kept county)."""
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    with app.app_context():
        try:
            count = db.session.execute(text("SELECT count(*) FROM parcels")).scalar()
            if count == parcels and not db.session.execute(text("SELECT count(*) FROM grades WHERE "
                                                                "subject_type = 'parcel'")).scalar() == parcels:
                count = None  # (a county from before the survey: filled again)
        except Exception:  # noqa: BLE001 (no schema yet)
            db.session.rollback()
            count = None
        db.session.close()
        if count == parcels:
            upgrade()
        db.engine.dispose()
    return count == parcels


def pick_tiles(url: str, instance: Path, parcels: int, per_zoom: int, seed: int = 15) -> list:
    """``per_zoom`` tiles at each zoom, each holding a random parcel (so none is empty by construction): the
    first corner of parcels picked by id (1..n on a freshly filled database, the same on both engines)."""
    rng = random.Random(seed)
    picks = [rng.sample(range(1, parcels + 1), per_zoom) for _ in ZOOMS]
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    with app.app_context():
        ids = sorted({i for ids in picks for i in ids})
        corners = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for pid, geometry in db.session.execute(text("SELECT id, geometry_json FROM parcels WHERE id IN "
                                                         f"({','.join(map(str, chunk))})")):
                corners[pid] = json.loads(geometry)["coordinates"][0][0]
        db.engine.dispose()
    return [tile_for(*corners[i], z) for z, ids in zip(ZOOMS, picks, strict=True) for i in ids]


def server_cpu_ms(pid: int | None) -> float:
    """CPU time of the PostgreSQL backend serving this session, from /proc/<pid>/schedstat (nanoseconds on
    a CPU; /proc/<pid>/stat counts whole 10 ms ticks, too coarse for one tile). Same machine only."""
    if pid is None:
        return 0.0
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


class Clock:
    """Wall and CPU time (this process plus the database backend) of one step, in ms."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def __enter__(self) -> Clock:
        self.t, self.c, self.s = time.perf_counter(), time.process_time(), server_cpu_ms(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.wall = (time.perf_counter() - self.t) * 1000
        self.cpu = (time.process_time() - self.c) * 1000 + server_cpu_ms(self.pid) - self.s


def bare_sql(tile) -> tuple[Any, dict]:
    """PostGIS's ST_AsMVT of the same rows as bare SQL: the same index test, minimum size and limit,
    the same simplification, no scope, no grade, village or sampling-state look-ups."""
    plus = "+ 0.0" if tile.z > tiles.SIZE_DRIVEN_MAX_ZOOM else ""  # (the index choice ours makes: see _min_size)
    return text(BARE.format(plus=plus)), {"z": tile.z, "x": tile.x, "y": tile.y, "tol": tile.units_m(SIMPLIFY_UNITS),
                  "min_size": tiles.min_size_deg(tile.z), "limit": tiles.feature_cap(tile.z)}


def measure(url: str, instance: Path, picked: list, county_code: str, bare: bool) -> dict:
    """Each tile cold (the cache bypassed: the full build) and, with bare SQL, its baseline; then every
    tile twice through the cache (the second read measured: what a revisit or another official costs)."""
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    official = Actor(user_id=1, username="bench", role="official", county_code=county_code)
    keys = ("ms", "cpu", "bytes", "features", "bare_ms", "bare_cpu", "warm_ms", "warm_cpu")
    rows: dict[int, dict[str, list]] = {z: {k: [] for k in keys} for z in ZOOMS}
    limit = app.config["TILE_MAX_BYTES"]
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar() if bare else None
        tiles.render("parcels", picked[0], official, max_bytes=limit, cached=False)  # warm up
        for tile in picked:
            with Clock(pid) as clock:
                data = tiles.render("parcels", tile, official, max_bytes=limit, cached=False)
            rows[tile.z]["ms"].append(clock.wall)
            rows[tile.z]["cpu"].append(clock.cpu)
            rows[tile.z]["bytes"].append(len(data))
            rows[tile.z]["features"].append(len(encode.decode(data).get("parcels", {}).get("features", []))
                                            if data else 0)
            db.session.rollback()
            if bare:
                with Clock(pid) as clock:
                    db.session.execute(*bare_sql(tile)).scalar()
                rows[tile.z]["bare_ms"].append(clock.wall)
                rows[tile.z]["bare_cpu"].append(clock.cpu)
                db.session.rollback()
        for tile in picked:
            tiles.render("parcels", tile, official, max_bytes=limit)
            db.session.commit()
            with Clock(pid) as clock:
                tiles.render("parcels", tile, official, max_bytes=limit)
            rows[tile.z]["warm_ms"].append(clock.wall)
            rows[tile.z]["warm_cpu"].append(clock.cpu)
            db.session.rollback()
        db.engine.dispose()
    return rows


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(name: str, rows: dict) -> dict:
    has_bare = bool(rows[ZOOMS[0]]["bare_ms"])
    print(f"\n{name}: zoom  p50 ms  p95 ms  cpu p50  cpu p95  features p50/max  bytes p50  bytes max  warm p95"
          "  warm cpu p95" + ("  bare p50  bare p95  bare cpu p50  rate vs bare" if has_bare else ""))
    total: dict[str, list] = {k: [] for k in rows[ZOOMS[0]]}
    for z, r in rows.items():
        line = (f"{'':>{len(name)}}  z{z:<3} {statistics.median(r['ms']):7.1f} {pct(r['ms'], .95):7.1f} "
                f"{statistics.median(r['cpu']):8.1f} {pct(r['cpu'], .95):8.1f} "
                f"{statistics.median(r['features']):8.0f}/{max(r['features']):<8d}"
                f"{statistics.median(r['bytes']):10.0f} {max(r['bytes']):10d} {pct(r['warm_ms'], .95):9.1f}"
                f" {pct(r['warm_cpu'], .95):13.1f}")
        for k, v in r.items():
            total[k] += v
        if has_bare:
            line += (f"  {statistics.median(r['bare_ms']):8.1f}  {pct(r['bare_ms'], .95):8.1f}"
                     f"  {statistics.median(r['bare_cpu']):12.1f}  {sum(r['bare_ms']) / sum(r['ms']):6.2f}x")
        print(line)
    line = (f"{'':>{len(name)}}  all  {statistics.median(total['ms']):7.1f} {pct(total['ms'], .95):7.1f} "
            f"{statistics.median(total['cpu']):8.1f} {pct(total['cpu'], .95):8.1f}")
    if has_bare:
        line += (f"   (rate vs bare SQL over all tiles: wall {sum(total['bare_ms']) / sum(total['ms']):.3f}x,"
                 f" cpu {sum(total['bare_cpu']) / sum(total['cpu']):.2f}x)")
    print(line)
    out = {"p50_ms": round(statistics.median(total["ms"]), 1), "p95_ms": round(pct(total["ms"], .95), 1),
           "cpu_p50_ms": round(statistics.median(total["cpu"]), 1), "cpu_p95_ms": round(pct(total["cpu"], .95), 1),
           "warm_p95_ms": round(pct(total["warm_ms"], .95), 1),
           "warm_cpu_p95_ms": round(pct(total["warm_cpu"], .95), 1),
           "max_bytes": max(total["bytes"]), "max_features": max(total["features"])}
    if has_bare:
        out["rate_vs_bare_sql"] = round(sum(total["bare_ms"]) / sum(total["ms"]), 3)
        out["cpu_rate_vs_bare_sql"] = round(sum(total["bare_cpu"]) / sum(total["cpu"]), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--villages", type=int, default=0, help="default: one per ~1,000 parcels (>= 20)")
    parser.add_argument("--tiles", type=int, default=25, help="tiles per zoom")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "fieldsvc-bench-tiles"),
                        help="where the SQLite file and instance folders are kept")
    parser.add_argument("--reuse", action="store_true", help="keep a county already loaded (same size)")
    parser.add_argument("--pg-url", default=os.environ.get("FIELDSVC_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/fieldsvc_bench"))
    args = parser.parse_args()
    villages = args.villages or max(20, args.parcels // 1000)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    county = None
    picked: list = []
    tmp = Path(args.dir)
    tmp.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for engine in args.engines.split(","):
        instance = tmp / f"instance-{engine}"
        if engine == "sqlite":
            url = f"sqlite:///{tmp / f'bench-{args.parcels}.db'}"
        else:
            url = args.pg_url
        if args.reuse and loaded(url, instance, args.parcels):
            print(f"{engine}: kept the loaded county")
        else:
            if county is None:
                t = time.perf_counter()
                county = generate_county(seed=15, parcels=args.parcels, townships=max(1, villages // 30),
                                         villages=villages)
                print(f"county: {args.parcels} parcels, {villages} villages "
                      f"(generated in {time.perf_counter() - t:.0f} s)")
            if engine == "sqlite":
                Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            else:
                admin = create_engine(args.pg_url.rsplit("/", 1)[0].replace("postgresql://",
                                                                            "postgresql+psycopg://")
                                      + "/postgres", isolation_level="AUTOCOMMIT")
                name = args.pg_url.rsplit("/", 1)[1]
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    conn.execute(text(f"CREATE DATABASE {name}"))
                admin.dispose()
            with Clock(None) as clock:
                counts = load(county, url, instance)
            print(f"{engine}: loaded {args.parcels} parcels, {counts} in {clock.wall / 1000:.0f} s "
                  f"(this process's CPU {clock.cpu / 1000:.0f} s); load average {os.getloadavg()[0]:.1f}")
            summary[f"{engine}_load_s"] = round(clock.wall / 1000, 1)
        picked = picked or pick_tiles(url, instance, args.parcels, args.tiles)
        summary[engine] = report(engine, measure(url, instance, picked, COUNTY_CODE, engine != "sqlite"))
        print(f"{engine}: load average after {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "tiles", "parcels": args.parcels, "tiles_per_zoom": args.tiles,
                      "load_average": round(os.getloadavg()[0], 1), **summary}))


if __name__ == "__main__":
    main()
