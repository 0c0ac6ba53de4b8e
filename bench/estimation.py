"""Spatial estimation at county scale: on SQLite end to end, and the pure module in memory.

Run: .venv/bin/python bench/estimation.py [--samples 20000] [--parcels 1000000] [--grid 250]
     [--db-samples N --db-parcels M] [--workers 2] [--no-db]
Target (issue 14): 20,000 samples and 1,000,000 parcels: variogram fits, estimates for every
parcel and the grids, end to end <= 60 s on SQLite; one new approved result re-estimated and
re-graded <= 1 s.

1. Database (``bench/estimation_db.py`` builds the county with raw sqlite3, untimed): a county
   run (``run_grading``: inputs, one variogram per analyte and pH, an estimate with its σ and
   verdict for every unsampled parcel of every analyte, grade rows, roll-up), then the element
   grids of every analyte and pH from one read of the county (``maps.build``), then one new
   approved Cd result followed by its re-grade (``regrade_for_samples``: the parcel, the parcels
   whose stored neighbour sets name the sample and those that now take it in, re-estimated with
   the run's models) and commit.
2. In memory (the pure module alone, one analyte): fits, every parcel, a grid, one new result.
Baselines in the same run: nearest-sample assignment of the same parcels with a KD-tree (the
floor), and PyKrige's own moving-window kriging of the same points with every sample in one
object, at the largest sample count its dense n x n kriging matrix allows here (``--lib-samples``).
Wall and CPU seconds are printed with the load average (CPU of this process only: a county run's
read-ahead workers come from multiprocessing's fork server, not children of this process, so their
CPU is not counted; wall time is the figure the target is about), since
the development machine is shared. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fieldsvc.grading import estimation as es  # noqa: E402


def synthetic_county(n_samples: int, n_parcels: int, side_m: float, seed: int = 1):
    """Samples and parcel centroids on a square county: log-normal Cd with a smooth trend."""
    rng = np.random.default_rng(seed)

    def surface(x, y):
        return np.log(0.15) + 0.5 * np.sin(x / 4000.0) + 0.4 * np.cos(y / 3000.0)

    sxy = rng.uniform(0, side_m, (n_samples, 2))
    cd = np.exp(surface(sxy[:, 0], sxy[:, 1]) + rng.normal(0, 0.25, n_samples))
    txy = rng.uniform(0, side_m, (n_parcels, 2))
    return sxy, cd, txy


def cpu() -> float:
    """CPU seconds of this process and its reaped children (not a county run's workers: the fork
    server's children, which this process never reaps)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def explanation_floor(db, n_estimated: int, run_cpu: float, n: int = 5000) -> dict[str, float]:
    """What the stored explanations cost: an estimated parcel's grade keeps its neighbour sets once
    (codes and distances) and per analyte its estimate, σ, bounds and verdict; the run encodes it
    once (orjson) and hashes that text for the fingerprint. Timed on ``n`` stored ones."""
    import hashlib

    import orjson

    rows = [orjson.loads(r[0]) for r in db.session.execute(db.text(
        "SELECT CAST(explanation AS TEXT) FROM grades WHERE subject_type = 'parcel' AND superseded_by IS NULL "
        "AND explanation LIKE '%\"basis\":\"estimated\"%' LIMIT :n"), {"n": n})]
    if not rows:
        return {}
    t = time.process_time()
    texts = [orjson.dumps(r) for r in rows]
    for b in texts:
        hashlib.sha256(b).hexdigest()
    per = (time.process_time() - t) / len(rows)
    size = sum(len(b) for b in texts)
    projected = per * n_estimated
    sets = sum(len(r.get("neighbour_sets") or ()) for r in rows) / len(rows)
    print(f"explanations: {size / len(rows) / 1000:.2f} KB each, {sets:.2f} neighbour sets each; encoding and "
          f"hashing one {per * 1e6:.0f} µs CPU; x {n_estimated:,} estimated parcels = {projected:.1f} s CPU "
          f"({projected / max(run_cpu, 1e-9):.0%} of the run)", flush=True)
    return {"explanation_kb": round(size / len(rows) / 1000, 2), "explanation_encode_us": round(per * 1e6),
            "explanation_sets": round(sets, 2), "explanation_encode_projected_s": round(projected, 1)}


def database(n_samples: int, n_parcels: int, workers: int) -> dict[str, float | int | str]:
    """The county on SQLite end to end (see the module docstring); returns its figures."""
    import estimation_db as edb
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.extensions import db
    from fieldsvc.grading import maps, spatial
    from fieldsvc.grading.regrade import regrade_for_samples
    from fieldsvc.grading.rules import load_pack
    from fieldsvc.grading.runs import run_grading
    from fieldsvc.lab.models import LabResult

    tmp = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-estimation-"))
    path = tmp / "bench.db"
    app = create_app({"INSTANCE_PATH": str(tmp), "DATABASE_URL": f"sqlite:///{path}", "DEMO": False,
                      "PASSWORD_HASH_PROFILE": "CHEAPEST", "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    t = time.perf_counter()
    made = edb.populate(path, n_parcels, n_samples)
    out: dict[str, float | int | str] = {"db_samples": len(made), "db_parcels": n_parcels,
                                         "db_setup_s": round(time.perf_counter() - t, 1)}
    print(f"database: {n_parcels:,} parcels, {len(made):,} samples with 7 approved results ({out['db_setup_s']} s)",
          flush=True)
    pack = load_pack("green_food_soil")
    with app.app_context():
        w0, c0 = time.perf_counter(), cpu()
        run = run_grading("county", edb.COUNTY, None, workers=workers)
        db.session.commit()
        w1, c1 = time.perf_counter(), cpu()
        est = run.estimation or {}
        out |= {"db_run_s": round(w1 - w0, 2), "db_run_cpu_s": round(c1 - c0, 2), "db_estimated": est.get("estimated"),
                "db_not_assessed": est.get("not_assessed"), "db_counts": json.dumps(run.counts, sort_keys=True),
                "db_methods": ",".join(f"{k}:{v['method']}" for k, v in sorted(est.get("models", {}).items()))}
        print(f"county run: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU; estimated {est.get('estimated'):,}, "
              f"not assessed {est.get('not_assessed'):,}; {run.counts}", flush=True)
        out |= explanation_floor(db, est.get("estimated") or 0, c1 - c0)
        data = spatial.load_survey(edb.COUNTY)
        cells = 0
        shared: dict = {}  # the analytes measured on the same samples share the grid's neighbour search
        for analyte in maps.analytes_of(pack):
            m = maps.build(edb.COUNTY, analyte, pack, data=data, shared=shared)
            cells += m.estimate.size if m is not None else 0
        w2, c2 = time.perf_counter(), cpu()
        out |= {"db_grids_s": round(w2 - w1, 2), "db_grids_cpu_s": round(c2 - c1, 2), "db_grid_cells": cells,
                "db_end_to_end_s": round(w2 - w0, 2), "db_end_to_end_cpu_s": round(c2 - c0, 2)}
        print(f"grids ({len(maps.analytes_of(pack))} analytes, {cells:,} cells): {w2 - w1:.1f} s wall, "
              f"{c2 - c1:.1f} s CPU; end to end {w2 - w0:.1f} s wall, {c2 - c0:.1f} s CPU", flush=True)
        sid, parcel = made[len(made) // 2]
        db.session.add(LabResult(import_id=1, line=1, sample_id=sid, sample_code=parcel, sample_code_key=parcel,
                                 series=parcel, analyte="Cd", qualifier="=", value="0.9", unit="mg/kg",
                                 raw_value="0.9", raw_unit="mg/kg", qc_flags=[], status="approved", approvals=1,
                                 version=2, created_by="bench"))
        db.session.commit()
        w3, c3 = time.perf_counter(), cpu()
        changes = regrade_for_samples([sid])
        db.session.commit()
        w4, c4 = time.perf_counter(), cpu()
        out |= {"db_incremental_s": round(w4 - w3, 3), "db_incremental_cpu_s": round(c4 - c3, 3),
                "db_incremental_changes": len(changes)}
        print(f"one approval re-graded (its parcel, the parcels whose neighbour sets hold the sample): "
              f"{w4 - w3:.3f} s wall, "
              f"{c4 - c3:.3f} s CPU, {len(changes)} grade changes", flush=True)
        db.engine.dispose()
    out["db_size_gb"] = round(sum(f.stat().st_size for f in tmp.iterdir()) / 1e9, 2)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--db-samples", type=int, help="database county samples (default --samples)")
    ap.add_argument("--db-parcels", type=int, help="database county parcels (default --parcels)")
    ap.add_argument("--workers", type=int, default=2, help="county run worker processes (0: serial)")
    ap.add_argument("--no-db", action="store_true", help="the in-memory part only")
    ap.add_argument("--grid", type=float, default=250.0, help="map cell size, m")
    ap.add_argument("--lib-samples", type=int, default=4_000)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    db_out = {} if args.no_db else database(args.db_samples or args.samples, args.db_parcels or args.parcels,
                                            args.workers)
    # one sample per ~ 5 ha: the side follows the sample count
    side = float(np.sqrt(args.samples * 50_000))
    sxy, cd, txy = synthetic_county(args.samples, args.parcels, side)
    params = es.EstimationParams(search_radius_m=1500)
    obs = [es.Obs(f"S{i:06d}", float(x), float(y), "dryland", float(v))
           for i, ((x, y), v) in enumerate(zip(sxy, cd, strict=True))]
    out: dict[str, float | int | str] = {"samples": args.samples, "parcels": args.parcels,
                                         "side_km": round(side / 1000, 1)}

    t0, c0 = time.perf_counter(), time.process_time()
    model = es.fit_model("Cd", obs, params)
    pH = es.fit_model("pH", [es.Obs(o.code, o.x, o.y, o.land_use, 6.0 + o.value) for o in obs],
                      es.EstimationParams(search_radius_m=1500, log_normal=frozenset()))
    out["fit_s"] = round(time.perf_counter() - t0, 3)
    out["method"] = model.method

    t1 = time.perf_counter()
    surf = es.estimate_points(model, sxy, cd, txy, params)
    out["parcels_s"] = round(time.perf_counter() - t1, 3)
    out["assessed_share"] = round(float(np.isfinite(surf.y).mean()), 4)

    t2 = time.perf_counter()
    gx = np.arange(0, side, args.grid) + args.grid / 2
    gxx, gyy = np.meshgrid(gx, gx)
    gxy = np.column_stack([gxx.ravel(), gyy.ravel()])
    grid = es.estimate_points(model, sxy, cd, gxy, params)
    out["grid_cells"] = int(len(gxy))
    out["grid_s"] = round(time.perf_counter() - t2, 3)
    out["end_to_end_s"] = round(time.perf_counter() - t0, 3)
    out["end_to_end_cpu_s"] = round(time.process_time() - c0, 3)
    del grid, pH

    # one new approved result: re-estimate only parcels within the radius, with the run's model
    t3 = time.perf_counter()
    new_xy = np.array([[side / 2, side / 2]])
    near = np.nonzero(np.hypot(*(txy - new_xy).T) <= params.search_radius_m)[0]
    sxy2, cd2 = np.vstack([sxy, new_xy]), np.append(cd, 0.9)
    es.estimate_points(model, sxy2, cd2, txy[near], params)
    out["incremental_parcels"] = int(len(near))
    out["incremental_s"] = round(time.perf_counter() - t3, 4)

    # baseline 1: nearest sample by KD-tree (the floor)
    from scipy.spatial import cKDTree

    t4 = time.perf_counter()
    cKDTree(sxy).query(txy, k=1, distance_upper_bound=params.search_radius_m)
    out["baseline_nearest_s"] = round(time.perf_counter() - t4, 3)
    out["ratio_vs_nearest"] = round(out["parcels_s"] / max(out["baseline_nearest_s"], 1e-9), 1)

    # baseline 2: the library's moving-window kriging with all (lib-samples) samples in one object
    from pykrige.ok import OrdinaryKriging

    m = min(args.lib_samples, args.samples)
    vp = es._pykrige_params(model)
    sub_t = txy[: args.parcels * m // args.samples]
    t5 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = OrdinaryKriging(sxy[:m, 0], sxy[:m, 1], np.log(cd[:m]), variogram_model=model.variogram["model"],
                             variogram_parameters=vp)
        ok.execute("points", sub_t[:, 0], sub_t[:, 1], backend="C", n_closest_points=params.max_neighbours)
    lib_s = time.perf_counter() - t5
    t6 = time.perf_counter()
    sub_s = sxy[:m]
    es.estimate_points(model, sub_s, cd[:m], sub_t, params)
    ours_s = time.perf_counter() - t6
    out["baseline_library_samples"] = m
    out["baseline_library_points"] = int(len(sub_t))
    out["baseline_library_s"] = round(lib_s, 3)
    out["ours_same_points_s"] = round(ours_s, 3)
    out |= db_out
    out["load_avg_start"], out["load_avg_end"] = round(load0, 1), round(os.getloadavg()[0], 1)
    out["cpus"] = os.cpu_count() or 0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
