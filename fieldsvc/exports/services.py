"""Rows to export: each resource as a stream of (properties, geometry) read in keyset chunks.

Reads only. Every query is scoped in ``_scope`` — the one place the exports apply county scoping
(today the domains' own scope helpers; when the access-policy module lands, only that function
changes) — and filtered with the same names as the resource's list endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from .. import access
from ..auth.principal import Actor
from ..certificates.models import Certificate
from ..certificates.services import now as cert_now
from ..certificates.services import status_at
from ..dbutil import core_execute
from ..errors import forbidden, validation_failed
from ..grading.models import Grade
from ..grading.rules import DEFAULT_PACK
from ..lab.models import LabResult
from ..lab.services import result_scope
from ..openrosa import extensions as form_extensions
from ..places.models import FarmPark, Parcel
from ..places.services import parcel_scope
from ..samples.models import Sample
from ..samples.services import sample_scope
from .columns import COLUMNS, Column

CHUNK = 5000  # rows per keyset query

# Filters each resource takes (the names of its list endpoint's filters).
FILTERS: dict[str, tuple[str, ...]] = {
    "samples": ("county", "village", "farm_park", "parcel", "state"),
    "results": ("county", "village", "parcel", "sample", "status", "analyte", "import_id", "current"),
    "grades": ("county", "village", "farm_park", "verdict", "rule_pack"),
    "certificates": ("county", "status", "subject_type"),
}

Row = tuple[dict[str, Any], str | None]  # (properties, the geometry as GeoJSON text | None)


def _scope(resource: str, actor: Actor) -> list[ColumnElement[bool]]:
    """What this account may export (the exports' single scoping call)."""
    if resource == "samples":
        return [*sample_scope(actor), Sample.deleted_at.is_(None)]
    if resource == "results":
        return result_scope(actor)
    if resource == "grades":
        return parcel_scope(actor)
    if actor.role not in ("official", "admin"):
        raise forbidden("Certificates are exported by officials and admins.")
    return [access.record_filter(actor, Certificate.county_code)]


def check_filters(resource: str, args: Mapping[str, Any]) -> None:
    wrong = {k: [f"not a filter of {resource} (one of {', '.join(FILTERS[resource])})"]
             for k, v in args.items() if v not in (None, "") and k not in FILTERS[resource]}
    if wrong:
        raise validation_failed(wrong)


def rows(resource: str, args: Mapping[str, Any], actor: Actor) -> Iterator[Row]:
    """Every row of the export, in id order, read CHUNK at a time (constant memory).

    The filters and the account's right to the resource are checked now (a 4xx before any byte
    goes out); the rows are read as the returned iterator is consumed.
    """
    check_filters(resource, args)
    stmt, key, convert = _QUERIES[resource](args)
    return _read(stmt.where(*_scope(resource, actor)), key, convert)


def count(resource: str, args: Mapping[str, Any], actor: Actor) -> int:
    """How many rows ``rows`` would yield (the console decides on a background job from it)."""
    check_filters(resource, args)
    stmt, _, _ = _QUERIES[resource](args)
    inner = stmt.where(*_scope(resource, actor)).subquery()
    return int(core_execute(select(func.count()).select_from(inner)).scalar_one())


def _read(stmt: Select, key: Any, convert: Any) -> Iterator[Row]:
    after: Any = None
    while True:
        page = stmt.order_by(key).limit(CHUNK)
        if after is not None:
            page = page.where(key > after)
        found = core_execute(page).all()
        for row in found:
            yield convert(row)
        if len(found) < CHUNK:
            return
        after = getattr(found[-1], key.key)


def _point(lat: float | None, lon: float | None) -> str | None:
    """A GeoJSON point as text (longitude first); stored parcel shapes are GeoJSON text already."""
    if lat is None or lon is None:
        return None
    return '{"type":"Point","coordinates":[' + repr(float(lon)) + "," + repr(float(lat)) + "]}"


def _number(text: str | None) -> Decimal | None:
    return Decimal(text) if text not in (None, "") else None


def _samples(args: Mapping[str, Any]) -> tuple[Select, Any, Any]:
    stmt = (select(Sample.id, Sample.code, Sample.parcel_code, Sample.county_code, Sample.state, Sample.flags,
                   Sample.collected_at, Sample.received_at, Sample.lat, Sample.lon, Sample.accuracy_m,
                   Sample.depth_top_cm, Sample.depth_bottom_cm, Sample.sample_type, Sample.land_use_observed,
                   Sample.version, Sample.extra, Parcel.village_code, Parcel.farm_park_code)
            .outerjoin(Parcel, Parcel.code == Sample.parcel_code))
    where = {"county": Sample.county_code, "village": Parcel.village_code, "farm_park": Parcel.farm_park_code,
             "parcel": Sample.parcel_code, "state": Sample.state}
    stmt = stmt.where(*(col == args[k] for k, col in where.items() if args.get(k)))

    def convert(r: Any) -> Row:
        props = {"id": r.id, "code": r.code, "parcel": r.parcel_code, "village": r.village_code,
                 "farm_park": r.farm_park_code, "county": r.county_code, "state": r.state, "flags": r.flags or [],
                 "collected_at": r.collected_at, "received_at": r.received_at, "lat": r.lat, "lon": r.lon,
                 "accuracy_m": r.accuracy_m, "depth_top_cm": r.depth_top_cm, "depth_bottom_cm": r.depth_bottom_cm,
                 "sample_type": r.sample_type, "land_use_observed": r.land_use_observed, "version": r.version}
        if r.extra:
            props.update({f"{EXTRA_PREFIX}{name}": _extra_cell(value) for name, value in r.extra.items()})
        return props, _point(r.lat, r.lon)

    return stmt, Sample.id, convert


EXTRA_PREFIX = "extra_"  # a custom question's column key: extra_<question name>
_EXTRA_KINDS = {"integer": "number", "decimal": "number", "select_multiple": "list"}


def columns_for(resource: str) -> tuple[Column, ...]:
    """The export's columns; samples also get one per custom question of any form extension version
    (the newest version's labels, headers in the chosen language), in the form's order."""
    if resource != "samples":
        return COLUMNS[resource]
    extra = [Column(f"{EXTRA_PREFIX}{q['name']}", q["label_zh"], q["label_en"], _EXTRA_KINDS.get(q["type"], "text"))
             for q in form_extensions.all_questions()]
    return (*COLUMNS[resource], *extra)


def _extra_cell(value: Any) -> Any:
    """An answer as a cell: a position as ``lat lon`` (ODK's order), a list stays a list (joined by ``;``)."""
    if isinstance(value, Mapping):
        return f"{value.get('lat')} {value.get('lon')}"
    if isinstance(value, list):
        return [str(v) for v in value]
    return value


def _results(args: Mapping[str, Any]) -> tuple[Select, Any, Any]:
    stmt = (select(LabResult.id, LabResult.sample_id, LabResult.sample_code, LabResult.analyte, LabResult.qualifier,
                   LabResult.value, LabResult.detection_limit, LabResult.unit, LabResult.raw_value, LabResult.raw_unit,
                   LabResult.method, LabResult.status, LabResult.version, LabResult.import_id, LabResult.created_at,
                   Sample.parcel_code, Sample.lat, Sample.lon)
            .outerjoin(Sample, Sample.id == LabResult.sample_id).where(LabResult.qc_type.is_(None)))
    if args.get("current", True):
        stmt = stmt.where(LabResult.superseded_by.is_(None))
    if args.get("county"):
        stmt = stmt.where(Sample.county_code == args["county"])
    if args.get("village"):
        stmt = stmt.where(Sample.parcel_code.in_(select(Parcel.code).where(Parcel.village_code == args["village"])))
    if args.get("parcel"):
        stmt = stmt.where(Sample.parcel_code == args["parcel"])
    if args.get("sample"):
        stmt = stmt.where((LabResult.sample_id == args["sample"]) | (LabResult.sample_code == args["sample"]))
    for name in ("status", "analyte", "import_id"):
        if args.get(name):
            stmt = stmt.where(getattr(LabResult, name) == args[name])

    def convert(r: Any) -> Row:
        props = {"id": str(r.id), "sample_id": r.sample_id, "sample_code": r.sample_code, "parcel": r.parcel_code,
                 "analyte": r.analyte, "qualifier": r.qualifier, "value": _number(r.value),
                 "detection_limit": _number(r.detection_limit), "unit": r.unit, "raw_value": r.raw_value,
                 "raw_unit": r.raw_unit, "method": r.method, "status": r.status, "version": r.version,
                 "import_id": r.import_id, "created_at": r.created_at}
        return props, _point(r.lat, r.lon)

    return stmt, LabResult.id, convert


def _grades(args: Mapping[str, Any]) -> tuple[Select, Any, Any]:
    """Every live parcel in scope with its current grade under the pack (``not_assessed`` when none).

    ``verdict=not_assessed`` (or the old word ``not_graded``) lists parcels without a grade row too."""
    pack = args.get("rule_pack") or DEFAULT_PACK
    current = (Grade.subject_type == "parcel") & (Grade.subject_code == Parcel.code) & Grade.superseded_by.is_(None) \
        & (Grade.rule_pack == pack)
    stmt = (select(Parcel.id, Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.county_code,
                   Parcel.land_use, Parcel.area_m2, Parcel.geometry_json, Grade.verdict, Grade.grade,
                   Grade.limiting, Grade.computed_at)
            .outerjoin(Grade, current).where(Parcel.deleted_at.is_(None)))
    where = {"county": Parcel.county_code, "village": Parcel.village_code, "farm_park": Parcel.farm_park_code}
    stmt = stmt.where(*(col == args[k] for k, col in where.items() if args.get(k)))
    if args.get("verdict") in ("not_assessed", "not_graded"):
        stmt = stmt.where(Grade.id.is_(None) | Grade.verdict.in_(("not_assessed", "not_graded")))
    elif args.get("verdict"):
        stmt = stmt.where(Grade.verdict == args["verdict"])

    def convert(r: Any) -> Row:
        props = {"parcel": r.code, "village": r.village_code, "farm_park": r.farm_park_code,
                 "county": r.county_code, "land_use": r.land_use, "area_m2": r.area_m2, "rule_pack": pack,
                 "verdict": r.verdict if r.verdict not in (None, "not_graded") else "not_assessed",
                 "grade": r.grade, "limiting": r.limiting or [],
                 "computed_at": r.computed_at}
        return props, r.geometry_json or None

    return stmt, Parcel.id, convert


def _certificates(args: Mapping[str, Any]) -> tuple[Select, Any, Any]:
    moment = cert_now()
    stmt = (select(Certificate.id, Certificate.code, Certificate.subject_type, Certificate.subject_code,
                   Certificate.county_code, Certificate.status, Certificate.reason, Certificate.issued_at,
                   Certificate.valid_until, Certificate.issued_by, Certificate.replaced_by,
                   Parcel.geometry_json.label("parcel_geometry"), FarmPark.geometry_json.label("park_geometry"))
            .outerjoin(Parcel, (Certificate.subject_type == "parcel") & (Parcel.code == Certificate.subject_code))
            .outerjoin(FarmPark, (Certificate.subject_type == "farm_park")
                       & (FarmPark.code == Certificate.subject_code)))
    if args.get("county"):
        stmt = stmt.where(Certificate.county_code == args["county"])
    if args.get("subject_type"):
        stmt = stmt.where(Certificate.subject_type == args["subject_type"])
    wanted = args.get("status")
    if wanted == "expired":
        stmt = stmt.where(Certificate.status == "valid", Certificate.valid_until <= moment)
    elif wanted == "valid":
        stmt = stmt.where(Certificate.status == "valid", Certificate.valid_until > moment)
    elif wanted:
        stmt = stmt.where(Certificate.status == wanted)

    def convert(c: Any) -> Row:
        props = {"code": c.code, "subject_type": c.subject_type, "subject_code": c.subject_code,
                 "county": c.county_code, "status": status_at(c, moment), "reason": c.reason,
                 "issued_at": c.issued_at, "valid_until": c.valid_until, "issued_by": c.issued_by,
                 "replaced_by": c.replaced_by}
        return props, c.parcel_geometry or c.park_geometry or None

    return stmt, Certificate.id, convert


_QUERIES = {"samples": _samples, "results": _results, "grades": _grades, "certificates": _certificates}

__all__ = ["CHUNK", "FILTERS", "check_filters", "columns_for", "count", "rows"]
