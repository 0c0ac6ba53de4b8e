"""Rule packs: a standard's thresholds as versioned data, validated and precompiled on load.

A pack is one JSON file in ``packs/``. Numbers are read as Decimals so that a value sitting
exactly on a limit compares exactly. Bands are written as small interval expressions
(``"<6.5"``, ``">=6.5,<=7.5"``, ``">7.5"``, ``"*"`` for everything), so which side of an
edge a value falls on is stated in the data, and a pack whose bands leave a gap or overlap
is refused before it can grade anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from fieldsvc.errors import Problem, not_found

PACKS_DIR = Path(__file__).with_name("packs")
DEFAULT_PACK = "green_food_soil"
KINDS = ("green_food_soil", "gb15618", "fertility", "micronutrients", "se_rich")
CONFIDENCES = ("A", "B", "C", "UNCONFIRMED")
LAND_USES = ("dryland", "paddy", "vegetable", "orchard", "tea", "grassland", "paddy_dryland_rotation")
DEFAULT_ROLLUP = {"A": Decimal("0.95"), "B": Decimal("0.80")}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class RulePackError(Problem):
    """A pack that cannot be trusted to grade; ``details.problems`` lists every fault found."""

    def __init__(self, where: str, problems: list[str]) -> None:
        message = f"Rule pack {where} is invalid: " + "; ".join(problems)
        super().__init__(500, "invalid_rule_pack", message, pack=where, problems=problems)
        self.problems = problems


# --- bands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """An interval of the number line; ``None`` bounds are infinite."""

    lo: Decimal | None
    lo_incl: bool
    hi: Decimal | None
    hi_incl: bool
    expr: str

    def contains(self, x: Decimal) -> bool:
        above = self.lo is None or x > self.lo or (self.lo_incl and x == self.lo)
        return above and (self.hi is None or x < self.hi or (self.hi_incl and x == self.hi))

    def label(self, var: str = "pH") -> str:
        lo_op, hi_op = (">=" if self.lo_incl else ">"), ("<=" if self.hi_incl else "<")
        if self.lo is None and self.hi is None:
            return f"any {var}"
        if self.lo is None:
            return f"{var}{hi_op}{self.hi}"
        if self.hi is None:
            return f"{var}{lo_op}{self.lo}"
        return f"{self.lo}{'<=' if self.lo_incl else '<'}{var}{hi_op}{self.hi}"


def to_decimal(x: Any) -> Decimal:
    """Exact Decimal from pack data (JSON numbers, strings, ints); floats via their repr."""
    if isinstance(x, bool) or not isinstance(x, (Decimal, int, float, str)):
        raise ValueError(f"{x!r} is not a number")
    try:
        d = Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    except InvalidOperation:
        raise ValueError(f"{x!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{x!r} is not a finite number")
    return d


def parse_band(expr: str) -> Band:
    """``"<6.5"``, ``">=6.5,<=7.5"``, ``">7.5"`` or ``"*"`` → Band; ValueError says what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError(f"band {expr!r} is not an expression")
    if expr.strip() == "*":
        return Band(None, False, None, False, expr)
    lo = hi = None
    lo_incl = hi_incl = False
    for part in (p.strip() for p in expr.split(",")):
        op = part[:2] if part[:2] in ("<=", ">=") else part[:1]
        if op not in ("<", "<=", ">", ">="):
            raise ValueError(f"band {expr!r}: each part needs <, <=, > or >= before a number")
        num = to_decimal(part[len(op):].strip())
        if op[0] == ">":
            if lo is not None:
                raise ValueError(f"band {expr!r} has two lower bounds")
            lo, lo_incl = num, op == ">="
        else:
            if hi is not None:
                raise ValueError(f"band {expr!r} has two upper bounds")
            hi, hi_incl = num, op == "<="
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"band {expr!r} is empty")
    return Band(lo, lo_incl, hi, hi_incl, expr)


def _lo_key(b: Band) -> tuple:
    return (0, Decimal(0), 0) if b.lo is None else (1, b.lo, 0 if b.lo_incl else 1)


def coverage_problems(bands: Iterable[Band], var: str = "pH") -> list[str]:
    """Gaps and overlaps, named by the bands on either side; empty when the whole line is covered once."""
    bands = sorted(bands, key=_lo_key)
    if not bands:
        return ["has no bands"]
    problems = []
    if bands[0].lo is not None:
        problems.append(f"nothing covers {var} below {bands[0].lo} (first band {bands[0].expr!r})")
    for a, b in zip(bands, bands[1:], strict=False):
        if a.hi is None or b.lo is None or a.hi > b.lo:
            problems.append(f"{a.expr!r} and {b.expr!r} overlap")
        elif a.hi < b.lo:
            problems.append(f"gap between {a.expr!r} and {b.expr!r}: {var} {a.hi}..{b.lo} is not covered")
        elif a.hi_incl and b.lo_incl:
            problems.append(f"{a.expr!r} and {b.expr!r} overlap at {var} {a.hi} (both include it)")
        elif not a.hi_incl and not b.lo_incl:
            problems.append(f"gap at {var} {a.hi}: neither {a.expr!r} nor {b.expr!r} includes it")
    if bands[-1].hi is not None:
        problems.append(f"nothing covers {var} above {bands[-1].hi} (last band {bands[-1].expr!r})")
    return problems


def lookup(table: list[tuple[Band, Any]], x: Decimal) -> Any:
    """The value of the band containing ``x`` (tables are validated to cover the line once)."""
    for band, value in table:
        if band.contains(x):
            return value
    raise LookupError(x)  # unreachable for a validated table


def lookup_below(table: list[tuple[Band, Any]], x: Decimal) -> Any:
    """The value of the band holding numbers just below ``x`` (for censored ``<x`` values)."""
    for band, value in table:
        if (band.lo is None or band.lo < x) and (band.hi is None or band.hi >= x):
            return value
    raise LookupError(x)


# --- pH segment tables (the precompiled form the engine reads) -----------------------------


@dataclass(frozen=True)
class PhTable:
    """For one land use: pH cut into segments, each with a ready row of (limit, label) per analyte.

    ``ends[i]`` is the upper edge of segment ``i`` and whether it is included; the last segment is
    open above. A row holds, per analyte, a flat tuple of (limit, label) pairs, one pair per
    threshold table (one for green food; screening then intervention for GB 15618).
    """

    land_use: str
    analytes: tuple[str, ...]
    unit: str
    ends: tuple[tuple[Decimal, bool], ...]
    rows: tuple[tuple[tuple, ...], ...]

    def segment(self, ph: Decimal) -> int:
        """The index of the segment (and row) holding ``ph``."""
        for i, (edge, incl) in enumerate(self.ends):
            if ph < edge or (incl and ph == edge):
                return i
        return len(self.ends)

    def row_for(self, ph: Decimal) -> tuple[tuple, ...]:
        return self.rows[self.segment(ph)]


def _elementary_points(points: set[Decimal]) -> list[tuple[Decimal, tuple[Decimal, bool] | None]]:
    """Representative pH and upper edge of each elementary segment (open gaps and single points)."""
    xs = sorted(points)
    out: list[tuple[Decimal, tuple[Decimal, bool] | None]] = []
    for i, x in enumerate(xs):
        out.append(((xs[i - 1] + x) / 2 if i else x - 1, (x, False)))
        out.append((x, (x, True)))
    out.append(((xs[-1] + 1) if xs else Decimal(0), None))
    return out


def _build_ph_table(land_use: str, analytes: tuple[str, ...], unit: str, cells) -> PhTable:
    """Evaluate ``cells(ph) -> row`` on every elementary segment and merge equal neighbours."""
    points: set[Decimal] = set()
    for band in cells.bands:
        points.update(x for x in (band.lo, band.hi) if x is not None)
    merged: list[list] = []  # [row, upper end]
    for rep, end in _elementary_points(points):
        row = cells(rep)
        if merged and merged[-1][0] == row:
            merged[-1][1] = end
        else:
            merged.append([row, end])
    ends = tuple(end for _, end in merged[:-1])
    return PhTable(land_use, analytes, unit, ends, tuple(row for row, _ in merged))


class _LimitCells:
    """Per analyte and threshold table, the stricter (lowest) limit over the land use's columns."""

    def __init__(self, pack_data: Mapping, land_use: str, tables: tuple[str, ...]) -> None:
        entry = pack_data["land_uses"][land_use]
        fallbacks = pack_data.get("fallback_columns", [])
        factors = {k: to_decimal(v) for k, v in entry.get("factors", {}).items()}
        self.plan: list[list[list[tuple[str, Decimal, list[tuple[Band, Decimal]]]]]] = []
        self.bands: list[Band] = []
        for analyte in pack_data["analytes"]:
            per_table = []
            for name in tables:
                by_col = pack_data[name].get(analyte)
                options = []
                for col in entry["columns"] if by_col else ():
                    resolved = _resolve(by_col, col, fallbacks)
                    table = _band_table(by_col[resolved])
                    self.bands.extend(b for b, _ in table)
                    options.append((resolved, factors.get(analyte, Decimal(1)), table))
                per_table.append(options)
            self.plan.append(per_table)

    def __call__(self, ph: Decimal) -> tuple:
        row = []
        for per_table in self.plan:
            cell: list = []
            for options in per_table:
                best = None
                for col, factor, table in options:
                    band = next(b for b, _ in table if b.contains(ph))
                    limit = lookup(table, ph) * factor
                    if best is None or limit < best[0]:
                        label = f"{col} {band.label()}" + (f" x{factor}" if factor != 1 else "")
                        if len({c for c, _, _ in options}) > 1:
                            label += f" (stricter of {', '.join(c for c, _, _ in options)})"
                        best = (limit, label)
                cell.extend(best or (None, None))
            row.append(tuple(cell))
        return tuple(row)


def _resolve(by_col: Mapping, col: str, fallbacks: list[str]) -> str | None:
    """A column name as the data has it: the column itself, else the first fallback (``other``, ``all``)."""
    if col in by_col:
        return col
    return next((f for f in fallbacks if f in by_col), None)


def _band_table(bandmap: Mapping[str, Any], numeric: bool = True) -> list[tuple[Band, Any]]:
    return [(parse_band(k), to_decimal(v) if numeric else v) for k, v in bandmap.items()]


# --- validation --------------------------------------------------------------------------


def validate_pack(data: Mapping[str, Any]) -> list[str]:
    """Every problem with a pack, each naming where it is (empty list = usable)."""
    if not isinstance(data, Mapping):
        return ["pack is not a JSON object"]
    problems: list[str] = []
    _check_meta(data, problems)
    kind = data.get("kind")
    if kind in _KIND_CHECKS:
        _KIND_CHECKS[kind](data, problems)
    from fieldsvc.grading.estimation import validate_params

    problems.extend(validate_params(data.get("estimation")))
    _check_disputed(data, problems)
    return problems


def _check_disputed(data: Mapping, problems: list[str]) -> None:
    """``disputed_cells``: cells whose sources disagree; each must name a cell the pack has, with
    its stored value, the other values seen and a note (shown when the cell decides a verdict)."""
    cells = data.get("disputed_cells")
    if cells is None:
        return
    if not isinstance(cells, list):
        problems.append("disputed_cells: a list of cells")
        return
    for i, cell in enumerate(cells):
        where = f"disputed_cells[{i}]"
        if not isinstance(cell, Mapping):
            problems.append(f"{where}: an object")
            continue
        try:
            stored = data[cell["table"]][cell["analyte"]][cell["column"]][cell["band"]]
        except (KeyError, TypeError):
            problems.append(f"{where}: table/analyte/column/band name no cell of this pack")
            continue
        try:
            if to_decimal(cell.get("value")) != to_decimal(stored):
                problems.append(f"{where}: value {cell.get('value')} is not the pack's {stored}")
            alts = [to_decimal(a) for a in cell.get("alternatives") or []]
            if not alts:
                problems.append(f"{where}: alternatives: the other values the sources give")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
        if not isinstance(cell.get("note"), str) or not cell["note"].strip():
            problems.append(f"{where}: note: say which sources disagree and why this value is kept")


def _check_meta(data: Mapping, problems: list[str]) -> None:
    for key in ("code", "version", "name", "name_zh", "standard", "edition"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(f"{key}: missing or not a string")
    if isinstance(data.get("code"), str) and not _CODE.match(data["code"]):
        problems.append("code: use lower_snake_case")
    src = data.get("source")
    if not isinstance(src, list) or not src or not all(isinstance(s, str) and s.startswith("http")
                                                       for s in src):
        problems.append("source: a non-empty list of URLs is required")
    if data.get("confidence") not in CONFIDENCES:
        problems.append(f"confidence: must be one of {', '.join(CONFIDENCES)}")
    if not isinstance(data.get("verified"), bool):
        problems.append("verified: must be true or false")
    elif data["verified"] and data.get("confidence") != "A":
        problems.append("verified: only values checked against the official text (confidence A) "
                        "may be verified")
    if data.get("kind") not in KINDS:
        problems.append(f"kind: must be one of {', '.join(KINDS)}")


def _check_bandmap(path: str, bandmap: Any, problems: list[str], var: str = "pH", values: str = "positive",
                   classes: list[str] | None = None) -> list[tuple[Band, Any]] | None:
    """Parse one band → value mapping, check coverage and values; None when unusable."""
    if not isinstance(bandmap, Mapping) or not bandmap:
        problems.append(f"{path}: expected a mapping of bands to values")
        return None
    table, ok = [], True
    for expr, value in bandmap.items():
        try:
            band = parse_band(expr)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            ok = False
            continue
        if values == "class":
            if value not in (classes or []):
                problems.append(f"{path}[{expr!r}]: unknown class {value!r}")
                ok = False
        else:
            try:
                value = to_decimal(value)
                if value <= 0:
                    raise ValueError(f"limit {value} must be positive")
            except ValueError as exc:
                problems.append(f"{path}[{expr!r}]: {exc}")
                ok = False
        table.append((band, value))
    if not ok:
        return None
    gaps = coverage_problems([b for b, _ in table], var)
    problems.extend(f"{path}: {p}" for p in gaps)
    if values == "class" and not gaps and classes:
        _check_class_order(path, table, classes, problems)
    return None if gaps else table


def _check_class_order(path: str, table: list[tuple[Band, Any]], classes: list[str],
                       problems: list[str]) -> None:
    """Classes must follow the number line in one direction (better always higher, or always lower)."""
    ranks = [classes.index(c) for _, c in sorted(table, key=lambda bc: _lo_key(bc[0]))]
    steps = [b - a for a, b in zip(ranks, ranks[1:], strict=False)]
    if not (all(s >= 0 for s in steps) or all(s <= 0 for s in steps)):
        problems.append(f"{path}: classes are out of order along the scale ({', '.join(map(str, ranks))})")


def _check_classes(data: Mapping, problems: list[str]) -> list[str]:
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes or len(set(classes)) != len(classes):
        problems.append("classes: a list of distinct class names, best first, is required")
        return []
    return classes


def _check_land_uses(data: Mapping, problems: list[str], required: bool = True) -> dict[str, list[str]]:
    """land use → columns; also returns column → land uses needing it, for the missing-column check."""
    lus = data.get("land_uses")
    if lus is None and not required:
        return {"all": ["*"]}
    if not isinstance(lus, Mapping):
        problems.append("land_uses: missing")
        return {}
    needed: dict[str, list[str]] = {}
    for lu in LAND_USES:
        if lu not in lus:
            problems.append(f"land_uses: no entry for {lu!r}")
    for lu, entry in lus.items():
        cols = entry.get("columns") if isinstance(entry, Mapping) else None
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            problems.append(f"land_uses.{lu}: 'columns' must be a non-empty list of column names")
            continue
        for col in cols:
            needed.setdefault(col, []).append(lu)
        for analyte, factor in (entry.get("factors") or {}).items():
            try:
                if to_decimal(factor) <= 0:
                    problems.append(f"land_uses.{lu}.factors.{analyte}: must be positive")
            except ValueError as exc:
                problems.append(f"land_uses.{lu}.factors.{analyte}: {exc}")
    return needed


def _check_analytes(data: Mapping, problems: list[str]) -> list[str]:
    analytes = data.get("analytes")
    if not isinstance(analytes, list) or not analytes or not all(isinstance(a, str) for a in analytes):
        problems.append("analytes: a non-empty list of analyte keys is required")
        return []
    return analytes


def _check_limit_tables(data: Mapping, name: str, analytes: list[str], needed: dict[str, list[str]],
                        problems: list[str], optional: bool = False) -> dict[str, dict[str, list]]:
    tables = data.get(name)
    if not isinstance(tables, Mapping):
        problems.append(f"{name}: missing")
        return {}
    fallbacks = data.get("fallback_columns", [])
    out: dict[str, dict[str, list]] = {}
    for analyte in analytes:
        by_col = tables.get(analyte)
        if by_col is None and optional:
            continue
        if not isinstance(by_col, Mapping):
            problems.append(f"{name}.{analyte}: missing")
            continue
        out[analyte] = {}
        for col, bandmap in by_col.items():
            table = _check_bandmap(f"{name}.{analyte}.{col}", bandmap, problems)
            if table is not None:
                out[analyte][col] = table
        for col, lus in needed.items():
            if _resolve(by_col, col, fallbacks) is None:
                problems.append(f"{name}.{analyte}: missing column {col!r} "
                                f"(needed by land use {', '.join(lus)})")
    for extra in set(tables) - set(analytes):
        problems.append(f"{name}.{extra}: not in analytes")
    return out


def _check_rollup(data: Mapping, problems: list[str]) -> None:
    roll = data.get("rollup")
    if roll is None:
        return
    try:
        a, b = to_decimal(roll["A"]), to_decimal(roll["B"])
    except (KeyError, TypeError, ValueError):
        problems.append("rollup: needs numeric shares 'A' and 'B'")
        return
    if not (0 <= b <= a <= 1):
        problems.append(f"rollup: need 0 <= B ({b}) <= A ({a}) <= 1")


def _check_green_food(data: Mapping, problems: list[str]) -> None:
    analytes = _check_analytes(data, problems)
    needed = _check_land_uses(data, problems)
    _check_limit_tables(data, "limits", analytes, needed, problems)
    classes = _check_classes(data, problems)
    nem = _check_bandmap("nemerow_classes", data.get("nemerow_classes"), problems, var="P", values="class",
                         classes=classes)
    if nem is not None and any(b.hi is not None and b.hi < 0 for b, _ in nem):
        problems.append("nemerow_classes: edges must not be negative")
    if data.get("failed_class") not in classes:
        problems.append("failed_class: must name one of the classes")
    if "nemerow_round_to" not in data:
        problems.append("nemerow_round_to: state the rounding applied to P before its class (decimals, "
                        "or null for none; the class edges' comparison is in nemerow_classes)")
    else:
        r = data["nemerow_round_to"]
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, Decimal))
                              or int(r) != r or not 0 <= int(r) <= 6):
            problems.append("nemerow_round_to: an integer 0-6 or null")
    _check_rollup(data, problems)


def _check_gb15618(data: Mapping, problems: list[str]) -> None:
    analytes = _check_analytes(data, problems)
    needed = _check_land_uses(data, problems)
    screening = _check_limit_tables(data, "screening", analytes, needed, problems)
    intervention = _check_limit_tables(data, "intervention", analytes, needed, problems, optional=True)
    _check_classes(data, problems)
    if len(data.get("classes") or []) != 3:
        problems.append("classes: GB 15618 has exactly three classes (screening, intervention)")
    _check_rollup(data, problems)
    for analyte, by_col in intervention.items():
        for icol, itable in by_col.items():
            for scol, stable in screening.get(analyte, {}).items():
                edges = {x for b, _ in stable + itable for x in (b.lo, b.hi) if x is not None}
                reps = [rep for rep, _ in _elementary_points(edges)]
                low = [rep for rep in reps if lookup(itable, rep) < lookup(stable, rep)]
                if low:
                    problems.append(f"intervention.{analyte}.{icol}: below screening.{analyte}.{scol} "
                                    f"at pH {low[0]}")


def _check_indicators(data: Mapping, problems: list[str], needs_land_uses: bool) -> None:
    classes = _check_classes(data, problems)
    needed = _check_land_uses(data, problems, required=needs_land_uses)
    fallbacks = data.get("fallback_columns", [])
    inds = data.get("indicators")
    if not isinstance(inds, Mapping) or not inds:
        problems.append("indicators: missing")
        return
    for analyte, spec in inds.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("unit"), str):
            problems.append(f"indicators.{analyte}: needs 'unit' and 'columns'")
            continue
        by_col = spec.get("columns")
        if not isinstance(by_col, Mapping):
            problems.append(f"indicators.{analyte}.columns: missing")
            continue
        for col, bandmap in by_col.items():
            if bandmap is not None:  # null = not graded for that column
                _check_bandmap(f"indicators.{analyte}.columns.{col}", bandmap, problems, var=analyte,
                               values="class", classes=classes)
        for col, lus in needed.items():
            if _resolve(by_col, col, fallbacks) is None:
                problems.append(f"indicators.{analyte}: missing column {col!r} "
                                f"(needed by land use {', '.join(lus)})")


def _check_se(data: Mapping, problems: list[str]) -> None:
    _check_classes(data, problems)
    table = _check_bandmap("se_min", data.get("se_min"), problems)
    try:
        se_max = to_decimal(data.get("se_max"))
        if table and any(se_max <= v for _, v in table):
            problems.append("se_max: must be above every se_min")
    except ValueError as exc:
        problems.append(f"se_max: {exc}")
    req = data.get("requires")
    if not isinstance(req, Mapping) or set(req) != {"screening", "green_food"}:
        problems.append("requires: needs 'screening' and 'green_food' pack codes")
    _check_land_uses(data, problems, required=False)


_KIND_CHECKS = {
    "green_food_soil": _check_green_food,
    "gb15618": _check_gb15618,
    "fertility": lambda d, p: _check_indicators(d, p, True),
    "micronutrients": lambda d, p: _check_indicators(d, p, False),
    "se_rich": _check_se,
}


# --- the pack object ---------------------------------------------------------------------


@dataclass(frozen=True)
class RulePack:
    """One validated pack: its metadata, raw data, and the lookup tables the engine reads."""

    code: str
    version: str
    name: str
    name_zh: str
    standard: str
    edition: str
    source: tuple[str, ...]
    confidence: str
    verified: bool
    kind: str
    data: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], where: str | None = None) -> RulePack:
        """Validate and build; raises RulePackError naming every problem."""
        problems = validate_pack(data)
        if problems:
            raise RulePackError(where or str(data.get("code", "?")), problems)
        return cls(
            code=data["code"], version=data["version"], name=data["name"], name_zh=data["name_zh"],
            standard=data["standard"], edition=data["edition"], source=tuple(data["source"]),
            confidence=data["confidence"], verified=data["verified"], kind=data["kind"], data=data,
        )

    @property
    def ref(self) -> dict[str, Any]:
        return {"code": self.code, "version": self.version, "verified": self.verified}

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.data.get("classes", ()))

    @property
    def land_uses(self) -> tuple[str, ...]:
        return tuple(self.data.get("land_uses", {}) or LAND_USES)

    @property
    def estimation(self):
        """The pack's spatial-estimation parameters (``estimation`` block; defaults when absent)."""
        from fieldsvc.grading.estimation import EstimationParams

        params = self._tables.get("__estimation__")
        if params is None:
            params = self._tables["__estimation__"] = EstimationParams.from_data(self.data.get("estimation"))
        return params

    @property
    def nemerow_round_to(self) -> int | None:
        r = self.data.get("nemerow_round_to")
        return None if r is None else int(r)

    def disputed_cell(self, analyte: str, label: str | None) -> Mapping[str, Any] | None:
        """The disputed cell behind a limit label (``"paddy pH<6.5"``), if any."""
        if not label:
            return None
        for cell in self.data.get("disputed_cells") or ():
            if cell["analyte"] == analyte and label.startswith(f"{cell['column']} {parse_band(cell['band']).label()}"):
                return cell
        return None

    @property
    def rollup_thresholds(self) -> dict[str, Decimal]:
        roll = self.data.get("rollup")
        return {k: to_decimal(roll[k]) for k in ("A", "B")} if roll else dict(DEFAULT_ROLLUP)

    def to_summary(self) -> dict[str, Any]:
        """The item shown by ``GET /api/v1/rule-packs``."""
        return {
            "code": self.code, "version": self.version, "name": self.name, "name_zh": self.name_zh,
            "kind": self.kind, "standard": self.standard, "edition": self.edition,
            "source": list(self.source),
            "confidence": self.confidence, "verified": self.verified, "default": self.code == DEFAULT_PACK,
            "land_uses": list(self.land_uses),
        }

    def check_land_use(self, land_use: str) -> None:
        if land_use not in self.land_uses:
            raise Problem(422, "unknown_land_use",
                          f"Rule pack {self.code} has no rule for land use {land_use!r}.",
                          land_use=land_use, allowed=list(self.land_uses))

    def check_kind(self, *kinds: str) -> None:
        if self.kind not in kinds:
            raise Problem(422, "rule_pack_kind_mismatch",
                          f"Rule pack {self.code} is a {self.kind} pack, not {' or '.join(kinds)}.",
                          pack=self.code, kind=self.kind)

    def ph_table(self, land_use: str) -> PhTable:
        """Precompiled pH segments for a land use (built once per pack and land use)."""
        table = self._tables.get(land_use)
        if table is None:
            self.check_kind("green_food_soil", "gb15618")
            self.check_land_use(land_use)
            names = ("limits",) if self.kind == "green_food_soil" else ("screening", "intervention")
            cells = _LimitCells(self.data, land_use, names)
            unit = self.data.get("unit", "mg/kg")
            table = _build_ph_table(land_use, tuple(self.data["analytes"]), unit, cells)
            self._tables[land_use] = table
        return table


# --- loading -----------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate keys {dupes}")
    return dict(pairs)


def read_pack_file(path: Path) -> RulePack:
    """Parse one pack file (numbers as Decimals, duplicate keys refused) and validate it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal,
                          object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise RulePackError(path.name, [f"not valid JSON: {exc}"]) from None
    return RulePack.from_data(data, where=path.name)


def _version_key(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


_ADDED_DIRS: list[Path] = []  # where ``rule-packs add`` stores packs (the instance's rule_packs/)


def use_added_packs(directory: Path) -> None:
    """Also load the packs an admin added (``flask --app app rule-packs add``) from ``directory``
    (the app's instance folder: one per process, so a new app replaces the previous folder)."""
    _ADDED_DIRS[:] = [directory]


def _added_files() -> tuple[Path, ...]:
    return tuple(sorted(p for d in _ADDED_DIRS if d.is_dir() for p in d.glob("*.json")))


def _registry() -> dict[str, dict[str, RulePack]]:
    """Built-in packs plus added ones; rebuilt when a pack file is added (seen by every process)."""
    return _registry_of(_added_files())


@cache
def _registry_of(added: tuple[Path, ...]) -> dict[str, dict[str, RulePack]]:
    packs: dict[str, dict[str, RulePack]] = {}
    for path in [*sorted(PACKS_DIR.glob("*.json")), *added]:
        pack = read_pack_file(path)
        if pack.version in packs.setdefault(pack.code, {}):
            raise RulePackError(path.name, [f"{pack.code} {pack.version} is defined twice"])
        packs[pack.code][pack.version] = pack
    return packs


def add_pack(source: Path, directory: Path) -> RulePack:
    """Validate a pack file and store it as a new pack or a new version of one.

    Refused (nothing written) when it is invalid, or when its code and version are already
    stored: a stored version is never replaced, a revision needs a new ``version``.
    """
    pack = read_pack_file(source)
    have = _registry().get(pack.code, {})
    if pack.version in have:
        raise Problem(409, "rule_pack_version_exists",
                      f"Rule pack {pack.code} {pack.version} is already stored; give the revision a new version.",
                      pack=pack.code, version=pack.version)
    if have and pack.kind != next(iter(have.values())).kind:
        raise RulePackError(source.name, [f"kind: {pack.code} is a {next(iter(have.values())).kind} pack"])
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{pack.code}-{pack.version}.json"
    with open(target, "xb") as out:  # exclusive: never overwrite
        out.write(source.read_bytes())
    use_added_packs(directory)
    return pack


def load_pack(code: str, version: str | None = None) -> RulePack:
    """A pack by code and version (newest version when none is given); 404 Problem when unknown."""
    versions = _registry().get(code)
    if not versions:
        raise not_found("rule pack", code)
    if version is None:
        return versions[max(versions, key=_version_key)]
    if version not in versions:
        raise not_found("rule pack", f"{code} {version}")
    return versions[version]


def list_packs() -> list[RulePack]:
    """Every pack version, by code then version."""
    return [p for code in sorted(_registry()) for _, p in sorted(_registry()[code].items(),
                                                                  key=lambda kv: _version_key(kv[0]))]
