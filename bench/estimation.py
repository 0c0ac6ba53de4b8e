"""Spatial estimation at county scale, in memory (the pure module only: no database).

Run: .venv/bin/python bench/estimation.py [--samples 20000] [--parcels 1000000] [--grid 250]
Target (issue 14): 20,000 samples and 1,000,000 parcels: variogram fits, estimates for every
parcel and the grids end to end <= 60 s (the issue asks this on SQLite: this bench measures the
estimation alone, reading nothing from a database); one new result re-estimated <= 1 s.
Baselines in the same run: nearest-sample assignment of the same parcels with a KD-tree (the
floor), and PyKrige's own moving-window kriging of the same points with every sample in one
object, at the largest sample count its dense n x n kriging matrix allows here (``--lib-samples``).
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--grid", type=float, default=250.0, help="map cell size, m")
    ap.add_argument("--lib-samples", type=int, default=4_000)
    args = ap.parse_args()
    # one sample per ~ 5 ha: the side follows the sample count
    side = float(np.sqrt(args.samples * 50_000))
    sxy, cd, txy = synthetic_county(args.samples, args.parcels, side)
    params = es.EstimationParams(search_radius_m=1500)
    obs = [es.Obs(f"S{i:06d}", float(x), float(y), "dryland", float(v))
           for i, ((x, y), v) in enumerate(zip(sxy, cd, strict=True))]
    out: dict[str, float | int | str] = {"samples": args.samples, "parcels": args.parcels,
                                         "side_km": round(side / 1000, 1)}

    t0 = time.perf_counter()
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
    print(json.dumps(out))


if __name__ == "__main__":
    main()
