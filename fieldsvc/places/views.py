"""Places endpoints (DESIGN §4.4). Thin: schema → service → JSON."""

from __future__ import annotations

import hashlib

from flask import Blueprint, current_app, request

from ..dbtypes import isoformat
from ..errors import validation_failed
from ..grading.queries import grade_summaries
from ..http import ALL_ROLES, OFFICIALS, current_actor, if_match_version, json_body, load, query_args, requires_role
from ..openapi import doc
from ..schemas import page_limit
from . import services
from .schemas import FarmParkArgs, FarmParkIn, ParcelArgs, ParcelPatch, RegionArgs, RegionIn

bp = Blueprint("places", __name__, url_prefix="/api/v1")

FEATURE_COLLECTION = {"type": "object", "required": ["type", "features"],
                      "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                                     "features": {"type": "array", "items": {"type": "object"}}}}


@bp.get("/regions")
@requires_role(*ALL_ROLES)
@doc(query=RegionArgs)
def list_regions():
    """List regions (county, township, village), filtered by level, parent or county."""
    args = query_args(RegionArgs())
    return services.list_regions(args, current_actor(), page_limit(args)).to_dict()


@bp.post("/regions")
@requires_role(*OFFICIALS)
@doc(body=RegionIn, responses={201: "Created"})
def create_region():
    """Create a county, township or village."""
    region = services.create_region(load(RegionIn(), json_body()), current_actor())
    return services.region_dict(region), 201


@bp.get("/regions/<code>")
@requires_role(*ALL_ROLES)
def get_region(code: str):
    """One region."""
    return services.region_dict(services.get_region_by_code(code, current_actor()))


@bp.get("/farm-parks")
@requires_role(*ALL_ROLES)
@doc(query=FarmParkArgs)
def list_farm_parks():
    """List farm parks."""
    args = query_args(FarmParkArgs())
    return services.list_farm_parks(args, current_actor(), page_limit(args)).to_dict()


@bp.post("/farm-parks")
@requires_role(*OFFICIALS)
@doc(body=FarmParkIn, responses={201: "Created"})
def create_farm_park():
    """Create a farm park (optionally with its boundary polygon)."""
    park = services.create_farm_park(load(FarmParkIn(), json_body()), current_actor())
    return services.farm_park_dict(park), 201


@bp.get("/farm-parks/<code>")
@requires_role(*ALL_ROLES)
def get_farm_park(code: str):
    """One farm park."""
    return services.farm_park_dict(services.get_farm_park_by_code(code, current_actor()))


@bp.get("/parcels")
@requires_role(*ALL_ROLES)
@doc(query=ParcelArgs)
def list_parcels():
    """List parcels as GeoJSON Features, filtered by village, farm park, land use."""
    args = query_args(ParcelArgs())
    found = services.list_parcels(args, current_actor(), page_limit(args))
    return {"items": _with_grades(found.items), "next_cursor": found.next_cursor}


@bp.post("/parcels")
@requires_role(*OFFICIALS)
@doc(body=FEATURE_COLLECTION, responses={200: "The same file was imported before: the first answer",
                                         201: "Imported"})
def import_parcels():
    """Import a GeoJSON FeatureCollection of parcels: all or nothing, with per-feature errors."""
    limit = current_app.config["MAX_IMPORT_BYTES"]
    actor = current_actor()
    collection = json_body(limit)
    sha = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    first = services.get_parcel_import(sha, actor)
    if first is not None:  # the same file again (its answer was lost): the first commit's answer
        return {**first, "duplicate": True}, 200
    result = services.import_parcels(collection, actor, current_app.config["MAX_IMPORT_FEATURES"],
                                     current_app.config["MAX_PARCEL_VERTICES"])
    answer = {"imported": result.count, "computed_areas": result.computed_areas, "codes": result.codes[:1000]}
    services.record_parcel_import(sha, result, answer, actor)
    return answer, 201


@bp.get("/parcels/<code>")
@requires_role(*ALL_ROLES)
def get_parcel(code: str):
    """One parcel as a GeoJSON Feature with its current grade."""
    return _with_grades([services.parcel_feature(services.get_parcel_by_code(code, current_actor()))])[0]


@bp.patch("/parcels/<code>")
@requires_role(*OFFICIALS)
@doc(body=ParcelPatch)
def update_parcel(code: str):
    """Edit a parcel; makes a new version (send ``base_version`` or If-Match to refuse stale edits)."""
    patch = load(ParcelPatch(), json_body())
    if not set(patch) - {"base_version"}:
        raise validation_failed({"_body": ["nothing to change"]})
    patch.setdefault("base_version", _if_match())
    parcel = services.update_parcel(code, patch, current_actor(), current_app.config["MAX_PARCEL_VERTICES"])
    return services.parcel_feature(parcel)


@bp.delete("/parcels/<code>")
@requires_role(*OFFICIALS)
def delete_parcel(code: str):
    """Delete a parcel: leaves a tombstone and keeps every version."""
    parcel = services.delete_parcel(code, current_actor(), _if_match())
    return {"code": parcel.code, "deleted": True, "version": parcel.version,
            "deleted_at": isoformat(parcel.deleted_at)}


@bp.get("/parcels/<code>/versions")
@requires_role(*ALL_ROLES)
def parcel_versions(code: str):
    """Every version of a parcel, oldest first."""
    parcel = services.get_parcel_by_code(code, current_actor(), allow_deleted=True)
    return {"items": [{"version": v.version, "deleted": v.deleted, "actor": v.actor,
                       "created_at": isoformat(v.created_at), "data": v.data}
                      for v in services.parcel_versions(parcel)], "next_cursor": None}


def _with_grades(features: list[dict]) -> list[dict]:
    """Grading: each feature's current default-pack grade as ``properties.grade`` (one query per page)."""
    grades = grade_summaries([f["id"] for f in features])
    for f in features:
        f["properties"]["grade"] = grades.get(f["id"])
    return features


def _if_match() -> int | None:
    return if_match_version("parcel")
