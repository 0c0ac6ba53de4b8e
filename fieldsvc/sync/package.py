"""The offline package: one SQLite file with a device's places, samples, code lists and the cursor they match."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlalchemy import select

from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..devices.models import DeviceAssignment
from ..extensions import db
from ..grading.plan_models import PlannedPoint
from ..grading.plans import point_data
from ..places.models import LAND_USES, FarmPark, Parcel, Region
from ..samples import services as samples
from ..samples.models import Sample
from ..samples.validation import FLAG_ORDER, SAMPLE_TYPES
from ..sequence import current
from . import pull
from .cursor import encode_cursor

PACKAGE_FORMAT = 1
FLAG_TEXT = {"null_island": "GPS fix at 0,0", "low_accuracy": "GPS accuracy worse than the threshold",
             "mock_location": "the phone reported a mock location",
             "location_mismatch": "point outside the parcel (beyond accuracy + buffer)",
             "clock_skew": "device clock implausible"}


def build_package(actor: Actor) -> bytes:
    """The package file for ``actor``, as bytes (built in a temporary folder, then removed)."""
    with tempfile.TemporaryDirectory(prefix="fieldsvc-package-") as tmp:
        path = Path(tmp) / "package.sqlite3"
        _write(sqlite_utils.Database(path), actor)
        return path.read_bytes()


def _write(out: sqlite_utils.Database, actor: Actor) -> None:
    latest = current()
    epoch = pull.epoch()
    scope = pull.scope_for(actor)
    now = utcnow()
    regions = db.session.scalars(select(Region).where(*pull._region_where(scope), Region.seq <= latest))
    out["regions"].insert_all(({"code": r.code, "name": r.name, "name_en": r.name_en, "level": r.level,
                                "parent": r.parent_code, "county": r.county_code, "version": r.version}
                               for r in regions), pk="code", columns=_REGION_COLUMNS)
    parks = db.session.scalars(select(FarmPark).where(*pull._park_where(scope), FarmPark.seq <= latest))
    out["farm_parks"].insert_all(({"code": p.code, "name": p.name, "name_en": p.name_en, "county": p.county_code,
                                   "area_m2": p.area_m2, "geometry": p.geometry_json, "version": p.version}
                                  for p in parks), pk="code", columns=_PARK_COLUMNS)
    parcels = db.session.scalars(select(Parcel).where(*scope.parcel_where, Parcel.seq <= latest,
                                                      Parcel.deleted_at.is_(None)))
    out["parcels"].insert_all(({"code": p.code, "village": p.village_code, "county": p.county_code,
                                "farm_park": p.farm_park_code, "land_use": p.land_use, "crop": p.crop,
                                "area_m2": p.area_m2, "geometry": p.geometry_json, "min_lon": p.min_lon,
                                "min_lat": p.min_lat, "max_lon": p.max_lon, "max_lat": p.max_lat,
                                "version": p.version} for p in parcels), pk="code", columns=_PARCEL_COLUMNS)
    assignments: list[dict[str, Any]] = []
    if actor.device_pk is not None:
        assignments = [{"id": f"{a.kind}:{a.code}", "kind": a.kind, "code": a.code} for a in db.session.scalars(
            select(DeviceAssignment).where(DeviceAssignment.device_pk == actor.device_pk,
                                           DeviceAssignment.active.is_(True), DeviceAssignment.seq <= latest))]
    out["assignments"].insert_all(assignments, pk="id", columns={"id": str, "kind": str, "code": str})
    rows = db.session.scalars(select(Sample).where(*pull._sample_where(scope), Sample.seq <= latest,
                                                   Sample.deleted_at.is_(None)))
    out["samples"].insert_all(({"id": s.id, "code": s.code, "parcel": s.parcel_code, "version": s.version,
                                "state": samples.effective_state(s, now),
                                "data": samples.sample_json(s, now)}
                               for s in rows), pk="id", columns=_SAMPLE_COLUMNS)
    planned: list[dict[str, Any]] = []
    if actor.device_pk is not None:  # its open planned points (grading.plans), as the pull's planned_point data
        planned = [{"id": p.key, "parcel": p.parcel_code, "plan": int(p.key.split(":", 1)[0]), "rank": p.rank,
                    "version": p.version, "data": pull._dump(point_data(p))} for p in db.session.scalars(
            select(PlannedPoint).where(PlannedPoint.device_pk == actor.device_pk, PlannedPoint.status == "open",
                                       PlannedPoint.seq <= latest).order_by(PlannedPoint.id))]
    out["planned_points"].insert_all(planned, pk="id", columns=_PLANNED_COLUMNS)
    out["land_uses"].insert_all([{"code": c} for c in LAND_USES], pk="code")
    out["sample_types"].insert_all([{"code": c} for c in SAMPLE_TYPES], pk="code")
    out["flags"].insert_all([{"code": c, "meaning": FLAG_TEXT.get(c, c)} for c in FLAG_ORDER], pk="code")
    meta = {"format": str(PACKAGE_FORMAT), "cursor": encode_cursor(latest, scope.scope_version, epoch),
            "server_time": isoformat(now), "device_id": actor.device_id or "", "user": actor.username}
    out["meta"].insert_all([{"key": k, "value": v} for k, v in meta.items()], pk="key")
    out.conn.commit()
    out.close()


_REGION_COLUMNS = {"code": str, "name": str, "name_en": str, "level": str, "parent": str, "county": str,
                   "version": int}
_PARK_COLUMNS = {"code": str, "name": str, "name_en": str, "county": str, "area_m2": float, "geometry": str,
                 "version": int}
_PARCEL_COLUMNS = {"code": str, "village": str, "county": str, "farm_park": str, "land_use": str, "crop": str,
                   "area_m2": float, "geometry": str, "min_lon": float, "min_lat": float, "max_lon": float,
                   "max_lat": float, "version": int}
_SAMPLE_COLUMNS = {"id": str, "code": str, "parcel": str, "version": int, "state": str, "data": str}
_PLANNED_COLUMNS = {"id": str, "parcel": str, "plan": int, "rank": int, "version": int, "data": str}
