"""Vector tiles over a whole county on SQLite and PostgreSQL: z10-z17, p50/p95 ms per tile and bytes.

Baseline in the same run (PostgreSQL): PostGIS's ``ST_AsMVT`` of the same tile as bare SQL: the same
parcels (index test, minimum size, largest first up to the same cap) and simplification, but no scope,
no grade, village or sampling-state look-ups and no cache: the least that engine does for that tile.
Each tile is measured cold (cache bypassed, the full build) with wall and CPU time (this process plus
the PostgreSQL backend, from /proc), then warm (read back from the tile cache).
Run: .venv/bin/python bench/tiles.py [--parcels 1000000] [--tiles 25] [--engines sqlite,postgresql]
Targets (issue 15): p95 <= 50 ms on PostgreSQL and <= 150 ms on SQLite; >= 0.5x the bare-SQL rate.
The county is the demo generator's (``places.demo_data``), written with bulk SQL (COPY on PostgreSQL);
``--reuse`` keeps a county already loaded (the migrations still run on it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from fieldsvc import create_app, sequence  # noqa: E402
from fieldsvc.auth.principal import SYSTEM, Actor  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402
from fieldsvc.places import services as places  # noqa: E402
from fieldsvc.places.demo_data import COUNTY_CODE, generate_county  # noqa: E402
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
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def load(county, url: str, instance: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    with app.app_context():
        upgrade()
        for level in ("county", "township", "village"):
            for region in county.regions:
                if region["level"] == level:
                    places.create_region(region, SYSTEM)
        for park in county.farm_parks:
            places.create_farm_park(park, SYSTEM)
        db.session.commit()
        fill_parcels(county, url)
        db.engine.dispose()


def loaded(url: str, instance: Path, parcels: int) -> bool:
    """Whether ``url`` already holds a county of ``parcels`` parcels (``--reuse``: the fill is skipped; the
    migrations still run, so a new one applies to the kept county)."""
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    with app.app_context():
        try:
            count = db.session.execute(text("SELECT count(*) FROM parcels")).scalar()
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
        line += (f"   (rate vs bare SQL over all tiles: wall {sum(total['bare_ms']) / sum(total['ms']):.2f}x,"
                 f" cpu {sum(total['bare_cpu']) / sum(total['cpu']):.2f}x)")
    print(line)
    out = {"p50_ms": round(statistics.median(total["ms"]), 1), "p95_ms": round(pct(total["ms"], .95), 1),
           "cpu_p50_ms": round(statistics.median(total["cpu"]), 1), "cpu_p95_ms": round(pct(total["cpu"], .95), 1),
           "warm_p95_ms": round(pct(total["warm_ms"], .95), 1),
           "warm_cpu_p95_ms": round(pct(total["warm_cpu"], .95), 1),
           "max_bytes": max(total["bytes"]), "max_features": max(total["features"])}
    if has_bare:
        out["rate_vs_bare_sql"] = round(sum(total["bare_ms"]) / sum(total["ms"]), 2)
        out["cpu_rate_vs_bare_sql"] = round(sum(total["bare_cpu"]) / sum(total["cpu"]), 2)
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
                load(county, url, instance)
            print(f"{engine}: loaded {args.parcels} parcels in {clock.wall / 1000:.0f} s "
                  f"(this process's CPU {clock.cpu / 1000:.0f} s); load average {os.getloadavg()[0]:.1f}")
            summary[f"{engine}_load_s"] = round(clock.wall / 1000, 1)
        picked = picked or pick_tiles(url, instance, args.parcels, args.tiles)
        summary[engine] = report(engine, measure(url, instance, picked, COUNTY_CODE, engine != "sqlite"))
        print(f"{engine}: load average after {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "tiles", "parcels": args.parcels, "tiles_per_zoom": args.tiles,
                      "load_average": round(os.getloadavg()[0], 1), **summary}))


if __name__ == "__main__":
    main()
