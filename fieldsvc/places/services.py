"""Write and read places. Services flush, never commit; the request boundary commits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterable, Mapping, Sequence

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, select, text

from .. import access
from ..audit.models import EntityVersion
from ..audit.services import (
    Change,
    canonical_json,
    creator_of,
    insert_rows,
    keep_first_version,
    record,
    record_many,
    versions_for,
)
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import dialect_name
from ..errors import Problem, conflict, not_found, validation_failed
from ..events import ParcelsChanged, ParcelsImported, publish
from ..extensions import db
from ..paging import Page, paginate
from ..sequence import allocate
from . import geometry as geo
from .models import FarmPark, Parcel, ParcelImport, Region
from .schemas import ParcelProperties

PARENT_LEVEL = {"county": None, "township": "county", "village": "township"}
CODE_LENGTH = {"county": 6, "township": 9, "village": 12}
MAX_REPORTED_ERRORS = 1000
CHUNK = 5000


# --- regions --------------------------------------------------------------------------------

def get_region_by_code(code: str, actor: Actor | None = None) -> Region:
    scope = access.region_filter(actor, Region.code, Region.county_code) if actor else []
    region = db.session.scalar(select(Region).where(Region.code == code, *scope))
    if region is None:
        raise not_found("region", code)
    return region


def create_region(data: Mapping[str, Any], actor: Actor) -> Region:
    """Regions nest county → township → village; a child's code extends its parent's."""
    level, code, parent_code = data["level"], data["code"], data.get("parent")
    errors: dict[str, list[str]] = {}
    if len(code) != CODE_LENGTH[level]:
        errors["code"] = [f"a {level} code has {CODE_LENGTH[level]} digits"]
    county_code = code
    if PARENT_LEVEL[level] is None:
        if parent_code:
            errors["parent"] = ["a county has no parent here"]
        if not access.may_see_county(actor, code):
            errors["code"] = ["outside the county your account is scoped to"]
    else:
        parent = db.session.scalar(select(Region).where(Region.code == (parent_code or "")))
        if parent is None or not access.may_see_county(actor, parent.county_code):
            errors["parent"] = [f"unknown {PARENT_LEVEL[level]} {parent_code}"]
        elif parent.level != PARENT_LEVEL[level]:
            errors["parent"] = [f"a {level}'s parent must be a {PARENT_LEVEL[level]}, not a {parent.level}"]
        elif not code.startswith(parent.code):
            errors["code"] = [f"must start with its parent's code {parent.code}"]
        else:
            county_code = parent.county_code
    if errors:
        raise validation_failed(errors)
    if db.session.scalar(select(Region.id).where(Region.code == code)) is not None:
        raise conflict("duplicate_code", f"Region {code} already exists.", fields={"code": ["already exists"]})
    region = Region(code=code, name=data["name"], name_en=data.get("name_en"), level=level,
                    parent_code=parent_code, county_code=county_code, seq=allocate()[0])
    db.session.add(region)
    db.session.flush()
    record(actor.label, Change("region", code, "create", after=region_dict(region), version=1))
    return region


def region_dict(region: Region) -> dict[str, Any]:
    return {"code": region.code, "name": region.name, "name_en": region.name_en, "level": region.level,
            "parent": region.parent_code, "county": region.county_code, "version": region.version}


def region_filter(args: Mapping[str, Any], actor: Actor) -> list[ColumnElement[bool]]:
    where = access.region_filter(actor, Region.code, Region.county_code)
    if args.get("level"):
        where.append(Region.level == args["level"])
    if args.get("parent"):
        where.append(Region.parent_code == args["parent"])
    if args.get("county"):
        where.append(Region.county_code == args["county"])
    return where


# --- farm parks -----------------------------------------------------------------------------

def get_farm_park_by_code(code: str, actor: Actor | None = None) -> FarmPark:
    scope = access.farm_park_filter(actor, FarmPark.code, FarmPark.county_code) if actor else []
    park = db.session.scalar(select(FarmPark).where(FarmPark.code == code, *scope))
    if park is None:
        raise not_found("farm_park", code)
    return park


def create_farm_park(data: Mapping[str, Any], actor: Actor) -> FarmPark:
    county = db.session.scalar(select(Region).where(Region.code == data["county"], Region.level == "county"))
    errors: dict[str, list[str]] = {}
    if county is None or not access.may_see_county(actor, county.code):
        errors["county"] = [f"unknown county {data['county']}"]
    geometry_json, area = None, None
    if data.get("geometry") is not None:
        clean, problems = geo.check_geometry(data["geometry"])
        if problems:
            errors["geometry"] = problems
        else:
            geometry_json, area = _dump(clean), geo.area_m2(clean)
    if errors:
        raise validation_failed(errors)
    if db.session.scalar(select(FarmPark.id).where(FarmPark.code == data["code"])) is not None:
        raise conflict("duplicate_code", f"Farm park {data['code']} already exists.",
                       fields={"code": ["already exists"]})
    park = FarmPark(code=data["code"], name=data["name"], name_en=data.get("name_en"), county_code=county.code,
                    geometry_json=geometry_json, area_m2=area, seq=allocate()[0])
    db.session.add(park)
    db.session.flush()
    record(actor.label, Change("farm_park", park.code, "create", after=farm_park_dict(park), version=1))
    return park


def farm_park_dict(park: FarmPark) -> dict[str, Any]:
    return {"code": park.code, "name": park.name, "name_en": park.name_en, "county": park.county_code,
            "area_m2": park.area_m2, "version": park.version,
            "geometry": json.loads(park.geometry_json) if park.geometry_json else None}


# --- parcels: bulk import -------------------------------------------------------------------

@dataclass(frozen=True)
class ImportResult:
    count: int
    codes: list[str]
    computed_areas: int
    counties: list[str]


def get_parcel_import(sha256: str, actor: Actor) -> dict[str, Any] | None:
    """The answer of the committed import of exactly these bytes, if ``actor`` may see it."""
    first = db.session.scalar(select(ParcelImport).where(ParcelImport.sha256 == sha256))
    if first is None or not access.may_see_record(actor, first.county_code):
        return None
    return json.loads(first.answer_json)


def record_parcel_import(sha256: str, result: ImportResult, answer: Mapping[str, Any], actor: Actor) -> None:
    """Keep the answer of a committed import under its body's hash (see :func:`get_parcel_import`)."""
    counties = set(result.counties)
    db.session.add(ParcelImport(sha256=sha256, county_code=counties.pop() if len(counties) == 1 else None,
                                created_by=actor.label, answer_json=json.dumps(answer, ensure_ascii=False)))
    db.session.flush()


def import_parcels(collection: Any, actor: Actor, max_features: int,
                   max_vertices: int | None = None) -> ImportResult:
    """All or nothing: every feature is checked, and any error rejects the whole collection."""
    features = _features_of(collection, max_features)
    rows, errors = _validate_features(features, actor, max_vertices)
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        raise Problem(422, "validation_failed",
                      f"{len(errors)} of {len(features)} features are invalid; nothing was imported.",
                      features=shown, error_count=len(errors))
    _insert_parcels(rows, actor)
    return ImportResult(len(rows), [r["code"] for r in rows], sum(r["area_computed"] for r in rows),
                        sorted({r["county_code"] for r in rows}))


def _features_of(collection: Any, max_features: int) -> list[Any]:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise validation_failed({"type": ["must be a GeoJSON FeatureCollection"]})
    features = collection.get("features")
    if not isinstance(features, list):
        raise validation_failed({"features": ["must be a list of GeoJSON Features"]})
    if not features:
        raise validation_failed({"features": ["is empty"]})
    if len(features) > max_features:
        raise validation_failed({"features": [f"at most {max_features} features per import"]})
    return features


def _validate_features(features: Sequence[Any], actor: Actor,
                       max_vertices: int | None = None) -> tuple[list[dict], list[dict]]:
    errors: list[dict] = []
    indexes: list[int] = []
    properties: list[dict] = []
    geometries: list[Any] = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append({"index": index, "code": None, "errors": {"type": ["must be a GeoJSON Feature"]}})
            continue
        props = feature.get("properties")
        indexes.append(index)
        properties.append(props if isinstance(props, dict) else {})
        geometries.append(feature.get("geometry"))
    loaded, invalid = _load_properties(properties)
    for k, messages in invalid.items():
        code = properties[k].get("code")
        errors.append({"index": indexes[k], "code": code if isinstance(code, str) else None,
                       "errors": {f"properties.{name}": v for name, v in messages.items()}})
    parsed = [(index, None if k in invalid else props, geometry)
              for k, (index, props, geometry) in enumerate(zip(indexes, loaded, geometries, strict=True))]
    checked, bounds = geo.check_geometries_with_bounds(geometries, max_vertices)
    ok = [(i, p, (clean, box)) for (i, p, _), (clean, problems), box in zip(parsed, checked, bounds, strict=True)
          if p is not None and not problems]
    for (i, p, _), (_, problems) in zip(parsed, checked, strict=True):
        if problems:
            _merge_error(errors, i, p, {"geometry": problems})
    _check_references(ok, errors, actor)
    bad = {e["index"] for e in errors}
    good = [(i, p, g) for i, p, g in ok if i not in bad]
    errors.sort(key=lambda e: e["index"])
    if errors:
        return [], errors
    return _rows_for(good), []


def _load_properties(properties: list[dict]) -> tuple[list[dict], dict[int, dict[str, Any]]]:
    """Every feature's properties in one ``ParcelProperties(many=True)`` load: (loaded, messages by
    position of the invalid ones). One load for the collection rather than one per feature saves
    marshmallow's per-call work: 18.5–19.8 against 19.6–21.6 µs a feature (20,000 features of
    ``bench/places.py``'s county, best of 7, two runs)."""
    try:
        return ParcelProperties(many=True).load(properties), {}
    except ValidationError as exc:
        return exc.valid_data, exc.messages  # type: ignore[return-value]


def _merge_error(errors: list[dict], index: int, props: dict | None, problems: dict) -> None:
    for entry in errors:
        if entry["index"] == index:
            entry["errors"].update(problems)
            return
    errors.append({"index": index, "code": props["code"] if props else None, "errors": problems})


def _check_references(items: list[tuple[int, dict, Any]], errors: list[dict], actor: Actor) -> None:
    villages = _villages_by_code({p["village"] for _, p, _ in items}, actor)
    parks = _parks_by_code({p["farm_park"] for _, p, _ in items if p["farm_park"]}, actor)
    existing = _existing_parcel_codes([p["code"] for _, p, _ in items])
    first_seen: dict[str, int] = {}
    for index, props, _ in items:
        problems: dict[str, list[str]] = {}
        code = props["code"]
        if code in first_seen:
            problems["properties.code"] = [f"duplicate code {code} (also feature {first_seen[code]})"]
        else:
            first_seen[code] = index
        if code in existing:
            problems.setdefault("properties.code", []).append(f"parcel {code} already exists")
        county = villages.get(props["village"])
        if county is None:
            problems["properties.village"] = [f"unknown village {props['village']}"]
        park = props["farm_park"]
        if park and park not in parks:
            problems["properties.farm_park"] = [f"unknown farm park {park}"]
        elif park and county and parks[park] != county:
            problems["properties.farm_park"] = [f"farm park {park} is in another county"]
        if problems:
            _merge_error(errors, index, props, problems)
        else:
            props["_county"] = county


def _villages_by_code(codes: Iterable[str], actor: Actor) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(list(codes)):
        stmt = select(Region.code, Region.county_code).where(Region.code.in_(chunk), Region.level == "village")
        found.update({c: county for c, county in db.session.execute(stmt) if access.may_see_county(actor, county)})
    return found


def _parks_by_code(codes: Iterable[str], actor: Actor) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(list(codes)):
        stmt = select(FarmPark.code, FarmPark.county_code).where(FarmPark.code.in_(chunk))
        found.update({c: county for c, county in db.session.execute(stmt) if access.may_see_county(actor, county)})
    return found


def _existing_parcel_codes(codes: list[str]) -> set[str]:
    existing: set[str] = set()
    for chunk in _chunks(codes):
        existing.update(db.session.scalars(select(Parcel.code).where(Parcel.code.in_(chunk))))
    return existing


def _rows_for(items: list[tuple[int, dict, tuple[dict, tuple[float, ...]]]]) -> list[dict]:
    """The parcels rows of checked features: (index, properties, (geometry, its bbox))."""
    missing = [g for _, p, (g, _) in items if p["area_m2"] is None]
    computed = iter(geo.areas_m2(missing)) if missing else iter(())
    now = utcnow()
    rows = []
    for _, props, (geometry, box) in items:
        min_lon, min_lat, max_lon, max_lat = box
        area = props["area_m2"]
        rows.append({
            "code": props["code"], "village_code": props["village"], "county_code": props["_county"],
            "farm_park_code": props["farm_park"], "land_use": props["land_use"], "crop": props["crop"],
            "area_m2": area if area is not None else round(next(computed), 2),
            "area_computed": area is None, "geometry_json": _dump(geometry),
            "min_lon": min_lon, "min_lat": min_lat, "max_lon": max_lon, "max_lat": max_lat,
            "version": 1, "created_at": now, "updated_at": now,
        })
    return rows


def _insert_parcels(rows: list[dict], actor: Actor) -> None:
    seqs = allocate(len(rows))
    for row, seq in zip(rows, seqs, strict=True):
        row["seq"] = seq
    now = rows[0]["created_at"]
    insert_rows(Parcel.__table__, ("version", "created_at", "updated_at"), (1, now, now), _ROW_COLUMNS,
                list(map(itemgetter(*_ROW_COLUMNS), rows)))
    _index_boxes(seqs)
    # no version row: version 1 stays on the parcel's row until an edit or delete (parcel_versions)
    record_many(actor.label, (Change("parcel", r["code"], "create", after_json=_row_feature_json(r)) for r in rows))
    publish(ParcelsImported(tuple(r["code"] for r in rows), tuple(sorted({r["county_code"] for r in rows})), actor))


_ROW_COLUMNS = ("code", "village_code", "county_code", "farm_park_code", "land_use", "crop", "area_m2", "area_computed",
                "geometry_json", "min_lon", "min_lat", "max_lon", "max_lat", "seq")
# SQLite: parcels' boxes into the R*Tree (the import's, below; benchmarks that write parcels with
# raw SQL run it over every parcel after their inserts: no trigger does it since b2d9e4f17a35)
RTREE_FILL = ("INSERT INTO parcels_rtree (id, min_lon, max_lon, min_lat, max_lat) "
              "SELECT id, min_lon, max_lon, min_lat, max_lat FROM parcels")
_RTREE_FILL = text(f"{RTREE_FILL} WHERE seq BETWEEN :first AND :last")


def _index_boxes(seqs: range) -> None:
    """SQLite: the new parcels' boxes go into the ``parcels_rtree`` R*Tree in one statement after
    their rows (migration ``b2d9e4f17a35``: a trigger adding them row by row cost ~25 µs a parcel
    more in ``bench/places.py``); this is the one place parcels are inserted. PostgreSQL's
    ``parcels.geom`` is set by its trigger."""
    if dialect_name() == "sqlite":
        db.session.execute(_RTREE_FILL, {"first": seqs[0], "last": seqs[-1]})


# --- parcels: read, edit, delete ------------------------------------------------------------

def get_parcel_by_code(code: str, actor: Actor, *, allow_deleted: bool = False, for_update: bool = False) -> Parcel:
    """:raise 404: unknown or out of scope; 410 deleted. ``for_update`` locks the row (versioned writes)."""
    stmt = select(Parcel).where(Parcel.code == code, *parcel_scope(actor))
    parcel = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if parcel is None:
        raise not_found("parcel", code)
    if parcel.deleted_at is not None and not allow_deleted:
        raise Problem(410, "deleted", f"Parcel {code} was deleted.", parcel=code, version=parcel.version,
                      deleted_at=isoformat(parcel.deleted_at))
    return parcel


def update_parcel(code: str, patch: Mapping[str, Any], actor: Actor, max_vertices: int | None = None) -> Parcel:
    """A new version; a stale ``base_version`` is refused rather than overwritten, and without one
    the row lock makes concurrent edits apply one after the other (none lost)."""
    parcel = get_parcel_by_code(code, actor, for_update=True)
    _check_base_version(parcel, patch.get("base_version"))
    before = parcel_feature(parcel)
    _keep_first_version(parcel, before)
    errors: dict[str, list[str]] = {}
    if "village" in patch and patch["village"] != parcel.village_code:
        county = _villages_by_code([patch["village"]], actor).get(patch["village"])
        if county is None:
            errors["village"] = [f"unknown village {patch['village']}"]
        else:
            parcel.village_code, parcel.county_code = patch["village"], county
    if patch.get("farm_park"):
        parks = _parks_by_code([patch["farm_park"]], actor)
        if parks.get(patch["farm_park"]) != parcel.county_code:
            errors["farm_park"] = [f"unknown farm park {patch['farm_park']} in this county"]
    if "geometry" in patch:
        clean, problems = geo.check_geometry(patch["geometry"], max_vertices)
        if problems:
            errors["geometry"] = problems
        else:
            _set_geometry(parcel, clean, recompute_area="area_m2" not in patch and parcel.area_computed)
    if errors:
        raise validation_failed(errors)
    for key, column in (("land_use", "land_use"), ("crop", "crop"), ("farm_park", "farm_park_code")):
        if key in patch:
            setattr(parcel, column, patch[key])
    if patch.get("area_m2") is not None:
        parcel.area_m2, parcel.area_computed = patch["area_m2"], False
    elif "area_m2" in patch:
        parcel.area_m2, parcel.area_computed = round(geo.area_m2(json.loads(parcel.geometry_json)), 2), True
    _bump(parcel)
    after = parcel_feature(parcel)
    record(actor.label, Change("parcel", code, "update", before=before, after=after, version=parcel.version))
    publish(ParcelsChanged((code,), actor))
    return parcel


def delete_parcel(code: str, actor: Actor, base_version: int | None = None) -> Parcel:
    """A tombstone: the row and every version stay; pulls see it as deleted."""
    parcel = get_parcel_by_code(code, actor, for_update=True)
    _check_base_version(parcel, base_version)
    before = parcel_feature(parcel)
    _keep_first_version(parcel, before)
    parcel.deleted_at = utcnow()
    _bump(parcel)
    record(actor.label, Change("parcel", code, "delete", before=before, after=parcel_feature(parcel),
                               version=parcel.version, deleted=True))
    publish(ParcelsChanged((code,), actor))
    return parcel


# A parcel's first version lives only on its row until something supersedes it, as a sample's
# does (``audit.services.keep_first_version``): an import stored every parcel's whole Feature,
# geometry included, a second time as a version row (~460 bytes a parcel). Every later version is
# stored when it is made; update and delete copy version 1 out before the row changes.

def parcel_versions(parcel: Parcel) -> list[EntityVersion]:
    """Every version of ``parcel``, oldest first; an unedited parcel's one version is read off its row."""
    def first() -> EntityVersion:
        return EntityVersion(entity_type="parcel", entity_key=parcel.code, version=1, deleted=False,
                             data_json=canonical_json(parcel_feature(parcel)), actor=_creator(parcel),
                             created_at=parcel.created_at)

    return versions_for("parcel", parcel.code, first if parcel.version == 1 else None)


def _keep_first_version(parcel: Parcel, feature: Mapping[str, Any]) -> None:
    """Store version 1 (``feature``, as the row holds it) before the row changes."""
    if parcel.version == 1:
        keep_first_version("parcel", parcel.code, canonical_json(feature), _creator(parcel), parcel.created_at)


def _creator(parcel: Parcel) -> str:
    """Who made version 1: the actor of the parcel's ``create`` audit event (the import)."""
    return creator_of("parcel", parcel.code) or "unknown"


def _check_base_version(parcel: Parcel, base_version: int | None) -> None:
    if base_version is not None and base_version != parcel.version:
        raise conflict("version_conflict", f"Parcel {parcel.code} is at version {parcel.version}, not "
                       f"{base_version}; fetch it and apply your change again.", current_version=parcel.version)


def _set_geometry(parcel: Parcel, geometry: dict, *, recompute_area: bool) -> None:
    parcel.geometry_json = _dump(geometry)
    parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat = geo.bbox(geometry)
    if recompute_area:
        parcel.area_m2 = round(geo.area_m2(geometry), 2)


def _bump(parcel: Parcel) -> None:
    parcel.version += 1
    parcel.seq = allocate()[0]
    parcel.updated_at = utcnow()
    db.session.flush()


# --- reading --------------------------------------------------------------------------------

def parcel_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """What this actor may see (``access.parcel_filter``): its county, a sampler only its assignment."""
    return access.parcel_filter(actor, Parcel.code, Parcel.village_code, Parcel.county_code)


def parcel_filter(args: Mapping[str, Any], actor: Actor) -> list[ColumnElement[bool]]:
    where = parcel_scope(actor)
    for key, column in (("village", Parcel.village_code), ("farm_park", Parcel.farm_park_code),
                        ("land_use", Parcel.land_use), ("county", Parcel.county_code)):
        if args.get(key):
            where.append(column == args[key])
    if not args.get("include_deleted"):
        where.append(Parcel.deleted_at.is_(None))
    return where


def farm_park_filter(args: Mapping[str, Any], actor: Actor) -> list[ColumnElement[bool]]:
    where = access.farm_park_filter(actor, FarmPark.code, FarmPark.county_code)
    if args.get("county"):
        where.append(FarmPark.county_code == args["county"])
    return where


def list_regions(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    rows, cursor = paginate(select(Region).where(*region_filter(args, actor)), Region.id, limit, args.get("cursor"))
    return Page([region_dict(r) for r in rows], cursor)


def list_farm_parks(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    rows, cursor = paginate(select(FarmPark).where(*farm_park_filter(args, actor)), FarmPark.id, limit,
                            args.get("cursor"))
    return Page([farm_park_dict(r) for r in rows], cursor)


def list_parcels(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    """One page of parcels as GeoJSON Features (the view adds their grades)."""
    rows, cursor = paginate(select(Parcel).where(*parcel_filter(args, actor)), Parcel.id, limit, args.get("cursor"))
    return Page([parcel_feature(r) for r in rows], cursor)


def parcel_feature(parcel: Parcel) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": parcel.code,
        "geometry": json.loads(parcel.geometry_json),
        "properties": {
            "code": parcel.code, "village": parcel.village_code, "county": parcel.county_code,
            "farm_park": parcel.farm_park_code, "land_use": parcel.land_use, "crop": parcel.crop,
            "area_m2": parcel.area_m2, "area_computed": parcel.area_computed, "version": parcel.version,
            "updated_at": isoformat(parcel.updated_at), "deleted": parcel.deleted_at is not None,
        },
    }


def _row_feature_json(row: Mapping[str, Any]) -> str:
    """``canonical_json(parcel_feature(...))`` of an imported row, built around its stored geometry text."""
    props = {"code": row["code"], "village": row["village_code"], "county": row["county_code"],
             "farm_park": row["farm_park_code"], "land_use": row["land_use"], "crop": row["crop"],
             "area_m2": row["area_m2"], "area_computed": row["area_computed"], "version": 1,
             "updated_at": isoformat(row["updated_at"]), "deleted": False}
    return (f'{{"geometry":{row["geometry_json"]},"id":{canonical_json(row["code"])},'
            f'"properties":{canonical_json(props)},"type":"Feature"}}')


def _dump(value: Any) -> str:
    """Geometry text is stored canonically, so version snapshots can embed it verbatim."""
    return canonical_json(value)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
