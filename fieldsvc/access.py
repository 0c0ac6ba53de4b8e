"""Who may see what: the one place the county boundary and a sampler's assignment are written.

Every read, list filter and console query asks this module, in one of two forms that always
agree: a predicate on one loaded value (``may_see_county``) and a SQL filter over a column
(``county_filter``, ``parcel_filter``, ...) for lists. The rules:

- **admin** sees everything.
- **official** and **lab** accounts with a county see that county only; one *without* a county
  is province-wide and sees every county (the same on every path).
- **sampler**, whether through a device token or through its own password (OpenRosa, the
  token endpoint), reaches only what it is assigned: a device its active assignment (villages
  and parcels); the account the union of its live devices' assignments, so a password cannot
  reach more than the account's phones do. A sampler account without a live device reaches
  no parcel. Its own pushes (samples it created) stay visible to it.

Another county's entity is *absent* for the caller: a read answers 404, never 403, so its
existence does not leak.

This is a core module (beside ``auth``): it imports no domain. The few tables it must look
through (a device's assignment, a parcel for a sample, a sample for a result, a lab import for
a held result) are named with ``sqlalchemy.table`` over their stored column names, which is the
schema, not the domain code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ColumnElement, and_, column, false, func, or_, select, table, true

from .errors import not_found
from .extensions import db

if TYPE_CHECKING:
    from .auth.principal import Actor

_assignments = table("device_assignments", column("device_pk"), column("kind"), column("code"),
                     column("active", Boolean))
_devices = table("devices", column("id"), column("user_id"), column("revoked_at"))
_parcels = table("parcels", column("code"), column("village_code"), column("county_code"),
                 column("farm_park_code"))
_samples = table("samples", column("id"), column("code"), column("parcel_code"), column("county_code"),
                 column("device_pk"), column("created_by"))
_imports = table("lab_imports", column("id"), column("county_code"))
_results = table("lab_results", column("id"), column("import_id"), column("sample_id"))
_sample_media = table("sample_media", column("sample_id"), column("sha256"))


# --- the county boundary ------------------------------------------------------------------------

def province_wide(actor: Actor) -> bool:
    """Admins, and officials or labs (or samplers) whose account names no county."""
    return actor.role == "admin" or actor.county_code is None


def covers(scope_county: str | None, county_code: str | None) -> bool:
    """Whether an account (or import) scoped to ``scope_county`` (None: province-wide) reaches ``county_code``."""
    return scope_county is None or scope_county == county_code


def may_see_county(actor: Actor, county_code: str | None) -> bool:
    """The predicate form of ``county_filter``: a row with no county is seen only province-wide."""
    return actor.role == "admin" or covers(actor.county_code, county_code)


def county_filter(actor: Actor, county: Any) -> ColumnElement[bool]:
    """The query form of ``may_see_county`` over a county column."""
    return true() if province_wide(actor) else and_(county == actor.county_code)


# --- county records: seen by county, never through a sampler's assignment -----------------------------

def may_see_record(actor: Actor, county_code: str | None) -> bool:
    """Certificates, grading runs, conflicts, lab imports: a county's records, which no sampler reads."""
    return not assignment_bound(actor) and may_see_county(actor, county_code)


def record_filter(actor: Actor, county: Any) -> ColumnElement[bool]:
    """The query form of ``may_see_record``."""
    return false() if assignment_bound(actor) else county_filter(actor, county)


def require_record(actor: Actor, county_code: str | None, entity: str, key: Any) -> None:
    """Another county's record is absent (404) for this actor."""
    if not may_see_record(actor, county_code):
        raise not_found(entity, key)


def may_see_area(actor: Actor, kind: str, code: str, county_code: str | None) -> bool:
    """An area's grade and report (village, farm park, county): by county; a sampler only its
    assigned villages'."""
    if not may_see_county(actor, county_code):
        return False
    if not assignment_bound(actor):
        return True
    return kind == "village" and db.session.scalar(
        select(func.count()).select_from(assigned_codes(actor, "village").where(
            _assignments.c.code == code).subquery())) > 0


# --- a sampler's assignment -------------------------------------------------------------------------

def assignment_bound(actor: Actor) -> bool:
    """Samplers (device or password) see parcels through an assignment, never the whole county."""
    return actor.role == "sampler"


def assigned_codes(actor: Actor, kind: str) -> Any:
    """A subquery of the village or parcel codes assigned to this device, or to this account's live devices."""
    stmt = select(_assignments.c.code).where(_assignments.c.kind == kind, _assignments.c.active.is_(True))
    if actor.device_pk is not None:
        return stmt.where(_assignments.c.device_pk == actor.device_pk)
    live = select(_devices.c.id).where(_devices.c.user_id == actor.user_id, _devices.c.revoked_at.is_(None))
    return stmt.where(_assignments.c.device_pk.in_(live))


def own_devices(actor: Actor) -> Any:
    """A subquery of the device ids whose pushes count as this sampler's own."""
    if actor.device_pk is not None:
        return select(_devices.c.id).where(_devices.c.id == actor.device_pk)
    return select(_devices.c.id).where(_devices.c.user_id == actor.user_id)


# --- entities -----------------------------------------------------------------------------------------

def parcel_filter(actor: Actor, code: Any, village: Any, county: Any) -> list[ColumnElement[bool]]:
    """Parcels: the county, and for a sampler only the assigned villages and parcels."""
    where = [county_filter(actor, county)]
    if assignment_bound(actor):
        where.append(or_(village.in_(assigned_codes(actor, "village")), code.in_(assigned_codes(actor, "parcel"))))
    return where


def visible_parcel_codes(actor: Actor) -> Any:
    """A subquery of the codes of the parcels this actor may see (deleted ones included)."""
    p = _parcels.c
    return select(p.code).where(*parcel_filter(actor, p.code, p.village_code, p.county_code))


def region_filter(actor: Actor, code: Any, county: Any) -> list[ColumnElement[bool]]:
    """Regions: the county; a sampler only the county, township and village above its parcels."""
    where = [county_filter(actor, county)]
    if assignment_bound(actor):
        mine = code.in_(select(_parcels.c.village_code).where(_parcels.c.code.in_(visible_parcel_codes(actor))))
        where.append(or_(mine, code.in_(assigned_codes(actor, "village")),
                         code.in_(_prefixes(actor, 9)), code.in_(_prefixes(actor, 6))))
    return where


def _prefixes(actor: Actor, length: int) -> Any:
    """The first ``length`` characters of the codes of the sampler's villages (townships, counties)."""
    villages = select(_parcels.c.village_code.label("v")).where(_parcels.c.code.in_(visible_parcel_codes(actor)))
    assigned = assigned_codes(actor, "village")
    both = villages.union(assigned).subquery()
    return select(func.substr(both.c[0], 1, length))


def farm_park_filter(actor: Actor, code: Any, county: Any) -> list[ColumnElement[bool]]:
    """Farm parks: the county; a sampler only the parks its visible parcels belong to."""
    where = [county_filter(actor, county)]
    if assignment_bound(actor):
        parks = select(_parcels.c.farm_park_code).where(_parcels.c.farm_park_code.is_not(None),
                                                        _parcels.c.code.in_(visible_parcel_codes(actor)))
        where.append(code.in_(parks))
    return where


def sample_filter(actor: Actor, county: Any, parcel: Any, device: Any, created_by: Any) -> list[ColumnElement[bool]]:
    """Samples: the county; a sampler those on its visible parcels and its own pushes."""
    if assignment_bound(actor):
        mine = device == actor.device_pk if actor.device_pk is not None else or_(
            device.in_(own_devices(actor)), created_by == actor.label)
        return [or_(parcel.in_(visible_parcel_codes(actor)), mine)]
    return [county_filter(actor, county)]


def visible_sample_ids(actor: Actor) -> Any:
    s = _samples.c
    return select(s.id).where(*sample_filter(actor, s.county_code, s.parcel_code, s.device_pk, s.created_by))


def lab_import_filter(actor: Actor, county: Any, import_id: Any) -> list[ColumnElement[bool]]:
    """Lab imports belong to the importer's county; a province-wide importer's file is also read by
    the counties whose samples it has results for (their officials review it)."""
    if assignment_bound(actor) or province_wide(actor):
        return [record_filter(actor, county)]
    r, s = _results.c, _samples.c
    touches = select(r.id).where(r.import_id == import_id, r.sample_id.in_(
        select(s.id).where(county_filter(actor, s.county_code)))).exists()
    return [or_(county_filter(actor, county), and_(county.is_(None), touches))]


def result_filter(actor: Actor, sample_id: Any, import_id: Any) -> list[ColumnElement[bool]]:
    """Lab results (county records): of a sample in the caller's county; a held one (no sample yet)
    when its import is the caller's county's. Correlated on the keys, so a large import's re-test
    lookup probes the primary keys instead of reading the whole county."""
    if assignment_bound(actor):
        return [false()]
    if province_wide(actor):
        return [true()]
    s, i = _samples.c, _imports.c
    of_sample = select(s.id).where(s.id == sample_id, county_filter(actor, s.county_code)).exists()
    of_import = select(i.id).where(i.id == import_id, county_filter(actor, i.county_code)).exists()
    return [or_(of_sample, and_(sample_id.is_(None), of_import))]


def media_filter(actor: Actor, sha256: Any, created_by: Any) -> list[ColumnElement[bool]]:
    """A media blob: named by a sample this actor may see, or uploaded by this actor."""
    named = select(_sample_media.c.sha256).where(_sample_media.c.sample_id.in_(visible_sample_ids(actor)))
    return [or_(sha256.in_(named), created_by == actor.label)]


def device_filter(actor: Actor, county: Any, user_id: Any, device_pk: Any) -> list[ColumnElement[bool]]:
    """Devices: the county; a sampler only its own (a device only itself)."""
    if assignment_bound(actor):
        return [device_pk.in_(own_devices(actor)), user_id == actor.user_id]
    return [county_filter(actor, county)]


def planned_point_filter(actor: Actor, county: Any, device_pk: Any) -> list[ColumnElement[bool]]:
    """Planned points (sampling plans): the county's; a sampler only its own devices' (a device only its own)."""
    if assignment_bound(actor):
        return [device_pk.in_(own_devices(actor))]
    return [county_filter(actor, county)]
