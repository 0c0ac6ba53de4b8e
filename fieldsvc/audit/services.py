"""Write audit events and entity versions; flush, never commit (the request does)."""

from __future__ import annotations

import functools
import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any, Callable, Iterable, Sequence

import orjson
from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError

from ..dbtypes import UTCDateTime, sqlite_datetime_text, utcnow
from ..dbutil import upsert
from ..extensions import db
from .models import AuditEvent, EntityVersion

request_id_var: ContextVar[str | None] = ContextVar("fieldsvc_request_id", default=None)


def canonical_json(value: Any) -> str:
    """The one serialisation that audit digests, stored versions and a sample's stored data text
    share: JSON with sorted keys, no whitespace and non-ASCII text as it is.

    Written by orjson (a sync push serialises every record it stores; the standard library's
    encoder took ~7x as long). Values JSON has no type for are written as their ``str``
    (times as ``2026-11-20 08:30:00+00:00``, Decimals as strings), numeric subclasses (numpy) as
    numbers. What orjson refuses outright (integers beyond 64 bits, nesting deeper than 254) goes
    to the standard library's encoder, which writes the same form; the two differ only in how
    they spell a small float's exponent (``1e-7`` here, ``1e-07`` there) and in NaN (``null``
    here), neither of which a validated record holds.
    """
    try:
        return orjson.dumps(value, default=_plain, option=_CANONICAL).decode()
    except orjson.JSONEncodeError:
        return _stdlib(value)


_CANONICAL = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
              | orjson.OPT_PASSTHROUGH_DATACLASS)


def _plain(value: Any) -> Any:
    """orjson's fallback: numeric subclasses (numpy scalars) as numbers, anything else as its str."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


_stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def digest(value: Any) -> str | None:
    """sha256 of the canonical JSON form; None stays None (nothing before a create)."""
    return None if value is None else _sha(canonical_json(value))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One write to one entity, as the audit log and the version history see it."""

    entity_type: str
    entity_key: str
    action: str
    before: Any = None
    after: Any = None
    version: int | None = None
    deleted: bool = False
    after_json: str | None = None  # ``canonical_json(after)`` when the caller already has it (bulk imports)

    def after_text(self) -> str | None:
        if self.after_json is not None:
            return self.after_json
        return None if self.after is None else canonical_json(self.after)


def record(actor: str, change: Change, details: dict[str, Any] | None = None) -> None:
    record_many(actor, [change], details)


def record_many(actor: str, changes: Iterable[Change], details: dict[str, Any] | None = None) -> int:
    """Append one audit event per change, and a version row where the change carries one.

    Written with the driver's ``executemany`` (``insert_rows``): a sync push or an import
    records thousands of changes per request, and SQLAlchemy's per-row parameter handling
    would cost more than the rows themselves.
    """
    now = utcnow()
    request_id = request_id_var.get()
    events, versions = [], []
    for c in changes:
        after = c.after_text()
        events.append((c.action, c.entity_type, c.entity_key, digest(c.before),
                       None if after is None else _sha(after)))
        if c.version is not None:
            versions.append((c.entity_type, c.entity_key, c.version, c.deleted,
                             after if after is not None else canonical_json(c.before)))
    if events:
        insert_rows(AuditEvent.__table__, ("at", "actor", "request_id", "details"), (now, actor, request_id, details),
                    ("action", "entity_type", "entity_key", "before_digest", "after_digest"), events)
    if versions:
        insert_rows(EntityVersion.__table__, ("actor", "created_at"), (actor, now),
                    ("entity_type", "entity_key", "version", "deleted", "data_json"), versions)
    return len(events)


def insert_rows(table: Table, fixed: Sequence[str], fixed_values: Sequence[Any], columns: Sequence[str],
                rows: Sequence[Sequence[Any]], memo: Sequence[str] = (), skip_conflicts: bool = False,
                prebound: Sequence[str] = ()) -> int:
    """``INSERT`` many rows with the driver's ``executemany``, in the session's transaction.

    ``fixed`` columns take one value for every row (bound once); ``rows`` hold the values of
    ``columns``. Every value goes through its column type's bind processor, so rows are stored
    exactly as a Core insert would store them; for the ``memo`` columns (few distinct values:
    timestamps of the request, flag lists, empty manifests) each distinct value is processed
    once. Database errors surface as SQLAlchemy's ``IntegrityError``/``DataError``/
    ``OperationalError``, like any statement. ``skip_conflicts``: a row that would break a unique
    constraint is left out (``ON CONFLICT DO NOTHING``, on both engines). ``prebound`` columns already
    hold what their bind processor returns (the caller applied it, e.g. in a worker process) and
    are passed as they are. Returns the driver's count of rows inserted, or -1 where it has none.
    """
    if not rows:
        return 0
    db.session.flush()  # like Session.execute: pending ORM writes go first
    connection = db.session.connection()
    dialect = connection.dialect
    head = [p(v) if p else v for p, v in zip([_processor(table, n, dialect) for n in fixed], fixed_values,
                                              strict=True)]
    # column by column: each processor is mapped over its column (a C loop), not called cell by cell
    values: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, name in enumerate(columns):
        p = None if name in prebound else _processor(table, name, dialect)
        if p is not None:
            values[i] = _memo_map(p, values[i]) if name in memo else list(map(p, values[i]))
    bound = list(zip(*map(repeat, head), *values, strict=False))  # (the fixed values repeat; columns end it)
    if dialect.name == "postgresql" and not skip_conflicts:
        return _copy_rows(connection, table, (*fixed, *columns), bound)
    sql = _insert_sql(table, (*fixed, *columns), dialect)
    return connection.exec_driver_sql(sql + " ON CONFLICT DO NOTHING" if skip_conflicts else sql, bound).rowcount


def _copy_rows(connection: Any, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """The rows by ``COPY … FROM STDIN`` on PostgreSQL: psycopg's ``executemany`` sends one
    statement per row (a county run of 60,000 parcels spent 14 s of its 43 in it). Errors come
    back as SQLAlchemy's exceptions, as from any statement. (``COPY`` has no ``ON CONFLICT``:
    rows that may clash go through ``executemany``.)"""
    quote = connection.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    raw = connection.connection.driver_connection
    try:
        with raw.cursor() as cursor:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return cursor.rowcount
    except Exception as exc:
        if isinstance(exc, connection.dialect.loaded_dbapi.Error):
            raise DBAPIError.instance(sql, None, exc, connection.dialect.loaded_dbapi.Error) from exc
        raise


def _memo_map(p: Callable[[Any], Any], column: Sequence[Any]) -> list[Any]:
    """``p`` over a column with few distinct values, each distinct value processed once.

    Rows are matched to values by object first (C-level ``map``/``zip``; the column keeps every
    object alive, so ids are not reused), then equal objects share one ``p`` call by ``_memo_key``.
    """
    ids = list(map(id, column))
    objects = dict(zip(ids, column, strict=True))  # one entry per distinct object
    if len(objects) == 1:  # one object in every row (the request's timestamp): one call
        return [p(column[0])] * len(column)
    cache: dict[Any, Any] = {}
    bound: dict[int, Any] = {}
    for i, value in objects.items():
        key = _memo_key(value)
        got = cache.get(key, _MISSING)
        if got is _MISSING:
            got = cache[key] = p(value)
        bound[i] = got
    return list(map(bound.__getitem__, ids))


_MISSING = object()


def _memo_key(value: Any) -> Any:
    """A hashable key that tells apart every value a column could be bound from (lists of strings,
    such as flags, by their items; other lists and dicts by their repr, so 1 and 1.0 differ)."""
    kind = type(value)
    if kind is list:
        for item in value:
            if type(item) is not str:
                return repr(value)
        return (list, *value)
    return repr(value) if kind is dict else value


@functools.lru_cache(maxsize=1024)
def _processor(table: Table, name: str, dialect: Any) -> Callable[[Any], Any] | None:
    """A column's bind processor for a dialect, made once (making it was ~15 µs a column, paid by
    every bulk insert: 0.5 ms of each sync push whatever its size)."""
    kind = table.c[name].type
    if dialect.name == "sqlite" and isinstance(kind, UTCDateTime):
        return sqlite_datetime_text
    return kind.dialect_impl(dialect).bind_processor(dialect)


@functools.lru_cache(maxsize=1024)
def _insert_sql(table: Table, columns: tuple[str, ...], dialect: Any) -> str:
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})")


def events_for(entity_type: str, entity_key: str) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_key == entity_key)
        .order_by(AuditEvent.id)
    )
    return list(db.session.scalars(stmt))


def versions_for(entity_type: str, entity_key: str,
                 first_on_row: Callable[[], EntityVersion] | None = None) -> list[EntityVersion]:
    """Every stored version of an entity, oldest first. ``first_on_row``: for an entity still at
    version 1 whose first version lives on its row (see :func:`keep_first_version`), makes that
    version (an EntityVersion never added to the session) when none is stored."""
    stmt = (
        select(EntityVersion)
        .where(EntityVersion.entity_type == entity_type, EntityVersion.entity_key == entity_key)
        .order_by(EntityVersion.version)
    )
    stored = list(db.session.scalars(stmt))
    if not stored and first_on_row is not None:
        stored.append(first_on_row())
    return stored


def keep_first_version(entity_type: str, entity_key: str, data_json: str, actor: str, created_at: datetime) -> None:
    """Store version 1 of an entity before its row changes (a no-op when it is stored already).

    Entities made in bulk keep their first version on their own row until something supersedes
    it: a sync push stores hundreds of samples per request and a GeoJSON import up to 100,000
    parcels, and a version row each would write every body a second time. Every later version
    is stored when it is made, so only an unedited entity's one version is on its row alone; its
    writer calls this before the first edit or delete, and its reader passes ``first_on_row`` to
    :func:`versions_for`.
    """
    db.session.execute(upsert(EntityVersion.__table__).values(
        entity_type=entity_type, entity_key=entity_key, version=1, deleted=False, data_json=data_json,
        actor=actor, created_at=created_at).on_conflict_do_nothing())


def creator_of(entity_type: str, entity_key: str) -> str | None:
    """The actor of an entity's ``create`` audit event (for a first version kept on its row)."""
    return db.session.scalar(select(AuditEvent.actor).where(
        AuditEvent.entity_type == entity_type, AuditEvent.entity_key == entity_key, AuditEvent.action == "create")
        .order_by(AuditEvent.id).limit(1))
