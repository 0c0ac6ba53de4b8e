"""Export writers' throughput: parcel grades to XLSX and GeoPackage, against bare writers.

Run: ``.venv/bin/python bench/exports.py [ROWS]`` (default 100,000; the issue's figure is
1,000,000). The rows are made in memory (a parcel square, verdict, grade, limiting list, a time),
so this times the writers, not the database read: ``writers.write_xlsx`` / ``write_gpkg`` as the
export endpoint calls them, against a bare xlsxwriter ``constant_memory`` sheet writing the same
cells with ``write_row``, and a bare ``pyogrio.raw.write`` of the same arrays in one call, in the
same run. Ends with one JSON line.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldsvc.exports import writers  # noqa: E402
from fieldsvc.exports.columns import COLUMNS  # noqa: E402


def make_rows(n: int) -> list[tuple[dict, str]]:
    moment = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    rows = []
    for i in range(n):
        x, y = 115.0 + (i % 1000) * 0.001, 28.0 + (i // 1000) * 0.001
        geometry = json.dumps({"type": "Polygon", "coordinates": [[[x, y], [x + 0.0009, y], [x + 0.0009, y + 0.0009],
                                                                  [x, y + 0.0009], [x, y]]]})
        props = {"parcel": f"360129100200-{i:07d}", "village": "360129100200", "farm_park": None,
                 "county": "360129", "land_use": "paddy", "area_m2": 8100.5, "rule_pack": "green_food_soil",
                 "verdict": "qualified" if i % 7 else "not_qualified", "grade": "clean",
                 "limiting": [] if i % 7 else ["Cd"], "computed_at": moment}
        rows.append((props, geometry))
    return rows


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rows = make_rows(n)
    columns = COLUMNS["grades"]
    folder = Path(tempfile.mkdtemp(prefix="bench-exports-"))

    def ours_xlsx():
        writers.write_xlsx(str(folder / "ours.xlsx"), "grades", iter(rows), "zh", tmpdir=str(folder))

    def bare_xlsx():
        import xlsxwriter

        book = xlsxwriter.Workbook(str(folder / "bare.xlsx"), {"constant_memory": True, "tmpdir": str(folder)})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, [c.key for c in columns])
        for r, (props, _) in enumerate(rows, start=1):
            sheet.write_row(r, 0, [";".join(v) if isinstance(v, list) else
                                   (v.replace(tzinfo=None) if isinstance(v, datetime) else v)
                                   for v in (props[c.key] for c in columns)])
        book.close()

    def ours_gpkg():
        writers.write_gpkg(str(folder / "ours.gpkg"), "grades", iter(rows))

    def bare_gpkg():
        import pyogrio.raw

        wkb = shapely.to_wkb(shapely.from_geojson(np.array([g for _, g in rows], dtype=object)))
        data = [np.array([writers._text(p[c.key], c) if c.kind not in ("number", "int") else p[c.key]
                          for p, _ in rows], dtype=object if c.kind not in ("number", "int") else "float64")
                for c in columns]
        pyogrio.raw.write(str(folder / "bare.gpkg"), wkb, data, [c.key for c in columns], layer="grades",
                          driver="GPKG", crs="EPSG:4326", geometry_type="MultiPolygon", promote_to_multi=True)

    results = {}
    for name, fn in (("xlsx", ours_xlsx), ("xlsx_bare", bare_xlsx), ("gpkg", ours_gpkg), ("gpkg_bare", bare_gpkg)):
        seconds = timed(fn)
        results[name] = round(n / seconds)
        print(f"{name:10s} {n:,} rows in {seconds:.2f} s = {n / seconds:,.0f} rows/s")
    print(f"ours vs bare: xlsx {results['xlsx'] / results['xlsx_bare']:.2f}x, "
          f"gpkg {results['gpkg'] / results['gpkg_bare']:.2f}x")
    print(json.dumps({"bench": "exports", "rows": n, "rows_per_s": results}))


if __name__ == "__main__":
    main()
