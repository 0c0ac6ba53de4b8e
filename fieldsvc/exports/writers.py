"""Export writers: CSV and GeoJSON as byte streams, XLSX and GeoPackage into a file (no Flask).

Each takes the resource's rows (``(properties, geometry)`` pairs, read in chunks) and keeps only a
chunk in memory:
- CSV: UTF-8 with a BOM (so spreadsheet programs read Chinese right), headers in the asked
  language, numbers as exact text, every cell through ``csvout`` (formula injection escaped).
- GeoJSON: RFC 7946 (WGS 84 longitude/latitude, no ``crs`` member), property keys as in the API.
- XLSX: xlsxwriter in ``constant_memory`` mode (each row is flushed to a temporary file as it is
  written, so a million rows take the memory of one), headers in the asked language with units,
  numbers as numbers, times as spreadsheet dates in China Standard Time to the minute, text as
  text (never a formula).
- GeoPackage: GDAL's GPKG driver through pyogrio, a chunk per call appended to one layer in
  EPSG:4326, field names as in the API.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import shapely

from .. import csvout
from ..dbtypes import isoformat
from .columns import COLUMNS, GEOMETRY, ZONE_NAME, Column

ZONE = ZoneInfo(ZONE_NAME)
CHUNK = 5000
GPKG_CHUNK = 50_000  # rows per GDAL write: each opens the file and a transaction (bench/exports.py)
Row = tuple[dict[str, Any], str | None]  # (properties, the geometry as GeoJSON text)


def _chunks(rows: Iterable[Row], size: int = CHUNK) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _text(value: Any, column: Column) -> Any:
    """A cell as exact text (CSV) or a JSON value (GeoJSON)."""
    if value is None:
        return ""
    if column.kind == "time":
        return isoformat(value)
    if column.kind == "list":
        return ";".join(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


# --- CSV -----------------------------------------------------------------------------------------

def csv_chunks(resource: str, rows: Iterable[Row], lang: str,
               columns: Sequence[Column] | None = None) -> Iterator[bytes]:
    columns = columns or COLUMNS[resource]
    buffer = io.StringIO()
    writer = csvout.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.header(lang) for c in columns])
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    for chunk in _chunks(rows):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_text(props.get(c.key), c) for c in columns] for props, _ in chunk)
        yield buffer.getvalue().encode("utf-8")


# --- GeoJSON -------------------------------------------------------------------------------------

def _json_value(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.kind == "time":
        return isoformat(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def geojson_chunks(resource: str, rows: Iterable[Row], columns: Sequence[Column] | None = None) -> Iterator[bytes]:
    columns = columns or COLUMNS[resource]
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for chunk in _chunks(rows):
        parts = []
        for props, geometry in chunk:
            feature = {"type": "Feature", "geometry": orjson.Fragment(geometry) if geometry else None,
                       "properties": {c.key: _json_value(props.get(c.key), c) for c in columns}}
            parts.append(orjson.dumps(feature))
        body = b",".join(parts)
        yield body if first else b"," + body
        first = False
    yield b"]}\n"


# --- XLSX ----------------------------------------------------------------------------------------

def write_xlsx(path: str, resource: str, rows: Iterable[Row], lang: str, tmpdir: str | None = None,
               columns: Sequence[Column] | None = None) -> int:
    """Write the sheet; returns the number of data rows."""
    import xlsxwriter

    columns = columns or COLUMNS[resource]
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tmpdir, "strings_to_formulas": False,
                                      "strings_to_numbers": False, "strings_to_urls": False})
    try:
        sheet = book.add_worksheet(resource)
        bold = book.add_format({"bold": True, "bg_color": "#E8EDE9", "border": 1})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for i, c in enumerate(columns):
            sheet.write_string(0, i, c.header(lang), bold)
            sheet.set_column(i, i, 18 if c.kind == "time" else 14)
        sheet.freeze_panes(1, 0)
        n = 0
        for n, (props, _) in enumerate(rows, start=1):
            for i, c in enumerate(columns):
                value = props.get(c.key)
                if value is None:
                    continue
                if c.kind == "time":
                    sheet.write_datetime(n, i, local_minute(value), when)
                elif c.kind in ("number", "int"):
                    sheet.write_number(n, i, float(value))
                elif c.kind == "list":
                    sheet.write_string(n, i, ";".join(value))
                else:
                    sheet.write_string(n, i, str(value))
        return n
    finally:
        book.close()


# --- GeoPackage ----------------------------------------------------------------------------------

def write_gpkg(path: str, resource: str, rows: Iterable[Row], columns: Sequence[Column] | None = None) -> int:
    """Append the rows to one layer named after the resource, a chunk per write; returns the count."""
    import pyogrio.raw

    columns = columns or COLUMNS[resource]
    total = 0
    for chunk in _chunks(rows, GPKG_CHUNK):
        fields, data = [], []
        for c in columns:
            values = [props.get(c.key) for props, _ in chunk]
            if c.kind == "number":
                array = np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
            elif c.kind == "int":
                array = np.array([0 if v is None else int(v) for v in values], dtype="int64")
            else:
                array = np.array([None if v is None else _text(v, c) for v in values], dtype=object)
            fields.append(c.key)
            data.append(array)
        # GEOS reads the GeoJSON texts and writes WKB in two vectorised calls; a missing one stays None
        wkb = shapely.to_wkb(shapely.from_geojson(np.array([g for _, g in chunk], dtype=object)))
        pyogrio.raw.write(path, wkb, data, fields, layer=resource, driver="GPKG", crs="EPSG:4326",
                          geometry_type=GEOMETRY[resource], promote_to_multi=GEOMETRY[resource].startswith("Multi"),
                          append=total > 0, encoding="UTF-8")
        total += len(chunk)
    if total == 0:  # an empty layer still says what it would hold
        pyogrio.raw.write(path, np.array([], dtype=object), [np.array([], dtype=object) for _ in columns],
                          [c.key for c in columns], layer=resource, driver="GPKG", crs="EPSG:4326",
                          geometry_type=GEOMETRY[resource], encoding="UTF-8")
    return total


def local_minute(value: datetime) -> datetime:
    """A stored UTC time as the spreadsheet shows it (the county's zone, to the minute, naive)."""
    return value.astimezone(ZONE).replace(tzinfo=None, second=0, microsecond=0)
