"""Parcel geometry throughput (batch check + geodesic area) against ``json.loads`` of the same features.

Run: ``.venv/bin/python bench/geometry.py [POLYGONS]`` (default 100,000 demo-county parcels:
jittered quadrilaterals, 5 positions each). Ours is ``check_geometries`` then ``areas_m2`` on
what it returns, the work a bulk parcel import does per feature; the baseline is ``json.loads``
of the same FeatureCollection text, the least any import must do (also shown with the cyclic
GC paused, as ``check_geometries`` runs it: at this size GC dominates ``json.loads``). Another
figure times the one-at-a-time path (``check_geometry`` + ``area_m2``, as a PATCH uses it).
Prints a few human lines and ends with one JSON line: medians of 3 runs in this process.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldsvc.places.demo_data import generate_county  # noqa: E402
from fieldsvc.places.geometry import area_m2, areas_m2, check_geometries, check_geometry  # noqa: E402

RUNS = 3
SINGLE = 20_000
BUDGET_US = 50.0  # per parcel, from the 10,000 parcels/s end-to-end import target


def time_ours(text: str) -> float:
    """Batch check + area on a freshly parsed copy (parsing itself is not timed)."""
    geoms = [f["geometry"] for f in json.loads(text)["features"]]
    start = time.perf_counter()
    checked = check_geometries(geoms)
    areas = areas_m2([g for g, _ in checked])
    elapsed = time.perf_counter() - start
    if any(errors for _, errors in checked) or len(areas) != len(geoms):
        raise SystemExit("benchmark polygons failed the check")
    return elapsed


def time_single(text: str) -> float:
    geoms = [f["geometry"] for f in json.loads(text)["features"][:SINGLE]]
    start = time.perf_counter()
    for g in geoms:
        clean, _ = check_geometry(g)
        area_m2(clean)
    return time.perf_counter() - start


def time_baseline(text: str, gc_paused: bool = False) -> float:
    if gc_paused:
        gc.disable()
    try:
        start = time.perf_counter()
        json.loads(text)
        return time.perf_counter() - start
    finally:
        gc.enable()


def main(polygons: int) -> None:
    county = generate_county(parcels=polygons)
    text = json.dumps(county.feature_collection(), ensure_ascii=False)
    ours, base, base_nogc, single = [], [], [], []
    for _ in range(RUNS):
        ours.append(time_ours(text))
        base.append(time_baseline(text))
        base_nogc.append(time_baseline(text, gc_paused=True))
        single.append(time_single(text))
    ours_s, base_s, nogc_s, single_s = (statistics.median(x) for x in (ours, base, base_nogc, single))
    ours_ps, base_ps = polygons / ours_s, polygons / base_s
    single_us = single_s / min(SINGLE, polygons) * 1e6
    print(f"features: {polygons} polygons, {len(text) / 1e6:.1f} MB of GeoJSON")
    print(f"check_geometries + areas_m2: median {ours_s:.3f} s -> {ours_ps:,.0f} polygons/s "
          f"({ours_s / polygons * 1e6:.1f} µs each; budget {BUDGET_US:.0f} µs)")
    print(f"json.loads (baseline):       median {base_s:.3f} s -> {base_ps:,.0f} polygons/s")
    print(f"json.loads, cyclic GC paused: median {nogc_s:.3f} s -> {polygons / nogc_s:,.0f} polygons/s")
    print(f"check_geometry + area_m2, one at a time: {single_us:.1f} µs each")
    figures = {
        "bench": "geometry",
        "polygons": polygons,
        "bytes": len(text.encode("utf-8")),
        "runs": RUNS,
        "check_area_s_median": round(ours_s, 4),
        "check_area_polygons_per_s": round(ours_ps),
        "check_area_us_per_polygon": round(ours_s / polygons * 1e6, 2),
        "json_loads_s_median": round(base_s, 4),
        "json_loads_polygons_per_s": round(base_ps),
        "slowdown_vs_json_loads": round(base_ps / ours_ps, 2),
        "json_loads_gc_paused_s_median": round(nogc_s, 4),
        "single_check_area_us_per_polygon": round(single_us, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
