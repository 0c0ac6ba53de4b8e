"""Sync pull (DESIGN §4.2). Flush, never commit: the request commits.

Pull walks the server change sequence: every change row carries a ``seq`` allocated in its
writing transaction (``fieldsvc.sequence``), so commit order is seq order and a pull that
only returns rows with ``seq <= current()`` never skips a change committed late.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, select, text, type_coerce

from .. import access
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..dbutil import core_execute, upsert
from ..devices.models import DeviceAssignment
from ..extensions import db
from ..grading.plan_models import PlannedPoint
from ..grading.plans import point_data
from ..places.models import FarmPark, Parcel, Region
from ..places.services import farm_park_dict, parcel_feature, parcel_scope, region_dict
from ..samples import services as samples
from ..samples.models import Sample
from ..sequence import current
from .cursor import decode_cursor as _decode_cursor
from .cursor import encode_cursor
from .models import SyncMeta

EPOCH = "epoch"


def epoch() -> str:
    """This database's cursor epoch, made once (a rebuilt database gets a new one)."""
    value = db.session.scalar(select(SyncMeta.value).where(SyncMeta.name == EPOCH))
    if value is None:
        db.session.execute(upsert(SyncMeta.__table__).values(name=EPOCH, value=secrets.token_hex(8))
                           .on_conflict_do_nothing())
        value = db.session.scalar(select(SyncMeta.value).where(SyncMeta.name == EPOCH))
    return value


def decode_cursor(text: str | None, epoch_value: str, latest: int):
    return _decode_cursor(text, epoch_value, latest_seq=latest)


@dataclass
class Scope:
    """What one caller may pull: parcels via ``parcel_scope``, and the regions and parks around them."""

    actor: Actor
    scope_version: int  # the device's assignment version; 0 for an account
    parcel_where: list[Any]
    region_codes: set[str] | None  # None: every region in the county scope
    park_codes: set[str] | None


# What a device's regions and parks depend on: which database (its cursor epoch, random per
# database), the device's assignment (version and rows) and the places themselves; every write to
# those allocates a change seq, so these marks move with any of them.
_SCOPE_MARKS = text(
    "SELECT d.version, (SELECT value FROM sync_meta WHERE name = :epoch),"
    " (SELECT max(seq) FROM device_assignments WHERE device_pk = d.id),"
    " (SELECT max(seq) FROM parcels), (SELECT max(seq) FROM regions) FROM devices d WHERE d.id = :pk")
_DEVICE_PLACES: dict[tuple[Any, ...], tuple[frozenset[str], frozenset[str]]] = {}


def scope_for(actor: Actor) -> Scope:
    """The caller's pull scope. A device's regions and parks are worked out once per state of its
    assignment and of the places (a pull asks on every page; working them out was ~15 % of a page)
    and kept in this process under the marks read from the database, so a cached answer is only
    ever used for the state it was computed from."""
    parcel_where = parcel_scope(actor)
    if actor.device_pk is None:
        return Scope(actor, 0, parcel_where, None, None)
    version, database, *marks = db.session.execute(_SCOPE_MARKS, {"pk": actor.device_pk, "epoch": EPOCH}).one()
    key = (database, actor.device_pk, actor.county_code, version, *marks)
    places = _DEVICE_PLACES.get(key) if database is not None else None
    if places is None:
        places = _device_places(actor, parcel_where)
        if database is not None:
            if len(_DEVICE_PLACES) >= 1024:
                _DEVICE_PLACES.clear()
            _DEVICE_PLACES[key] = places
    regions, parks = places
    return Scope(actor, version, parcel_where, set(regions), set(parks))


def _device_places(actor: Actor, parcel_where: list[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The regions (assigned villages and their parents) and farm parks around a device's parcels."""
    assigned = db.session.execute(select(DeviceAssignment.kind, DeviceAssignment.code).where(
        DeviceAssignment.device_pk == actor.device_pk, DeviceAssignment.active.is_(True))).all()
    villages = {c for k, c in assigned if k == "village"}
    parcels = [c for k, c in assigned if k == "parcel"]
    if parcels:
        villages |= set(db.session.scalars(select(Parcel.village_code).where(Parcel.code.in_(parcels))))
    parks = set(db.session.scalars(select(Parcel.farm_park_code).distinct().where(
        *parcel_where, Parcel.farm_park_code.is_not(None))))
    return frozenset(_with_parents(villages)), frozenset(parks)


def _with_parents(codes: set[str]) -> set[str]:
    found, frontier = set(codes), set(codes)
    while frontier:
        parents = set(db.session.scalars(select(Region.parent_code).where(Region.code.in_(frontier),
                                                                           Region.parent_code.is_not(None))))
        frontier = parents - found
        found |= parents
    return found


def _region_where(scope: Scope) -> list[Any]:
    if scope.region_codes is None:  # an account: its county; a sampler's password only its assignment's
        return access.region_filter(scope.actor, Region.code, Region.county_code)
    return [Region.code.in_(scope.region_codes)] if scope.region_codes else [Region.id < 0]


def _park_where(scope: Scope) -> list[Any]:
    if scope.park_codes is None:
        return access.farm_park_filter(scope.actor, FarmPark.code, FarmPark.county_code)
    return [FarmPark.code.in_(scope.park_codes)] if scope.park_codes else [FarmPark.id < 0]


def _sample_where(scope: Scope) -> list[Any]:
    # ``parcel_code || ''``: an expression, so SQLite walks the seq index (ORDER BY seq LIMIT n stops
    # after a page) and tests each row's parcel, instead of reading every in-scope sample through the
    # parcel index and sorting them all for every page (quadratic over a full pull of a large store).
    return [Sample.parcel_code.concat("").in_(select(Parcel.code).where(*scope.parcel_where))]


def _change(kind: str, key: str, version: int, deleted: bool, data: str, seq: int) -> str:
    """One change as JSON text, around its data's JSON text (the one writer of a change)."""
    return (f'{{"data":{data},"deleted":{"true" if deleted else "false"},"id":{_escape(key)},"seq":{int(seq)},'
            f'"type":"{kind}","version":{int(version)}}}')


def _region_change(r: Any, seq: int | None = None, deleted: bool = False) -> str:
    return _change("region", r.code, r.version, deleted, _dump(region_dict(r)), seq or r.seq)


def _park_change(p: Any, seq: int | None = None, deleted: bool = False) -> str:
    return _change("farm_park", p.code, p.version, deleted, _dump(farm_park_dict(p)), seq or p.seq)


def _parcel_change(p: Any, seq: int | None = None, deleted: bool | None = None) -> str:
    """A parcel's feature (``parcel_feature``, the one definition of its properties) with its stored
    geometry text spliced in, not parsed and encoded again."""
    gone = p.deleted_at is not None if deleted is None else deleted
    feature = _dump(parcel_feature(_NoGeometry(p)))  # type: ignore[arg-type]
    assert feature.startswith(_FEATURE_HEAD)
    data = f'{{"geometry":{p.geometry_json or "null"},{feature[len(_FEATURE_HEAD):]}'
    return _change("parcel", p.code, p.version, gone, data, seq or p.seq)


def _sample_change(s: Sample, now: datetime, seq: int | None = None, deleted: bool | None = None) -> str:
    gone = s.deleted_at is not None if deleted is None else deleted
    return _change("sample", s.id, s.version, gone, samples.sample_json(s, now), seq or s.seq)


def _assignment_change(a: DeviceAssignment) -> str:
    return _change("assignment", f"{a.kind}:{a.code}", a.seq, not a.active,
                   _dump({"kind": a.kind, "code": a.code, "active": a.active}), a.seq)


def _planned_change(p: PlannedPoint, seq: int | None = None, deleted: bool | None = None) -> str:
    """A planned point (``grading.plans``): withdrawn ones come as deletes, closed ones with their sample."""
    gone = p.status == "withdrawn" if deleted is None else deleted
    return _change("planned_point", p.key, p.version, gone, _dump(point_data(p)), seq or p.seq)


def pull(actor: Actor, cursor_text: str | None, limit: int) -> dict[str, Any]:
    """One page of changes after the cursor, in seq order; see the module docstring."""
    return json.loads(pull_text(actor, cursor_text, limit))


_ROW_COLUMNS = {
    0: [Region.code, Region.name, Region.name_en, Region.level, Region.parent_code, Region.county_code,
        Region.version, Region.seq],
    1: [FarmPark.code, FarmPark.name, FarmPark.name_en, FarmPark.county_code, FarmPark.area_m2,
        FarmPark.geometry_json, FarmPark.version, FarmPark.seq],
    2: [Parcel.code, Parcel.village_code, Parcel.county_code, Parcel.farm_park_code, Parcel.land_use, Parcel.crop,
        Parcel.area_m2, Parcel.area_computed, Parcel.geometry_json, Parcel.version, Parcel.updated_at,
        Parcel.deleted_at, Parcel.seq],
}
# Samples: the stored data text plus the server-made columns, read as the driver hands them over
# (times and flags unprocessed; ``_SampleText`` turns each distinct value into JSON text once).
_SAMPLE_COLUMNS = [Sample.id, Sample.data_json, Sample.version, Sample.state, Sample.clock_skew_s, Sample.seq,
                   type_coerce(Sample.flags, String).label("flags"),
                   *(type_coerce(c, String).label(c.key) for c in (Sample.held_until, Sample.received_at,
                                                                     Sample.collected_at, Sample.updated_at,
                                                                     Sample.deleted_at))]
_dump = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_escape = json.encoder.encode_basestring  # == _dump of a str


def pull_text(actor: Actor, cursor_text: str | None, limit: int, max_bytes: int | None = None) -> str:
    """``pull`` as the JSON text sent to the phone.

    A page also ends once its changes reach ``max_bytes`` bytes of UTF-8 (after at least one
    seq, and never inside one seq): 1,000 big parcels made 31 MB pages for phones on a rural network.

    Two passes: the seqs of up to ``limit + 1`` candidates per kind (index-only, cheap) pick
    the page; then only the page's rows are read, as plain Core rows, and written out with
    each parcel's stored (canonical) geometry text spliced in rather than parsed and
    re-encoded.
    """
    latest = current()
    ep = epoch()
    position = decode_cursor(cursor_text, ep, latest)
    after = position.seq
    scope = scope_for(actor)
    # The assignment changed since this cursor was issued: assignment rows then carry what was gained/lost.
    rescoped = after > 0 and position.scope_version != scope.scope_version
    now = utcnow()
    fetch = limit + 1
    sources = {0: (Region, _region_where(scope)), 1: (FarmPark, _park_where(scope)),
               2: (Parcel, scope.parcel_where), 3: (Sample, _sample_where(scope))}
    candidates: list[tuple[int, int]] = []
    sample_rows: list[Any] = []
    for order, (model, where) in sources.items():
        if order == 3:  # samples are most of a store: read their (small) rows in this one pass
            sample_rows = core_execute(select(*_SAMPLE_COLUMNS).where(  # (Core rows: no ORM row handling)
                *where, Sample.seq > after, Sample.seq <= latest).order_by(Sample.seq).limit(fetch)).all()
            candidates += [(row.seq, 3) for row in sample_rows]
            continue
        stmt = (select(model.seq).where(*where, model.seq > after, model.seq <= latest)
                .order_by(model.seq).limit(fetch))
        candidates += [(seq, order) for seq in core_execute(stmt).scalars()]
    if actor.device_pk is not None:
        stmt = (select(DeviceAssignment.seq).where(DeviceAssignment.device_pk == actor.device_pk,
                                                   DeviceAssignment.seq > after, DeviceAssignment.seq <= latest)
                .order_by(DeviceAssignment.seq).limit(fetch))
        candidates += [(seq, 4) for seq in core_execute(stmt).scalars()]
        stmt = (select(PlannedPoint.seq).where(*_planned_where(actor, after, latest))
                .order_by(PlannedPoint.seq).limit(fetch))
        candidates += [(seq, 5) for seq in core_execute(stmt).scalars()]
    candidates.sort()
    page = candidates[:limit]
    if len(candidates) > limit:  # never split one seq across pages
        last = page[-1][0]
        page += [c for c in candidates[limit:] if c[0] == last]
    has_more = len(candidates) > len(page)
    counts: dict[int, int] = {}
    for _seq, order in page:
        counts[order] = counts.get(order, 0) + 1
    rows: dict[int, Any] = {}
    sample_text = _SampleText(now, [row for row in sample_rows[:counts.get(3, 0)] if row.data_json is None])
    for order, n in counts.items():
        if order == 3:
            rows[3] = iter(sample_rows)  # the page's samples are the first of them, in seq order
        elif order == 4:
            rows[4] = iter(db.session.scalars(
                select(DeviceAssignment).where(DeviceAssignment.device_pk == actor.device_pk,
                                               DeviceAssignment.seq > after, DeviceAssignment.seq <= latest)
                .order_by(DeviceAssignment.seq).limit(n)).all())
        elif order == 5:
            rows[5] = iter(db.session.scalars(select(PlannedPoint).where(*_planned_where(actor, after, latest))
                                              .order_by(PlannedPoint.seq).limit(n)).all())
        else:
            model, where = sources[order]
            rows[order] = iter(core_execute(
                select(*_ROW_COLUMNS[order]).where(*where, model.seq > after, model.seq <= latest)
                .order_by(model.seq).limit(n)).all())
    parts: list[str] = []
    size, last_seq = 0, None
    for seq, order in page:
        if max_bytes is not None and size >= max_bytes and seq != last_seq:
            has_more = True  # the cursor moves to the last seq sent
            break
        row = next(rows[order])
        before = len(parts)
        if order == 0:
            parts.append(_region_change(row))
        elif order == 1:
            parts.append(_park_change(row))
        elif order == 2:
            parts.append(_parcel_change(row))
        elif order == 3:
            parts.append(sample_text.change(row))
        elif order == 5:
            parts.append(_planned_change(row))
        else:
            parts.append(_assignment_change(row))
            if rescoped:
                parts += _expand_assignment(row, scope, after, now)
        size += sum(len(p) if p.isascii() else len(p.encode()) for p in parts[before:]) + 1
        last_seq = seq
    if has_more and last_seq is not None:
        next_seq = last_seq
    else:
        next_seq = page[-1][0] if has_more else latest
    cursor = encode_cursor(next_seq, scope.scope_version, ep)
    return f'{{"changes":[{",".join(parts)}],"cursor":"{cursor}","has_more":{"true" if has_more else "false"}}}'


def _planned_where(actor: Actor, after: int, latest: int) -> list[Any]:
    """A device's own planned points (an account's password pull gets none: plans are per device)."""
    return [PlannedPoint.device_pk == actor.device_pk, PlannedPoint.seq > after, PlannedPoint.seq <= latest]


class _SampleText:
    """Sample changes of a page from plain rows, through ``samples.sample_text``.

    Each distinct time or flags value is converted once per page (a batch's rows share their
    received/updated times); rows without ``data_json`` get it built from their columns
    (``samples.data_text``).
    """

    def __init__(self, now: datetime, missing: list[Any]) -> None:
        self.now = now
        dialect = db.session.get_bind().dialect
        self._to_time = Sample.__table__.c.received_at.type.dialect_impl(dialect).result_processor(dialect, None)
        self._times: dict[Any, tuple[datetime | None, str]] = {None: (None, "null")}
        self._flags: dict[Any, str] = {}
        self._data: dict[str, str] = {}
        if missing:
            found = db.session.scalars(select(Sample).where(Sample.id.in_([row.id for row in missing])))
            self._data = {s.id: samples.data_text(s) for s in found}

    def _time(self, raw: Any) -> tuple[datetime | None, str]:
        got = self._times.get(raw)
        if got is None:
            moment = self._to_time(raw) if self._to_time is not None else raw
            got = self._times[raw] = (moment, samples.time_text(moment))
        return got

    def _flag_text(self, raw: Any) -> str:
        got = self._flags.get(raw) if isinstance(raw, str | None) else None
        if got is None:
            value = json.loads(raw) if isinstance(raw, str) else raw
            got = _dump(list(value or []))
            if isinstance(raw, str | None):
                self._flags[raw] = got
        return got

    def change(self, row: Any) -> str:
        held_until, held_text = self._time(row.held_until)
        state = row.state
        if state == "held" and held_until is not None and held_until <= self.now:
            state = "needs_review"  # samples.effective_state
        data = row.data_json if row.data_json is not None else self._data[row.id]
        gone = row.deleted_at is not None
        text = samples.sample_text(row.id, data, row.version, state, self._flag_text(row.flags), row.clock_skew_s,
                                   self._time(row.received_at)[1], self._time(row.collected_at)[1], held_text,
                                   self._time(row.updated_at)[1], gone)
        return _change("sample", row.id, row.version, gone, text, row.seq)


class _NoGeometry:
    """A parcel row whose geometry reads as ``0``, so ``parcel_feature`` stays the one definition of a
    parcel's properties while its stored geometry text is spliced in unparsed."""

    __slots__ = ("_row",)
    geometry_json = "0"

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


_FEATURE_HEAD = '{"geometry":0,'


def _device_points(scope: Scope, codes: list[str], upto: int | None) -> list[PlannedPoint]:
    """The device's open planned points on ``codes`` (sent again when a parcel comes back, deleted when it goes)."""
    if scope.actor.device_pk is None or not codes:
        return []
    stmt = select(PlannedPoint).where(PlannedPoint.device_pk == scope.actor.device_pk, PlannedPoint.status == "open",
                                      PlannedPoint.parcel_code.in_(codes))
    return list(db.session.scalars(stmt if upto is None else stmt.where(PlannedPoint.seq <= upto)))


def _expand_assignment(a: DeviceAssignment, scope: Scope, after: int, now: datetime) -> list[str]:
    """What an assignment change means for the device, sent at the assignment's seq.

    Gained: the places and samples it did not have yet (rows at or before the cursor; newer
    rows come in the normal stream). Lost: deletes for whatever is no longer in scope.
    """
    where_parcels = [Parcel.village_code == a.code] if a.kind == "village" else [Parcel.code == a.code]
    out: list[str] = []
    if a.active:
        parcels = list(db.session.scalars(select(Parcel).where(*where_parcels, *scope.parcel_where)))
        codes = [p.code for p in parcels]
        village_codes = {p.village_code for p in parcels} | ({a.code} if a.kind == "village" else set())
        regions = db.session.scalars(select(Region).where(Region.code.in_(_with_parents(village_codes)),
                                                          Region.seq <= after))
        out += [_region_change(r, a.seq) for r in regions]
        parks = {p.farm_park_code for p in parcels if p.farm_park_code}
        out += [_park_change(p, a.seq) for p in db.session.scalars(
            select(FarmPark).where(FarmPark.code.in_(parks), FarmPark.seq <= after))]
        out += [_parcel_change(p, a.seq) for p in parcels if p.seq <= after]
        out += [_sample_change(s, now, a.seq) for s in db.session.scalars(
            select(Sample).where(Sample.parcel_code.in_(codes), Sample.seq <= after))] if codes else []
        out += [_planned_change(p, a.seq) for p in _device_points(scope, codes, after)]
        return out
    in_scope = select(Parcel.code).where(*scope.parcel_where)
    lost = list(db.session.scalars(select(Parcel).where(*where_parcels, Parcel.code.not_in(in_scope))))
    codes = [p.code for p in lost]
    out += [_parcel_change(p, a.seq, deleted=True) for p in lost]
    if codes:
        out += [_sample_change(s, now, a.seq, deleted=True) for s in db.session.scalars(
            select(Sample).where(Sample.parcel_code.in_(codes)))]
    out += [_planned_change(p, a.seq, deleted=True) for p in _device_points(scope, codes, None)]
    gone_parks = {p.farm_park_code for p in lost if p.farm_park_code} - (scope.park_codes or set())
    out += [_park_change(p, a.seq, deleted=True) for p in db.session.scalars(
        select(FarmPark).where(FarmPark.code.in_(gone_parks)))]
    villages = {p.village_code for p in lost} | ({a.code} if a.kind == "village" else set())
    gone_regions = _with_parents(villages) - (scope.region_codes or set())
    out += [_region_change(r, a.seq, deleted=True) for r in db.session.scalars(
        select(Region).where(Region.code.in_(gone_regions)))]
    return out
