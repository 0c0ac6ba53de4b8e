"""Grading engine throughput against a bare float loop over the same synthetic parcels.

Run: ``.venv/bin/python bench/grading_engine.py [parcels]`` (default 200,000 parcels of 1–3
samples, each with Cd Hg As Pb Cr Cu and pH; ~5 % censored values, ~3 % missing pH).
The engine figure is ``grade_parcel`` returning a ParcelGrade whose explanation and
fingerprint are built on first access; a second figure also builds both for every parcel.
The baseline computes max(C/S) with floats and a hard-coded band lookup, nothing else.
Prints both, then one JSON line with the medians of 3 runs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldsvc.grading.grade import Measurement, SampleInput, grade_parcel  # noqa: E402
from fieldsvc.grading.rules import LAND_USES, load_pack  # noqa: E402

METALS = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")
TYPICAL = {"Cd": 0.12, "Hg": 0.08, "As": 8, "Pb": 24, "Cr": 55, "Cu": 22}
CHUNK = 20_000  # parcels built, then timed, at a time (keeps memory small)
RUNS = 3


def _measurement(rng: random.Random, analyte: str) -> Measurement:
    if rng.random() < 0.05:
        dl = Decimal(str(round(TYPICAL[analyte] * rng.choice((0.05, 0.2, 2.5)), 3)))
        return Measurement(analyte, "<", None, dl, "mg/kg")
    value = Decimal(str(round(TYPICAL[analyte] * rng.lognormvariate(0, 0.3), 4)))
    return Measurement(analyte, "=", value, None, "mg/kg")


def _sample(rng: random.Random, i: int) -> SampleInput:
    ms = {a: _measurement(rng, a) for a in METALS}
    if rng.random() > 0.03:
        ms["pH"] = Measurement("pH", "=", Decimal(str(round(rng.uniform(4.5, 8.8), 2))), None, "")
    return SampleInput(f"s{i:07d}", f"BAG{i:07d}", ms)


def make_parcels(n: int, rng: random.Random, start: int = 0) -> list[tuple[str, list[SampleInput]]]:
    """Fresh objects for every parcel, as a grading run builds them from database rows."""
    parcels = []
    for k in range(start, start + n):
        parcels.append((rng.choice(LAND_USES), [_sample(rng, 3 * k + j) for j in range(rng.randint(1, 3))]))
    return parcels


def float_view(parcels, pack):
    """The same data for the baseline: floats, censored as DL/2, limits per band and land use."""
    limits = {}
    for lu in LAND_USES:
        limits[lu] = [tuple(float(cell[0]) for cell in row) for row in pack.ph_table(lu).rows]

    def conv(s: SampleInput):
        ph = s.measurements.get("pH")
        concs = tuple(float(m.value if m.qualifier == "=" else m.detection_limit / 2)
                      for m in (s.measurements[a] for a in METALS))
        return (float(ph.value) if ph else None, concs)

    return [(limits[lu], [conv(s) for s in samples]) for lu, samples in parcels]


def run_baseline(view) -> float:
    t = time.process_time()
    failing = 0
    for bands, samples in view:
        worst = 0.0
        for ph, concs in samples:
            if ph is None:
                continue
            row = bands[0] if ph < 6.5 else bands[1] if ph <= 7.5 else bands[2]
            for c, s in zip(concs, row, strict=True):
                r = c / s
                if r > worst:
                    worst = r
        failing += worst > 1.0
    return time.process_time() - t


def run_engine(parcels, pack, explain: bool = False) -> float:
    t = time.process_time()
    for lu, samples in parcels:
        g = grade_parcel(lu, samples, pack)
        if explain:
            g.to_dict()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description="The grading engine's parcels/s against a float max(C/S) loop.")
    ap.add_argument("parcels", type=int, nargs="?", default=200_000, help="parcels graded per run")
    n = ap.parse_args().parcels
    pack = load_pack("green_food_soil")
    rng = random.Random(7)
    engine_s, baseline_s, explained_s = [0.0] * RUNS, [0.0] * RUNS, [0.0] * RUNS
    verdicts: dict[str, int] = {}
    for start in range(0, n, CHUNK):
        parcels = make_parcels(min(CHUNK, n - start), rng, start)
        view = float_view(parcels, pack)
        for lu, samples in parcels:
            v = grade_parcel(lu, samples, pack).verdict
            verdicts[v] = verdicts.get(v, 0) + 1
        for r in range(RUNS):
            engine_s[r] += run_engine(parcels, pack)
            baseline_s[r] += run_baseline(view)
            if start == 0:
                explained_s[r] = run_engine(parcels, pack, explain=True)
    engine = [n / t for t in engine_s]
    baseline = [n / t for t in baseline_s]
    explained = min(CHUNK, n) / statistics.median(explained_s)
    e, b = statistics.median(engine), statistics.median(baseline)
    print(f"{n} parcels in chunks of {CHUNK}, verdicts: {verdicts}")
    print(f"engine (lazy explanation):          {e:12,.0f} parcels/s  runs {[round(x) for x in engine]}")
    print(f"engine + explanation + fingerprint: {explained:12,.0f} parcels/s  (first chunk)")
    print(f"baseline float max(C/S) loop:       {b:12,.0f} parcels/s  runs {[round(x) for x in baseline]}")
    print(json.dumps({"engine_parcels_per_s": round(e), "baseline_parcels_per_s": round(b),
                      "ratio": round(e / b, 3)}))


if __name__ == "__main__":
    main()
