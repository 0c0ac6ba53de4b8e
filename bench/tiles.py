"""Vector tiles over a whole county on SQLite and PostgreSQL: z10-z17, p50/p95 ms per tile and bytes.

Baseline in the same run (PostgreSQL): PostGIS's ``ST_AsMVT`` of the same tile as bare SQL (no scope,
no grade or sampling-state joins, no simplification, no budget), the fastest that engine does.
Run: .venv/bin/python bench/tiles.py [--parcels 1000000] [--tiles 25] [--engines sqlite,postgresql]
Targets (issue 15): p95 <= 50 ms on PostgreSQL and <= 150 ms on SQLite; >= 0.5x the bare-SQL rate.
The county is the demo generator's (``places.demo_data``), loaded through the import service.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from fieldsvc import create_app  # noqa: E402
from fieldsvc.auth.principal import SYSTEM, Actor  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402
from fieldsvc.places import services as places  # noqa: E402
from fieldsvc.places.demo_data import generate_county  # noqa: E402
from fieldsvc.tiles import services as tiles  # noqa: E402
from fieldsvc.tiles.tilemath import tile_for  # noqa: E402

ZOOMS = range(10, 18)
BARE = text("SELECT ST_AsMVT(t, 'parcels', 4096, 'geom') FROM (SELECT id, code, "
            "ST_AsMVTGeom(geom, ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom FROM parcels "
            "WHERE geom && ST_TileEnvelope(:z, :x, :y)) t WHERE geom IS NOT NULL")


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
        step = 50_000
        for start in range(0, len(county.parcels), step):
            chunk = {"type": "FeatureCollection", "features": county.parcels[start:start + step]}
            places.import_parcels(chunk, SYSTEM, max_features=step)
            db.session.commit()
        if url.startswith("postgresql"):
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.engine.dispose()


def pick_tiles(county, per_zoom: int, seed: int = 15) -> list:
    """``per_zoom`` tiles at each zoom, each holding a random parcel (so none is empty by construction)."""
    rng = random.Random(seed)
    out = []
    for z in ZOOMS:
        for feature in rng.sample(county.parcels, per_zoom):
            lon, lat = feature["geometry"]["coordinates"][0][0]
            out.append(tile_for(lon, lat, z))
    return out


def measure(url: str, instance: Path, picked: list, county_code: str, bare: bool) -> dict:
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench", "DEMO": False})
    official = Actor(user_id=1, username="bench", role="official", county_code=county_code)
    rows: dict[int, dict[str, list]] = {z: {"ms": [], "bytes": [], "bare_ms": []} for z in ZOOMS}
    with app.app_context():
        tiles.render("parcels", picked[0], official, max_bytes=app.config["TILE_MAX_BYTES"])  # warm up
        for tile in picked:
            t = time.perf_counter()
            data = tiles.render("parcels", tile, official, max_bytes=app.config["TILE_MAX_BYTES"])
            rows[tile.z]["ms"].append((time.perf_counter() - t) * 1000)
            rows[tile.z]["bytes"].append(len(data))
            db.session.rollback()
            if bare:
                t = time.perf_counter()
                db.session.execute(BARE, {"z": tile.z, "x": tile.x, "y": tile.y}).scalar()
                rows[tile.z]["bare_ms"].append((time.perf_counter() - t) * 1000)
                db.session.rollback()
        db.engine.dispose()
    return rows


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(name: str, rows: dict) -> dict:
    print(f"\n{name}: zoom  p50 ms  p95 ms  bytes p50  bytes max" + ("  bare p50  bare p95  rate vs bare"
                                                                      if rows[10]["bare_ms"] else ""))
    all_ms, all_bare = [], []
    for z, r in rows.items():
        line = (f"{'':>{len(name)}}  z{z:<3} {statistics.median(r['ms']):7.1f} {pct(r['ms'], .95):7.1f} "
                f"{statistics.median(r['bytes']):10.0f} {max(r['bytes']):10d}")
        all_ms += r["ms"]
        if r["bare_ms"]:
            all_bare += r["bare_ms"]
            line += (f"  {statistics.median(r['bare_ms']):8.1f}  {pct(r['bare_ms'], .95):8.1f}"
                     f"  {sum(r['bare_ms']) / sum(r['ms']):6.2f}x")
        print(line)
    line = f"{'':>{len(name)}}  all  {statistics.median(all_ms):7.1f} {pct(all_ms, .95):7.1f}"
    if all_bare:
        line += f"   (rate vs bare SQL over all tiles: {sum(all_bare) / sum(all_ms):.2f}x)"
    print(line)
    return {"p50_ms": round(statistics.median(all_ms), 1), "p95_ms": round(pct(all_ms, .95), 1),
            "max_bytes": max(max(r["bytes"]) for r in rows.values()),
            **({"rate_vs_bare_sql": round(sum(all_bare) / sum(all_ms), 2)} if all_bare else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--villages", type=int, default=0, help="default: one per ~1,000 parcels (>= 20)")
    parser.add_argument("--tiles", type=int, default=25, help="tiles per zoom")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("FIELDSVC_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/fieldsvc_bench"))
    args = parser.parse_args()
    villages = args.villages or max(20, args.parcels // 1000)
    t = time.perf_counter()
    county = generate_county(seed=15, parcels=args.parcels, townships=max(1, villages // 30), villages=villages)
    print(f"county: {args.parcels} parcels, {villages} villages (generated in {time.perf_counter() - t:.0f} s)")
    picked = pick_tiles(county, args.tiles)
    tmp = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-tiles-"))
    summary: dict[str, dict] = {}
    for engine in args.engines.split(","):
        if engine == "sqlite":
            url = f"sqlite:///{tmp / 'bench.db'}"
        else:
            admin = create_engine(args.pg_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
                                  + "/postgres", isolation_level="AUTOCOMMIT")
            name = args.pg_url.rsplit("/", 1)[1]
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE {name}"))
            admin.dispose()
            url = args.pg_url
        t = time.perf_counter()
        load(county, url, tmp / f"instance-{engine}")
        print(f"{engine}: loaded in {time.perf_counter() - t:.0f} s")
        summary[engine] = report(engine, measure(url, tmp / f"instance-{engine}", picked, county.county,
                                                 engine != "sqlite"))
    print(json.dumps({"bench": "tiles", "parcels": args.parcels, "tiles_per_zoom": args.tiles, **summary}))


if __name__ == "__main__":
    main()
