"""The console's lists: filter, sort and keyset-page any of them the way the API pages (no Flask).

A ``ListSpec`` names a list's base query, its access scope (from ``fieldsvc.access`` through the
domains' scope helpers), the filters it takes (each a value → SQL condition), the columns it may be
sorted on (never NULL, so a keyset holds) and how a row shows. ``list_page`` checks the request's
values (a 422 naming the field), applies scope and filters, and returns one ``ListPage``: the rows,
the cursor of the next page and the values it used, which the page puts back into its URLs.

The keyset is (sort column, id): the cursor carries the last row's pair and the sort it was made
for, so a cursor from another sort is refused rather than silently skipping rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

from ..auth.principal import Actor
from ..errors import validation_failed
from ..extensions import db
from ..paging import decode_cursor, encode_cursor

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_SIZE = 50


@dataclass(frozen=True)
class Filter:
    """A filter of a list: ``choices`` for a select box (validated), else free text up to 64 chars."""

    name: str
    where: Callable[[str], ColumnElement[bool]]
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    """A shown column: how its value shows (``kind``) and, with ``link``, the endpoint and URL
    parameter its value opens (``("console.parcel", "code")``)."""

    key: str
    label: str
    kind: str = "text"
    link: tuple[str, str] | None = None


@dataclass(frozen=True)
class ListSpec:
    kind: str
    title: str
    base: Callable[[], Select]
    id_col: Any
    scope: Callable[[Actor], list[ColumnElement[bool]]]
    row: Callable[[Any], dict[str, Any]]
    columns: tuple[Column, ...]
    sorts: Mapping[str, Any]
    default_sort: str
    filters: tuple[Filter, ...] = ()
    export: str | None = None  # the export resource of this list (its filters of the same names pass on)
    export_filters: Mapping[str, str] = field(default_factory=dict)  # list filter → export filter name


@dataclass(frozen=True)
class ListPage:
    items: list[dict[str, Any]]
    next_cursor: str | None
    sort: str
    size: int
    values: dict[str, str]  # the filters in force (for the form and every link)

    def export_args(self, spec: ListSpec) -> dict[str, str]:
        """The current filters under the export's names (those the export takes)."""
        return {spec.export_filters[k]: v for k, v in self.values.items() if k in spec.export_filters}


def like(column: Any, text: str) -> ColumnElement[bool]:
    """A case-insensitive substring match with ``%``/``_`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def _values(spec: ListSpec, args: Mapping[str, str]) -> dict[str, str]:
    values, wrong = {}, {}
    for f in spec.filters:
        raw = (args.get(f.name) or "").strip()
        if not raw:
            continue
        if f.choices and raw not in f.choices:
            wrong[f.name] = [f"one of {', '.join(f.choices)}"]
        elif len(raw) > 64:
            wrong[f.name] = ["at most 64 characters"]
        else:
            values[f.name] = raw
    if wrong:
        raise validation_failed(wrong)
    return values


def _sort(spec: ListSpec, args: Mapping[str, str]) -> tuple[str, Any, bool]:
    sort = args.get("sort") or spec.default_sort
    name = sort.lstrip("-")
    if name not in spec.sorts:
        options = ", ".join(f"{n}, -{n}" for n in spec.sorts)
        raise validation_failed({"sort": [f"one of {options}"]})
    return sort, spec.sorts[name], sort.startswith("-")


def _size(args: Mapping[str, str]) -> int:
    raw = args.get("size") or str(DEFAULT_SIZE)
    if not raw.isdigit() or int(raw) not in PAGE_SIZES:
        raise validation_failed({"size": [f"one of {', '.join(map(str, PAGE_SIZES))}"]})
    return int(raw)


def _plain(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _typed(value: Any) -> Any:
    return datetime.fromisoformat(value["t"]) if isinstance(value, dict) and "t" in value else value


def list_page(spec: ListSpec, args: Mapping[str, str], actor: Actor) -> ListPage:
    """One page of ``spec`` for this account, filtered and sorted as ``args`` asks."""
    values = _values(spec, args)
    sort, column, desc = _sort(spec, args)
    size = _size(args)
    by_name = {f.name: f for f in spec.filters}
    stmt = spec.base().where(*spec.scope(actor), *(by_name[k].where(v) for k, v in values.items()))
    after = decode_cursor(args.get("cursor"))
    if after is not None:
        if after.get("s") != sort or "k" not in after or "v" not in after:
            raise validation_failed({"cursor": ["is not a cursor of this list and sort"]})
        value, key = _typed(after["v"]), after["k"]
        if desc:
            stmt = stmt.where(or_(column < value, and_(column == value, spec.id_col < key)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, spec.id_col > key)))
    order = (column.desc(), spec.id_col.desc()) if desc else (column, spec.id_col)
    rows = list(db.session.execute(stmt.order_by(*order).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor({"s": sort, "v": _plain(getattr(last, column.key)), "k": getattr(last, spec.id_col.key)})
    return ListPage([spec.row(r) for r in rows], cursor, sort, size, values)
