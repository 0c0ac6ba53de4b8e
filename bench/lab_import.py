"""Lab import throughput on SQLite: the full import service against a bare csv + executemany.

Run: ``.venv/bin/python bench/lab_import.py [ROWS]`` (default 100,000). A 20,000-row wide
XLSX (one row per sample, one column per analyte) is timed the same way, against a bare
openpyxl read + executemany of the same cells. For each run a
fresh migrated SQLite database holds the samples (90 % of the file's codes; the
rest are held), then ``import_results`` reads, parses, matches, judges QC, inserts
and audits the long-layout file from ``bench/lab_parse.py`` and the transaction is
committed. The baseline, in the same run, decodes the same bytes with
``csv.reader`` and ``executemany``-inserts the raw rows into a table of the same
width in a fresh SQLite file with the same pragmas. A re-test import (every row a
new version superseding the last) is timed once. Target: ≥ 20,000 rows/s.
Ends with one JSON line.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lab_parse import make_csv  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from fieldsvc import create_app  # noqa: E402
from fieldsvc.auth.principal import Actor  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402

RUNS = 3
TARGET_ROWS_PER_S = 20_000
KNOWN_SHARE = 0.9
ACTOR = Actor(user_id=1, username="bench-lab", role="lab")


def _config(path: Path) -> dict:
    return {"DATABASE_URL": f"sqlite:///{path / 'fieldsvc.db'}", "INSTANCE_PATH": str(path), "DEMO": False,
            "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "TESTING": False}


def _known(codes: list[str]) -> list[str]:
    """The first 90 %: the samples that have synced; the lab's other results are held."""
    return codes[: int(len(codes) * KNOWN_SHARE)]


def make_template(path: Path, codes: list[str]) -> None:
    """A migrated database with Sample rows for ``codes``."""
    from flask_migrate import upgrade

    from fieldsvc.samples.models import Sample

    app = create_app(_config(path))
    with app.app_context():
        upgrade()
        known = codes
        db.session.execute(insert(Sample), [
            {"id": str(uuid.UUID(int=i)), "code": code, "parcel_code": "P-1", "county_code": None,
             "state": "complete", "flags": [], "media": [], "content_hash": "0" * 64, "version": 1, "seq": i + 1,
             "created_by": "bench"} for i, code in enumerate(known)])
        db.session.commit()
        db.engine.dispose()


def time_import(template: Path, work: Path, files: list[bytes]) -> list[tuple[float, dict]]:
    """Import ``files`` in order into a fresh copy of the template; (seconds, report) for each."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    app = create_app(_config(work))
    from fieldsvc.lab.services import import_results

    out = []
    with app.app_context():
        for i, data in enumerate(files):
            start = time.perf_counter()
            outcome = import_results(data, f"bench-{i}.csv", ACTOR)
            db.session.commit()
            out.append((time.perf_counter() - start, outcome.report))
        db.engine.dispose()
    return out


def time_import_xlsx(template: Path, work: Path, data: bytes) -> float:
    """The wide XLSX through the import service into a fresh copy of the template."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    app = create_app(_config(work))
    from fieldsvc.lab.services import import_results

    with app.app_context():
        start = time.perf_counter()
        outcome = import_results(data, "bench-wide.xlsx", ACTOR)
        db.session.commit()
        elapsed = time.perf_counter() - start
        assert outcome.report["rows"] == WIDE_ROWS * (len(WIDE_ANALYTES) + 1), outcome.report
        db.engine.dispose()
    return elapsed


def time_baseline(path: Path, data: bytes) -> float:
    """Decode, ``csv.reader``, ``executemany`` into a plain table, commit."""
    db_path = path / "baseline.db"
    db_path.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, sample_code TEXT, analyte TEXT, value TEXT,"
                 " unit TEXT, detection_limit TEXT, method TEXT)")
    start = time.perf_counter()
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    next(reader)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO results (sample_code, analyte, value, unit, detection_limit, method)"
                     " VALUES (?, ?, ?, ?, ?, ?)", reader)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    count = conn.execute("SELECT count(*) FROM results").fetchone()[0]
    conn.close()
    assert count == data.count(b"\n") - 1, count
    return elapsed


WIDE_ROWS = 20_000
WIDE_ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn")


def make_xlsx(rows: int) -> tuple[bytes, list[str]]:
    """A wide workbook: 样品编号 then ``Cd (mg/kg)`` ... and pH, as labs send them."""
    import random

    from openpyxl import Workbook

    rng = random.Random(5)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("结果")
    ws.append(["样品编号", *[f"{a} (mg/kg)" for a in WIDE_ANALYTES], "pH"])
    codes = [f"W{i:06d}" for i in range(rows)]
    for code in codes:
        values = [round(rng.lognormvariate(0, 0.4) * base, 3) for base in (0.15, 0.06, 8, 28, 60, 24, 27, 74)]
        ws.append([code, *values, round(rng.uniform(4.5, 8.0), 2)])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue(), codes


def time_xlsx_baseline(path: Path, data: bytes) -> float:
    """openpyxl read-only rows, melted to (code, analyte, value) and ``executemany``-inserted."""
    from openpyxl import load_workbook

    db_path = path / "baseline-xlsx.db"
    db_path.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, sample_code TEXT, analyte TEXT, value TEXT)")
    start = time.perf_counter()
    rows = load_workbook(io.BytesIO(data), read_only=True).active.iter_rows(values_only=True)
    header = next(rows)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO results (sample_code, analyte, value) VALUES (?, ?, ?)",
                     ((row[0], header[i], str(row[i])) for row in rows for i in range(1, len(header))))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main(rows: int) -> None:
    data = make_csv(rows)
    retest = make_csv(rows, seed=7)  # same codes and analytes, other values: every row a re-test
    xlsx, wide_codes = make_xlsx(WIDE_ROWS)
    csv_codes = sorted({line.split(b",", 1)[0].decode() for line in data.splitlines()[1:]})
    codes = _known(csv_codes) + _known(wide_codes)
    with tempfile.TemporaryDirectory(prefix="fieldsvc-bench-") as tmp:
        tmp_path = Path(tmp)
        template = tmp_path / "template"
        template.mkdir()
        make_template(template, codes)
        ours, base, report, wide_ours, wide_base = [], [], {}, [], []
        for run in range(RUNS):
            files = [data, retest] if run == 0 else [data]
            timed = time_import(template, tmp_path / "work", files)
            ours.append(timed[0][0])
            report = timed[0][1]
            if run == 0:
                retest_s, retest_report = timed[1]
            base.append(time_baseline(tmp_path, data))
            wide_ours.append(time_import_xlsx(template, tmp_path / "work-xlsx", xlsx))
            wide_base.append(time_xlsx_baseline(tmp_path, xlsx))
    assert report["rows"] == rows, report
    assert retest_report["superseded"] == rows, retest_report
    ours_rps, base_rps = rows / statistics.median(ours), rows / statistics.median(base)
    print(f"file: {rows} rows, {len(data) / 1e6:.1f} MB; {len(csv_codes)} sample codes, "
          f"{report['held']} results held (unknown samples)")
    print(f"import service: median {statistics.median(ours):.3f} s -> {ours_rps:,.0f} rows/s "
          f"(target {TARGET_ROWS_PER_S:,})")
    print(f"re-test import: {retest_s:.3f} s -> {rows / retest_s:,.0f} rows/s (every row supersedes one)")
    print(f"csv+executemany: median {statistics.median(base):.3f} s -> {base_rps:,.0f} rows/s")
    wide_s, wide_base_s = statistics.median(wide_ours), statistics.median(wide_base)
    cells = WIDE_ROWS * (len(WIDE_ANALYTES) + 1)
    print(f"wide XLSX: {WIDE_ROWS} rows x {len(WIDE_ANALYTES) + 1} analytes: median {wide_s:.3f} s -> "
          f"{WIDE_ROWS / wide_s:,.0f} rows/s ({cells / wide_s:,.0f} results/s); bare openpyxl+executemany "
          f"{wide_base_s:.3f} s -> {WIDE_ROWS / wide_base_s:,.0f} rows/s")
    print(json.dumps({
        "bench": "lab_import", "engine": "sqlite", "rows": rows, "bytes": len(data), "runs": RUNS,
        "held": report["held"], "import_s_median": round(statistics.median(ours), 4),
        "import_rows_per_s": round(ours_rps), "retest_import_s": round(retest_s, 4),
        "retest_rows_per_s": round(rows / retest_s), "baseline_s_median": round(statistics.median(base), 4),
        "baseline_rows_per_s": round(base_rps), "slowdown_vs_baseline": round(base_rps / ours_rps, 2),
        "target_rows_per_s": TARGET_ROWS_PER_S, "meets_target": ours_rps >= TARGET_ROWS_PER_S,
        "xlsx_wide_rows": WIDE_ROWS, "xlsx_import_s_median": round(wide_s, 4),
        "xlsx_rows_per_s": round(WIDE_ROWS / wide_s), "xlsx_results_per_s": round(cells / wide_s),
        "xlsx_baseline_s_median": round(wide_base_s, 4), "xlsx_baseline_rows_per_s": round(WIDE_ROWS / wide_base_s),
        "xlsx_slowdown_vs_baseline": round(wide_s / wide_base_s, 2),
    }))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
