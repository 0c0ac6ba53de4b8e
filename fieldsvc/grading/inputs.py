"""What a parcel is graded from: the approved results of its complete, live samples without
open hard conflicts, read with driver-level statements (a county run reads millions of rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..extensions import db
from ..lab.models import LabResult
from .grade import Measurement, SampleInput

CHUNK = 2000  # parcels per step of a run (and per IN (...) list)

BLOCKING_CONFLICTS = ("hard", "id_conflict")  # open conflicts of these kinds keep a sample out


@dataclass
class ParcelInputs:
    samples: list[SampleInput] = field(default_factory=list)
    result_ids: list[int] = field(default_factory=list)
    tested_on: date | None = None
    excluded: list[dict[str, str]] = field(default_factory=list)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _qmark() -> bool:
    """Whether the session's driver takes ``?`` marks (SQLite) rather than ``%s`` (psycopg)."""
    return db.session.connection().dialect.paramstyle == "qmark"


def _in_list(n: int) -> str:
    """Membership in ``n`` values in the session driver's form (``_Reader.in_list_for``)."""
    return _Reader.in_list_for(_qmark(), n)


def _listed(values: Sequence[Any]) -> list[Any]:
    """The parameters of ``_in_list``'s test for these values (``_Reader.listed_for``)."""
    return _Reader.listed_for(_qmark(), values)


def _driver_sql(sql: str) -> str:
    return _Reader.translate(_qmark(), sql)


def _fetch(sql: str, params: Sequence[Any]) -> list[Any]:
    """Plain tuples of a driver-level SELECT (``?`` marks; no type processing: booleans may be 0/1).

    The DB-API cursor of the session's connection (same transaction), without SQLAlchemy's Row
    wrapping: a county run reads millions of rows.
    """
    return _Reader(db.session.connection().connection, _qmark(), _same).fetch(sql, params)


def _same(value: Any) -> Any:
    return value


class _Reader:
    """Driver-level SELECTs on one DB-API connection: ``?`` marks in, plain tuples out.

    The session's connection (``_session_reader``), or a worker process's own SQLite connection
    (``parallel.read_ahead``); the pure read-and-evaluate half of a run takes one of these.
    """

    __slots__ = ("raw", "qmark", "to_datetime")

    def __init__(self, raw: Any, qmark: bool, to_datetime: Callable[[Any], Any]) -> None:
        self.raw, self.qmark, self.to_datetime = raw, qmark, to_datetime

    @staticmethod
    def in_list_for(qmark: bool, n: int) -> str:
        """Membership in a list of ``n`` values: ``IN (?,…)`` on SQLite; ``= ANY(%s)`` with one array
        parameter on psycopg, which parses a statement for its placeholders on every execution once
        it is longer than its cache takes (4 KB): a chunk's 2,000 marks made that ~30 ms a query."""
        return f"IN ({','.join(['?'] * n)})" if qmark else "= ANY(%s)"

    @staticmethod
    def listed_for(qmark: bool, values: Sequence[Any]) -> list[Any]:
        """The parameters of ``in_list_for``'s test: the values themselves, or one list of them."""
        return list(values) if qmark else [list(values)]

    @staticmethod
    def translate(qmark: bool, sql: str) -> str:
        """A statement written with ``?`` marks, in the driver's style."""
        return sql if qmark else sql.replace("?", "%s")

    def in_list(self, n: int) -> str:
        return self.in_list_for(self.qmark, n)

    def listed(self, values: Sequence[Any]) -> list[Any]:
        return self.listed_for(self.qmark, values)

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self.raw.cursor()
        try:
            cursor.execute(self.translate(self.qmark, sql), tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()


def _session_reader() -> _Reader:
    return _Reader(db.session.connection().connection, _qmark(), _result_processor(LabResult.__table__.c.created_at))


def _result_processor(column: Any) -> Callable[[Any], Any]:
    dialect = db.session.connection().dialect
    proc = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return proc or _same


_MEASUREMENTS: dict[tuple, Measurement] = {}  # one immutable object per distinct stored result
_MEASUREMENTS_MAX = 200_000

_SAMPLES_SQL = "SELECT id, code, parcel_code, state, deleted_at FROM samples WHERE parcel_code {}"
_BLOCKED_SQL = ("SELECT record_id FROM sync_conflicts WHERE record_id {} AND status = 'open' AND kind IN ('"
                + "','".join(BLOCKING_CONFLICTS) + "')")
_RESULTS_SQL = ("SELECT sample_id, id, created_at, analyte, qualifier, value, detection_limit, unit FROM lab_results "
                "WHERE sample_id {} AND status = 'approved' AND qc_type IS NULL "
                "ORDER BY sample_id, analyte, version, id")  # a sample's rows together, latest version last
_KEY = slice(3, 8)  # (analyte, qualifier, value, detection_limit, unit) of a results row: the measurement


def _measurement(analyte: str, qualifier: str, value: str | None, dl: str | None, unit: str) -> Measurement:
    key = (analyte, qualifier, value, dl, unit)
    m = _MEASUREMENTS.get(key)
    if m is None:
        if len(_MEASUREMENTS) >= _MEASUREMENTS_MAX:
            _MEASUREMENTS.clear()
        m = _MEASUREMENTS[key] = Measurement(analyte, qualifier, None if value is None else Decimal(value),
                                             None if dl is None else Decimal(dl), unit)
    return m


def load_inputs(parcel_codes: Sequence[str]) -> dict[str, ParcelInputs]:
    """Approved results of each parcel's complete, live samples without open hard conflicts.

    Driver-level queries per chunk (no ORM objects, no SQL compilation): a county run reads
    millions of rows. The chunk's samples by parcel first, then their blocking conflicts and
    approved results by sample id, and only when the chunk has samples: in a county of 20,000
    samples and 1,000,000 parcels a chunk of 2,000 parcels holds ~40 samples, and probing the
    parcel-code index once per parcel for each of the three queries was a fifth of a run's
    read-ahead work.
    """
    db.session.flush()  # pending ORM writes (a result just approved) must be seen
    return _load_inputs(_session_reader(), parcel_codes)


def _load_inputs(reader: _Reader, parcel_codes: Sequence[str]) -> dict[str, ParcelInputs]:
    codes = list(parcel_codes)
    samples: list[Any] = []
    blocked: set[str] = set()
    per_sample: dict[str, list] = {}  # id → [analyte → measurement, analyte → result id, latest created_at]
    known = _MEASUREMENTS
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        found = reader.fetch(_SAMPLES_SQL.format(reader.in_list(len(chunk))), reader.listed(chunk))
        if not found:
            continue
        samples.extend(found)
        ids = [r[0] for r in found]
        among, listed = reader.in_list(len(ids)), reader.listed(ids)
        blocked.update(r[0] for r in reader.fetch(_BLOCKED_SQL.format(among), listed))
        last = entry = measurements = result_ids = None
        for r in reader.fetch(_RESULTS_SQL.format(among), listed):
            if r[0] != last:
                last = r[0]
                measurements, result_ids = {}, {}
                entry = per_sample[last] = [measurements, result_ids, r[2]]
            elif r[2] > entry[2]:  # stored timestamps order as text (SQLite) or as values
                entry[2] = r[2]
            key = r[_KEY]  # rows come by version: the highest approved version of an analyte wins
            measurements[r[3]] = known.get(key) or _measurement(*key)
            result_ids[r[3]] = r[1]
    out: dict[str, ParcelInputs] = {}
    to_datetime = reader.to_datetime
    days: dict[Any, date] = {}  # stored timestamp → its day (a lab's batch shares one)
    for sid, code, parcel_code, state, deleted_at in sorted(samples):
        inputs = out.get(parcel_code)
        if inputs is None:
            inputs = out[parcel_code] = ParcelInputs()
        if deleted_at is not None:
            continue
        if sid in blocked:
            inputs.excluded.append({"sample_id": sid, "sample_code": code, "reason": "unresolved_conflict"})
            continue
        if state != "complete":
            inputs.excluded.append({"sample_id": sid, "sample_code": code, "reason": f"incomplete:{state}"})
            continue
        entry = per_sample.get(sid)
        if entry is None:
            continue
        measurements, result_ids, stamp = entry
        inputs.samples.append(SampleInput(sid, code, measurements))
        inputs.result_ids.extend(result_ids.values())
        day = days.get(stamp)
        if day is None:
            day = days[stamp] = to_datetime(stamp).date()
        inputs.tested_on = day if inputs.tested_on is None or day > inputs.tested_on else inputs.tested_on
    return out
