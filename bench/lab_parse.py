"""Lab-file parsing throughput against a bare ``csv.reader`` pass over the same bytes.

Run: ``.venv/bin/python bench/lab_parse.py [ROWS]``. Prints a few human lines and ends
with one JSON line: rows/s for ``read_table`` + ``parse_results`` and for the
baseline, medians of 3 runs in this process, and their ratio (baseline / ours).
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldsvc.lab.importing import parse_results, read_table  # noqa: E402

ANALYTES = [
    ("Cd", "mg/kg"),
    ("铅", "μg/kg"),
    ("Zn", "mg·kg⁻¹"),
    ("Hg", "ppm"),
    ("有机质", "g/kg"),
    ("pH", ""),
]
VALUES = ["{v}", "{v}", "{v}", "<0.05", "0.05L", "ND", "{c}"]
RUNS = 3


def make_csv(rows: int, seed: int = 20240601) -> bytes:
    """A long-layout lab file with mixed names, units and censored notations, all valid."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["sample_code", "analyte", "value", "unit", "detection_limit", "method"])
    per_sample = len(ANALYTES)
    for i in range(rows):
        name, unit = ANALYTES[i % per_sample]
        number = f"{rng.uniform(0.1, 9.9):.3f}"
        value = rng.choice(VALUES).format(v=number, c=number.replace(".", ","))
        writer.writerow([f"S-{i // per_sample:06d}", name, value, unit, "0.01", "HJ 680"])
    return out.getvalue().encode("utf-8")


def time_ours(data: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    report = parse_results(read_table(data, "bench.csv"))
    elapsed = time.perf_counter() - start
    if report.errors:
        raise SystemExit(f"benchmark file has row errors: {report.errors[:3]}")
    return elapsed, len(report.rows)


def time_baseline(data: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    rows = sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))) - 1
    return time.perf_counter() - start, rows


def main(rows: int) -> None:
    data = make_csv(rows)
    ours, base = [], []
    for _ in range(RUNS):
        elapsed, parsed = time_ours(data)
        ours.append(elapsed)
        base_elapsed, counted = time_baseline(data)
        base.append(base_elapsed)
    assert parsed == counted == rows, (parsed, counted, rows)
    ours_rps = rows / statistics.median(ours)
    base_rps = rows / statistics.median(base)
    print(f"file: {rows} rows, {len(data) / 1e6:.1f} MB")
    print(f"parse_results: median {statistics.median(ours):.3f} s -> {ours_rps:,.0f} rows/s")
    print(f"csv.reader:    median {statistics.median(base):.3f} s -> {base_rps:,.0f} rows/s")
    figures = {
        "bench": "lab_parse",
        "rows": rows,
        "bytes": len(data),
        "runs": RUNS,
        "parse_s_median": round(statistics.median(ours), 4),
        "parse_rows_per_s": round(ours_rps),
        "csv_reader_s_median": round(statistics.median(base), 4),
        "csv_reader_rows_per_s": round(base_rps),
        "slowdown_vs_csv_reader": round(base_rps / ours_rps, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
