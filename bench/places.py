"""Import 100,000 parcels from GeoJSON over HTTP and list them; baseline: a plain sqlite-utils insert.

Run: .venv/bin/python bench/places.py [--parcels N]
Targets (issue 2): >= 10,000 parcels/s import on SQLite; a 500-item list page <= 50 ms median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlite_utils  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from fieldsvc import create_app  # noqa: E402
from fieldsvc.auth.services import create_user  # noqa: E402
from fieldsvc.demo import load_areas  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402
from fieldsvc.places.demo_data import generate_county  # noqa: E402


def one_round(args, county, body: bytes) -> tuple[float, float, list[float]]:
    """One fresh database: (import parcels/s, sqlite-utils rows/s, list page times in ms)."""
    tmp = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-places-"))
    app = create_app({"INSTANCE_PATH": str(tmp), "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
                      "PASSWORD_HASH_PROFILE": "CHEAPEST", "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        load_areas(county)
        create_user("bench", "bench-password", "admin", county_code=None, config=app.config, actor="bench")
        db.session.commit()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "bench", "password": "bench-password"})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}

    started = time.perf_counter()
    resp = client.post("/api/v1/parcels", data=body, content_type="application/json", headers=headers)
    import_s = time.perf_counter() - started
    assert resp.status_code == 201, resp.get_json()
    import_rate = args.parcels / import_s

    page_ms, cursor, pages = [], None, 0
    while pages < 60:
        query = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        t = time.perf_counter()
        page = client.get("/api/v1/parcels", query_string=query, headers=headers)
        page_ms.append((time.perf_counter() - t) * 1000)
        cursor = page.get_json()["next_cursor"]
        pages += 1
        if cursor is None:
            break

    rows = [{"code": f["properties"]["code"], "village_code": f["properties"]["village"],
             "land_use": f["properties"]["land_use"], "crop": f["properties"].get("crop"),
             "area_m2": f["properties"].get("area_m2"), "geometry_json": json.dumps(f["geometry"])}
            for f in json.loads(body)["features"]]
    started = time.perf_counter()
    plain = sqlite_utils.Database(tmp / "plain.db")
    plain["parcels"].insert_all(rows, pk="code", batch_size=5000)
    baseline_rate = args.parcels / (time.perf_counter() - started)
    with app.app_context():
        db.engine.dispose()
    return import_rate, baseline_rate, page_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    county = generate_county(seed=11, parcels=args.parcels)
    body = json.dumps(county.feature_collection()).encode()
    results = [one_round(args, county, body) for _ in range(args.rounds)]
    import_rate = statistics.median(r[0] for r in results)
    baseline_rate = statistics.median(r[1] for r in results)
    page_ms = [ms for r in results for ms in r[2]]
    figures = {
        "parcels": args.parcels, "rounds": args.rounds,
        "import_parcels_per_s": round(import_rate),
        "baseline_sqlite_utils_rows_per_s": round(baseline_rate),
        "import_vs_baseline": round(import_rate / baseline_rate, 3),
        "list_500_page_ms_median": round(statistics.median(page_ms), 2),
        "list_500_page_ms_p90": round(sorted(page_ms)[int(len(page_ms) * 0.9) - 1], 2),
        "list_pages_measured": len(page_ms),
        "targets": {"import_parcels_per_s": 10_000, "list_500_page_ms_median": 50},
    }
    print(f"import: {args.parcels} parcels in one HTTP request, median of {args.rounds}: {import_rate:,.0f} "
          "parcels/s (validation, geometry checks, areas, versions, audit, one transaction)")
    print(f"baseline: plain sqlite-utils insert of the same rows: {baseline_rate:,.0f} rows/s "
          f"(import is {import_rate / baseline_rate:.2f}x of it)")
    print(f"list: 500-parcel pages, median {figures['list_500_page_ms_median']} ms over {len(page_ms)} pages")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
