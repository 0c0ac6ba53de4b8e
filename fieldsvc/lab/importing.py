"""Lab files (CSV or XLSX) → result rows in canonical units, plus row errors.

An import is all or nothing (DESIGN §4.5), so this module never drops a bad
row quietly: every problem becomes a ``RowError`` naming the file's line (CSV:
the physical line where the record starts; XLSX: the sheet's row number) and
the column as the lab wrote it, so the analyst can find and fix the cell.
Nothing here writes anywhere; the caller decides whether to commit.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

from fieldsvc.errors import Problem
from fieldsvc.lab.analytes import NONE, Analyte, alias_key, resolve_analyte
from fieldsvc.lab.units import UnitError, conversion_power, convert, unit_dimension
from fieldsvc.lab.values import ValueParseError, parse_detection_limit, parse_value

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DELIMITERS = (",", ";", "\t")
HEADER_SCAN_ROWS = 20

# Canonical column → the names labs use for it, "|"-separated (matched after alias_key folding,
# so case, spaces, "_" and full-width forms do not matter).
COLUMN_ALIASES: dict[str, str] = {
    "sample_code": "sample_code|sample|sample id|sample no|sample number|barcode"
    "|样品编号|样品编码|样品号|样品条码|样品代码|条码|野外编号|采样编号",
    "lab_id": "lab_id|lab no|lab number|lab sample id|实验室编号|检测编号|分析编号|实验室样品编号",
    "analyte": "analyte|parameter|determinand|element|检测项目|分析项目|项目|指标|检测指标",
    "value": "value|result|检测结果|结果|测定值|检测值|分析结果|测试结果",
    "unit": "unit|units|单位|计量单位|结果单位",
    "detection_limit": "detection_limit|dl|lod|mdl|检出限|方法检出限|检出限值",
    "method": "method|检测方法|分析方法|方法|检测依据|方法依据|测试方法",
    "qc_type": "qc_type|qc|质控类型|质控|质控样类型",
    "duplicate_of": "duplicate_of|平行原样|平行样原样编号|原样编号",
    "crm": "crm|reference material|标准物质|标准物质编号|标样|标样编号",
}
_COLUMN_INDEX = {alias_key(n): col for col, names in COLUMN_ALIASES.items() for n in names.split("|")}

QC_TYPES: dict[str | None, str] = {
    None: "|sample|normal|样品|普通样|正常样",
    "blank": "blank|method blank|blk|空白|方法空白|全程序空白|空白样",
    "duplicate": "duplicate|dup|平行|平行样|平行双样|重复样",
    "crm": "crm|srm|reference material|标准物质|标样|有证标准物质",
}
_QC_INDEX = {alias_key(n): kind for kind, names in QC_TYPES.items() for n in names.split("|")}

# Wide layout: a cell that says "this analyte was not ordered", which is not a result.
NOT_MEASURED = frozenset({"", "-", "--", "—", "——", "/", "未测", "n/a", "na"})
# Wide layout: rows whose sample-code cell marks them as the detection-limit or the unit row.
DL_ROW_NAMES = frozenset(alias_key(n) for n in "检出限|方法检出限|detection limit|DL|LOD|MDL".split("|"))
UNIT_ROW_NAMES = frozenset(alias_key(n) for n in "单位|unit|units|计量单位".split("|"))


class FileUnreadable(Problem):
    """The upload is not a CSV or XLSX we can read at all (no row report possible)."""

    def __init__(self, message: str) -> None:
        super().__init__(422, "unreadable_file", message)


@dataclass(frozen=True)
class TableRow:
    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A file's non-blank rows as text cells, header row included."""

    rows: list[TableRow]
    kind: str  # "csv" | "xlsx"
    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True)
class ResultRow:
    """One result in canonical units. For a censored row (``qualifier == "<"``) ``value``
    is None and ``detection_limit`` is the limit it is censored at."""

    line: int
    sample_code: str
    sample_code_key: str
    analyte: str
    qualifier: str
    value: Decimal | None
    detection_limit: Decimal | None
    unit: str
    raw_value: str
    raw_unit: str
    method: str | None = None
    qc_type: str | None = None
    duplicate_of: str | None = None
    crm: str | None = None
    lab_id: str | None = None
    column: str = ""  # the header of the cell the value came from

    @property
    def censored(self) -> bool:
        return self.qualifier == "<"


@dataclass(frozen=True)
class RowError:
    line: int
    errors: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "errors": dict(self.errors)}


@dataclass
class ParseReport:
    layout: str | None  # "long" | "wide" | None when no header was recognised
    rows: list[ResultRow]
    errors: list[RowError]
    warnings: list[str] = field(default_factory=list)
    header_line: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def sha256_of(data: bytes) -> str:
    """Content hash that makes a re-upload of the same file a no-op."""
    return hashlib.sha256(data).hexdigest()


def sample_code_key(code: str) -> str:
    """Match key for a bag code: NFKC, case folded, all whitespace removed."""
    if not code.isascii():
        code = unicodedata.normalize("NFKC", code)
    return "".join(code.casefold().split())


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class XlsxLimits:
    """What an XLSX upload may unpack to; checked before openpyxl parses anything.

    An XLSX is a zip of XML: a 187 KB upload unpacked to 64 MB of XML (1 M rows) and kept a worker
    busy for up to a minute before its 422. The zip's directory gives every member's sizes, and
    one streaming pass over the worksheets counts their rows and cells at zlib speed.
    """

    max_rows: int = 200_000
    max_cells: int = 4_000_000
    max_uncompressed_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 100

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> XlsxLimits:
        return cls(int(config["LAB_XLSX_MAX_ROWS"]), int(config["LAB_XLSX_MAX_CELLS"]),  # type: ignore[arg-type]
                   int(config["LAB_XLSX_MAX_UNCOMPRESSED_BYTES"]), int(config["LAB_XLSX_MAX_RATIO"]))  # type: ignore[arg-type]


class ImportTooLarge(Problem):
    """413 naming the setting whose limit the file is over."""

    def __init__(self, setting: str, limit: int, found: int, what: str) -> None:
        super().__init__(413, "import_too_large", f"The file has {what} over the limit {setting}={limit}; "
                                                  "split it or save it as CSV.", limit=setting, max=limit, found=found)


# Bigger members only: a small XML file may compress 200:1 and harm no one.
RATIO_CHECK_FROM_BYTES = 1024 * 1024
_SCAN_CHUNK = 1024 * 1024


def check_xlsx(data: bytes, limits: XlsxLimits) -> None:
    """Refuse an XLSX whose zip would unpack past ``limits``, before it is parsed.

    :raise ImportTooLarge: 413 naming the limit. :raise FileUnreadable: not a zip.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise FileUnreadable(f"The XLSX file cannot be read: {exc}") from exc
    with archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > limits.max_uncompressed_bytes:
            raise ImportTooLarge("LAB_XLSX_MAX_UNCOMPRESSED_BYTES", limits.max_uncompressed_bytes, total,
                                 "an uncompressed size")
        for m in members:
            if m.file_size >= RATIO_CHECK_FROM_BYTES and m.file_size > limits.max_ratio * max(m.compress_size, 1):
                raise ImportTooLarge("LAB_XLSX_MAX_RATIO", limits.max_ratio, m.file_size // max(m.compress_size, 1),
                                     f"a compression ratio ({m.filename})")
        rows = cells = 0
        for m in members:
            if not (m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml")):
                continue
            # zipfile stops at the declared size (and checks the CRC), so a lying directory cannot
            # make this read more than the total checked above.
            try:
                with archive.open(m) as stream:
                    carry = b""
                    while chunk := stream.read(_SCAN_CHUNK):
                        buf = carry + chunk
                        cut = buf.rfind(b"<")
                        if cut < len(buf) - 256:  # no tag start near the end: nothing to carry over
                            cut = len(buf)
                        r, c = _count_tags(buf[:cut])
                        rows, cells, carry = rows + r, cells + c, buf[cut:]
                        _check_counts(rows, cells, limits)
                    r, c = _count_tags(carry)
                    rows, cells = rows + r, cells + c
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise FileUnreadable(f"The XLSX file cannot be read: {exc}") from exc
        _check_counts(rows, cells, limits)


def _count_tags(xml: bytes) -> tuple[int, int]:
    """Start tags of rows and cells, with or without a namespace prefix (``<x:row>``), counted with
    ``bytes.count`` (a regex took 4 s for 100 MB): a bound from above, since a ``<rowBreaks>`` counts too."""
    rows = xml.count(b"<row") + xml.count(b":row")
    cells = xml.count(b"<c ") + xml.count(b"<c>") + xml.count(b":c ") + xml.count(b":c>")
    return rows, cells


def _check_counts(rows: int, cells: int, limits: XlsxLimits) -> None:
    if rows > limits.max_rows:
        raise ImportTooLarge("LAB_XLSX_MAX_ROWS", limits.max_rows, rows, "rows")
    if cells > limits.max_cells:
        raise ImportTooLarge("LAB_XLSX_MAX_CELLS", limits.max_cells, cells, "cells")


def read_table(data: bytes, filename: str, xlsx_limits: XlsxLimits | None = None) -> Table:
    """Read an upload into text rows, by its content rather than its name.

    :raise FileUnreadable: not a CSV/XLSX we can decode (a 422 for the client).
    :raise ImportTooLarge: an XLSX that would unpack past ``xlsx_limits`` (the defaults when None).
    """
    if data.startswith(ZIP_MAGIC):
        limits = xlsx_limits or XlsxLimits()
        check_xlsx(data, limits)
        return _read_xlsx(data, limits)
    if data.startswith(OLE_MAGIC):
        raise FileUnreadable(f"{filename}: old Excel (.xls) files are not supported; save it as XLSX or CSV.")
    if filename.lower().endswith(".xlsx"):
        raise FileUnreadable(f"{filename} is named .xlsx but is not an XLSX file.")
    return _read_csv(data, filename)


def _decode(data: bytes, filename: str) -> tuple[str, str]:
    """UTF-16 (by BOM), then UTF-8 (BOM or not), then GB18030, which also covers GBK."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: Sequence[str] = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "gb18030")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        if encoding == "utf-8-sig" and not data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        return text, encoding
    raise FileUnreadable(f"{filename} is neither XLSX nor text in UTF-8, UTF-16 or GB18030/GBK.")


def sniff_delimiter(text: str) -> str:
    """The delimiter used most on the first line that has any; ``,`` when none does."""
    for line in text.splitlines():
        counts = {d: line.count(d) for d in DELIMITERS}
        best = max(DELIMITERS, key=lambda d: counts[d])
        if counts[best]:
            return best
    return ","


def _read_csv(data: bytes, filename: str) -> Table:
    text, encoding = _decode(data, filename)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[TableRow] = []
    start = 1
    try:
        for record in reader:
            cells = tuple(cell.strip() for cell in record)
            if any(cells):
                rows.append(TableRow(start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise FileUnreadable(f"{filename}, line {start}: {exc}.") from exc
    return Table(rows, "csv", encoding, delimiter)


def _cell_text(value: object) -> str:
    """A cell as the text the lab typed; floats via repr, which round-trips 0.3 as ``0.3``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()


def _read_xlsx(data: bytes, limits: XlsxLimits) -> Table:
    import openpyxl  # only XLSX uploads pay for the import

    rows: list[TableRow] = []
    with warnings.catch_warnings():
        # openpyxl warns about styles and extensions it skips; none of them touch cell values.
        warnings.simplefilter("ignore")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # a corrupt zip/XML raises many types; all mean "unreadable"
            raise FileUnreadable(f"The XLSX file cannot be read: {exc}") from exc
        try:
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()  # trust the rows, not a possibly wrong <dimension>
            for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                if line > limits.max_rows:  # (streamed: also a sheet that numbers its rows sparsely)
                    raise ImportTooLarge("LAB_XLSX_MAX_ROWS", limits.max_rows, line, "rows")
                cells = tuple(_cell_text(v) for v in values)
                if any(cells):
                    rows.append(TableRow(line, cells))
        except ImportTooLarge:
            raise
        except Exception as exc:
            raise FileUnreadable(f"The XLSX file cannot be read: {exc}") from exc
        finally:
            workbook.close()
    return Table(rows, "xlsx", None, None)


# ---------------------------------------------------------------- headers


def header_column(text: str) -> str | None:
    """The canonical column a header names (``样品编号`` → ``sample_code``), if any."""
    return _COLUMN_INDEX.get(alias_key(text))


@dataclass(frozen=True)
class AnalyteColumn:
    index: int
    header: str
    analyte: Analyte
    unit: str | None  # None: the header gave no unit


def split_analyte_header(text: str) -> tuple[Analyte | None, str | None]:
    """``Cd (mg/kg)``, ``镉（mg/kg）``, ``CEC(cmol(+)/kg)``, ``pH`` → (analyte, unit or None)."""
    plain = unicodedata.normalize("NFKC", text).strip()
    analyte = resolve_analyte(plain)
    if analyte:
        return analyte, None
    for match in re.finditer(r"[(\[]", plain):
        closing = ")" if match.group() == "(" else "]"
        if plain.endswith(closing):
            analyte = resolve_analyte(plain[: match.start()].rstrip(" /"))
            if analyte:
                return analyte, plain[match.start() + 1 : -1].strip()
    name, _, unit = plain.rpartition(" ")
    if name and unit_dimension(unit) is not None:
        return resolve_analyte(name), unit
    return None, None


@dataclass
class _Header:
    line: int
    columns: dict[str, int]
    analyte_columns: list[AnalyteColumn]
    names: tuple[str, ...]
    errors: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def name(self, column: str) -> str:
        """The file's own header for a canonical column, so errors use the lab's words."""
        index = self.columns.get(column)
        return self.names[index] if index is not None else column


def _read_header(row: TableRow) -> _Header:
    header = _Header(row.line, {}, [], row.cells)
    for index, text in enumerate(row.cells):
        if not text:
            continue
        column = header_column(text)
        if column:
            if column in header.columns:
                header.errors[text] = f"Repeats the {column} column ({row.cells[header.columns[column]]!r})."
            header.columns.setdefault(column, index)
            continue
        analyte, unit = split_analyte_header(text)
        if analyte:
            header.analyte_columns.append(AnalyteColumn(index, text, analyte, unit))
            if unit is not None:
                try:
                    conversion_power(unit, analyte)
                except UnitError as exc:
                    header.errors[text] = exc.message
        elif unit is not None or _has_unit_suffix(text):
            header.errors[text] = "Unknown analyte; use a name such as Cd, 镉 or cadmium."
        else:
            header.ignored.append(text)
    return header


def _has_unit_suffix(text: str) -> bool:
    plain = unicodedata.normalize("NFKC", text).strip()
    match = re.search(r"\(([^()]*(?:\([^()]*\))?[^()]*)\)$", plain)
    return bool(match) and unit_dimension(match.group(1)) is not None


def _find_header(rows: Sequence[TableRow]) -> int | None:
    """Index of the first row naming a sample-code column; title rows above it are skipped."""
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        if any(header_column(cell) == "sample_code" for cell in row.cells):
            return i
    return None


# ---------------------------------------------------------------- rows

# The most a canonical value can physically be; above it the number is a typo or a unit slip.
UPPER_BOUNDS = {"mg/kg": Decimal(1_000_000), "g/kg": Decimal(1000), "": Decimal(14)}


@lru_cache(maxsize=256)
def _qc_type(text: str) -> str | None:
    key = alias_key(text)
    if key not in _QC_INDEX:
        raise ValueError(f"Unknown QC type {text!r}; use blank, duplicate or crm (or leave it empty).")
    return _QC_INDEX[key]


@dataclass(frozen=True)
class _Meta:
    """The per-row cells that are not the result itself."""

    sample_code: str
    lab_id: str | None
    method: str | None
    qc_type: str | None
    duplicate_of: str | None
    crm: str | None


def _cell(cells: Sequence[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _read_meta(cells: Sequence[str], header: _Header, errors: dict[str, str]) -> _Meta:
    """The row's meta cells; problems go into ``errors`` under the file's column names."""

    def cell(column: str) -> str:
        return _cell(cells, header.columns.get(column))

    sample_code = cell("sample_code")
    if not sample_code:
        errors[header.name("sample_code")] = "Sample code is empty."
    qc_type = None
    try:
        qc_type = _qc_type(cell("qc_type"))
    except ValueError as exc:
        errors[header.name("qc_type")] = str(exc)
    duplicate_of, crm = cell("duplicate_of") or None, cell("crm") or None
    if qc_type == "duplicate" and not duplicate_of:
        errors[header.name("duplicate_of")] = "A duplicate must name its original sample in duplicate_of."
    if qc_type == "crm" and not crm:
        errors[header.name("crm")] = "A CRM row must name its reference material in the crm column."
    return _Meta(sample_code, cell("lab_id") or None, cell("method") or None, qc_type, duplicate_of, crm)


@dataclass(frozen=True)
class _Cells:
    """Where one result's value, unit and detection limit came from, for naming errors."""

    value: str
    unit: str
    detection_limit: str | None
    value_column: str
    unit_column: str
    dl_column: str


def _result(
    line: int, meta: _Meta, analyte: Analyte, src: _Cells, errors: dict[str, str]
) -> ResultRow | None:
    """One canonical result, or None with the reason filed in ``errors``."""
    try:
        if not src.unit and analyte.dimension != NONE:
            raise UnitError(
                f"Unit is empty; {analyte.key} needs one, e.g. {analyte.unit}.", analyte=analyte.key
            )
        parsed = parse_value(src.value, src.detection_limit)
        limit = parsed.limit if parsed.censored else parse_detection_limit(src.detection_limit)
        value = convert(parsed.value, src.unit, analyte) if parsed.value is not None else None
        limit = convert(limit, src.unit, analyte) if limit is not None else None
    except UnitError as exc:
        errors[src.unit_column] = exc.message
        return None
    except ValueParseError as exc:
        errors[src.dl_column if exc.field == "detection_limit" else src.value_column] = str(exc)
        return None
    bound = UPPER_BOUNDS.get(analyte.unit)
    if bound is not None and max(value or 0, limit or 0) > bound:
        errors[src.value_column] = (
            f"{src.value!r} {src.unit} is impossible for {analyte.key} (above {bound} {analyte.unit})."
        )
        return None
    return ResultRow(
        line=line,
        sample_code=meta.sample_code,
        sample_code_key=sample_code_key(meta.sample_code),
        analyte=analyte.key,
        qualifier=parsed.qualifier,
        value=value,
        detection_limit=limit,
        unit=analyte.unit,
        raw_value=src.value,
        raw_unit=src.unit,
        method=meta.method,
        qc_type=meta.qc_type,
        duplicate_of=meta.duplicate_of,
        crm=meta.crm,
        lab_id=meta.lab_id,
        column=src.value_column,
    )


def _extra_cells(row: TableRow, width: int, errors: dict[str, str]) -> None:
    extra = [i for i in range(width, len(row.cells)) if row.cells[i]]
    if extra:
        errors[f"column {extra[0] + 1}"] = (
            f"The row has {len(row.cells)} cells but the header has {width}; "
            "in a comma-separated file quote decimal commas (\"0,05\") or use a ';' delimiter."
        )


def _long_rows(rows: Iterable[TableRow], header: _Header, report: ParseReport) -> Iterator[ResultRow]:
    cols, width = header.columns, len(header.names)
    value_at, unit_at, dl_at = cols["value"], cols["unit"], cols.get("detection_limit")
    names = header.name("value"), header.name("unit"), header.name("detection_limit")
    for row in rows:
        cells, errors = row.cells, {}
        _extra_cells(row, width, errors)
        meta = _read_meta(cells, header, errors)
        analyte_text = _cell(cells, cols["analyte"])
        analyte = resolve_analyte(analyte_text)
        result = None
        if analyte is None:
            message = f"Unknown analyte {analyte_text!r}." if analyte_text else "Analyte is empty."
            errors[header.name("analyte")] = message
        else:
            src = _Cells(_cell(cells, value_at), _cell(cells, unit_at), _cell(cells, dl_at) or None, *names)
            result = _result(row.line, meta, analyte, src, errors)
        if errors:
            report.errors.append(RowError(row.line, errors))
        elif result is not None:
            yield result


def _special_rows(rows: Sequence[TableRow], header: _Header, names: frozenset[str]) -> list[TableRow]:
    index = header.columns["sample_code"]
    return [row for row in rows if alias_key(_cell(row.cells, index)) in names]


def _wide_units(header: _Header, unit_rows: list[TableRow], report: ParseReport) -> dict[int, str]:
    """Each analyte column's unit, from its header or a 单位/unit row; bad columns are reported once."""
    units: dict[int, str] = {}
    for col in header.analyte_columns:
        line, unit = header.line, col.unit
        for row in unit_rows:
            if _cell(row.cells, col.index):
                line, unit = row.line, _cell(row.cells, col.index)
        try:
            if unit is None and col.analyte.dimension != NONE:
                example = f"{col.analyte.key} ({col.analyte.unit})"
                raise UnitError(f"No unit for {col.analyte.key}; write it in the header like {example!r}.")
            conversion_power(unit or "", col.analyte)
            units[col.index] = unit or ""
        except UnitError as exc:
            report.errors.append(RowError(line, {col.header: exc.message}))
    return units


def _wide_limits(header: _Header, dl_rows: list[TableRow], report: ParseReport) -> dict[int, str]:
    """Detection limits from a 检出限/DL row, checked once on that row's line."""
    limits: dict[int, str] = {}
    for row in dl_rows:
        for col in header.analyte_columns:
            text = _cell(row.cells, col.index)
            if alias_key(text) in NOT_MEASURED:
                continue
            try:
                parse_detection_limit(text)
                limits[col.index] = text
            except ValueParseError as exc:
                report.errors.append(RowError(row.line, {col.header: str(exc)}))
    return limits


def _wide_rows(rows: Sequence[TableRow], header: _Header, report: ParseReport) -> Iterator[ResultRow]:
    unit_rows = _special_rows(rows, header, UNIT_ROW_NAMES)
    dl_rows = _special_rows(rows, header, DL_ROW_NAMES)
    units = _wide_units(header, unit_rows, report)
    limits = _wide_limits(header, dl_rows, report)
    special = {row.line for row in unit_rows + dl_rows}
    columns = [col for col in header.analyte_columns if col.index in units]
    for row in rows:
        if row.line in special:
            continue
        errors: dict[str, str] = {}
        _extra_cells(row, len(header.names), errors)
        meta = _read_meta(row.cells, header, errors)
        results = []
        for col in columns:
            raw = _cell(row.cells, col.index)
            if alias_key(raw) in NOT_MEASURED:
                continue
            src = _Cells(raw, units[col.index], limits.get(col.index), col.header, col.header, col.header)
            results.append(_result(row.line, meta, col.analyte, src, errors))
        if errors:
            report.errors.append(RowError(row.line, errors))
        else:
            yield from (r for r in results if r is not None)


def _reported(row: ResultRow) -> tuple[str, Decimal | None]:
    """What a row claims: the measured value, or the limit a censored value is below."""
    return row.qualifier, row.value if row.value is not None else row.detection_limit


def _drop_duplicates(results: Iterable[ResultRow], report: ParseReport) -> list[ResultRow]:
    """Keep one of identical repeats; a repeat with a different value is an error on the later line."""
    seen: dict[tuple[str, str, str | None], ResultRow] = {}
    kept = []
    for result in results:
        first = seen.setdefault((result.sample_code_key, result.analyte, result.qc_type), result)
        if first is result:
            kept.append(result)
        elif _reported(first) == _reported(result):
            report.warnings.append(f"Line {result.line} repeats line {first.line}; kept once.")
        else:
            shown = first.value if first.value is not None else f"<{first.detection_limit}"
            was = f"{first.sample_code} {first.analyte} = {shown} {first.unit}".rstrip()
            report.errors.append(
                RowError(result.line, {result.column: f"Conflicts with line {first.line} ({was})."})
            )
    return kept


def _merged(errors: list[RowError]) -> list[RowError]:
    """One RowError per line, in file order."""
    by_line: dict[int, dict[str, str]] = {}
    for error in errors:
        by_line.setdefault(error.line, {}).update(error.errors)
    return [RowError(line, by_line[line]) for line in sorted(by_line)]


def parse_results(table: Table) -> ParseReport:
    """Every row of a lab table as a canonical result or a row error; nothing is dropped silently."""
    report = ParseReport(None, [], [])
    at = _find_header(table.rows)
    if at is None:
        line = table.rows[0].line if table.rows else 1
        message = "No header row with a sample code column (sample_code, 样品编号)."
        report.errors.append(RowError(line, {"sample_code": message}))
        return report
    header = _read_header(table.rows[at])
    report.header_line = header.line
    report.warnings.extend(f"Column {name!r} ignored." for name in header.ignored)
    if {"analyte", "value"} <= header.columns.keys():
        report.layout = "long"
        if "unit" not in header.columns:
            header.errors["unit"] = "Missing column: the long layout needs a unit column (unit, 单位)."
    elif header.analyte_columns:
        report.layout = "wide"
    else:
        header.errors["analyte"] = (
            "Neither analyte and value columns (long layout) nor analyte columns (wide layout)."
        )
    if header.errors:
        report.errors.append(RowError(header.line, dict(header.errors)))
        return report
    body = table.rows[at + 1 :]
    results = (
        _long_rows(body, header, report) if report.layout == "long" else _wide_rows(body, header, report)
    )
    report.rows = _drop_duplicates(results, report)
    report.errors = _merged(report.errors)
    return report
