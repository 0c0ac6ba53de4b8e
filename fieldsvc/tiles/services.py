"""Tiles from the database, scoped to what the caller may see.

Parcels and samples: on PostgreSQL PostGIS builds the tile (``ST_AsMVTGeom`` over the GiST-indexed
``parcels.geom``, ``ST_AsMVT``); on SQLite the candidates come through the ``parcels_rtree``
R*Tree and ``encode.py`` writes the tile in Python. Both engines select the same rows with the
same filters (the tile's bounding box in degrees plus its buffer, the caller's scope, a
minimum size per zoom, the same order and limit), and ``encode.py`` repeats PostGIS's steps, so
the features agree (a test). Area outlines and planned points are few: encoded in Python on both.

A tile never exceeds ``max_bytes``: when the first rendering is larger, the feature budget
shrinks in proportion and the largest parcels are kept (``render``).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable

import numpy as np
import shapely
from sqlalchemy import Float as SAFloat
from sqlalchemy import (
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import access, sequence
from ..auth.principal import Actor
from ..devices.models import Device
from ..errors import not_found
from ..extensions import db
from ..grading.models import Grade
from ..grading.plan_models import PlannedPoint
from ..grading.rules import DEFAULT_PACK
from ..places.models import FarmPark, Parcel, Region
from ..places.services import parcel_scope
from ..samples.models import Sample
from ..samples.services import sample_scope
from . import cache, encode
from .models import AreaOutline
from .tilemath import BUFFER, EXTENT, MAX_ZOOM, MIN_FEATURE_UNITS, SIMPLIFY_UNITS, Tile

LAYERS = ("parcels", "samples", "areas", "planned")
# The map's colours (the console's legend and map.js read these): measured and estimated told apart,
# not-assessed grey.
COLOURS = {
    "grade": {"qualified": "#1b7a3a", "qualified_estimated": "#8fd19e", "not_qualified": "#b3261e",
              "not_qualified_estimated": "#f0a49e", "needs_sampling": "#e3c000", "indeterminate": "#c25e00",
              "not_assessed": "#b8bfbb"},
    "sampling": {"complete": "#1b5fa8", "incomplete": "#c77700", "held": "#7a2e8f", "none": "#d7dbd9"},
}
MAX_FEATURES = 20_000  # the most parcels in one tile; fewer when the bytes say so
BYTES_PER_PARCEL = 36  # what a small parcel costs in a low-zoom tile (z10-z12 of the demo county: 24-35 B)
MAX_SAMPLES = 20_000
FULL_DETAIL_ZOOM = 14  # from this zoom on a tile covers a few km²: every parcel of a legible size is drawn
LOW_ZOOM_FEATURES = 4_000  # below it, the largest parcels up to this many (a county-wide tile: out of 10^5-10^6)
SIZE_DRIVEN_MAX_ZOOM = 11  # up to this zoom the size index finds the parcels (few pass), above it the spatial index
HELD_STATES = ("held", "needs_review")

_rtree = table("parcels_rtree", column("id"), column("min_lon", SAFloat), column("max_lon", SAFloat),
               column("min_lat", SAFloat), column("max_lat", SAFloat))


def engine() -> str:
    return "postgis" if db.engine.dialect.name == "postgresql" else "python"


def render(layer: str, tile: Tile, actor: Actor, *, max_bytes: int, using: str | None = None,
           cached: bool = True) -> bytes:
    """The tile's bytes (empty when nothing is in it). 404 for an unknown layer or a zoom past ``MAX_ZOOM``.

    Parcel tiles below ``FULL_DETAIL_ZOOM`` come from the tile cache while the data has not changed
    (``cache.py``): they are the costly ones (thousands of parcels each) and few (a county has some
    hundreds), where tiles above are many and cheap, so the cache stays small. ``cached=False`` (or another
    engine's path, ``using``) renders afresh without touching the cache."""
    if layer not in LAYERS:
        raise not_found("tile layer", layer)
    if tile.z > MAX_ZOOM:
        raise not_found("tile zoom", tile.z)
    if layer == "parcels":
        scope = cache.scope_key(actor, max_bytes) if cached and using is None and tile.z < FULL_DETAIL_ZOOM else None
        if scope is None:
            return _parcel_tile(tile, actor, max_bytes, using or engine())
        version = cache.data_version()
        data = cache.get(layer, tile, scope, version)
        if data is None:
            data = _parcel_tile(tile, actor, max_bytes, engine())
            cache.put(layer, tile, scope, version, data)
        return data
    using = using or engine()
    if layer == "samples":
        return _samples(tile, actor, using).data
    if layer == "areas":
        return _areas(tile, actor).data
    return _planned(tile, actor).data


def _parcel_tile(tile: Tile, actor: Actor, max_bytes: int, using: str) -> bytes:
    """At most ``feature_cap`` parcels, largest first; when that is over ``max_bytes``, fewer, in proportion."""
    budget = min(feature_cap(tile.z), max(1, max_bytes // BYTES_PER_PARCEL))
    while True:
        tile_data = _parcels(tile, actor, budget, using)
        if len(tile_data.data) <= max_bytes or tile_data.features <= 1:
            return tile_data.data
        # Fewer features, in proportion to the overshoot (and at least one fewer), largest first.
        budget = min(tile_data.features - 1, int(tile_data.features * max_bytes / len(tile_data.data) * 0.95))
        budget = max(1, budget)


# --- parcels --------------------------------------------------------------------------------------

def _bbox_filter(tile: Tile, lo_lon: Any, lo_lat: Any, hi_lon: Any, hi_lat: Any) -> list[Any]:
    w, s, e, n = tile.bounds_deg(BUFFER)
    return [hi_lon >= w, lo_lon <= e, hi_lat >= s, lo_lat <= n]


def min_size_deg(z: int) -> float:
    """The least bounding-box side (degrees, of longitude or latitude) a parcel needs to be drawn at zoom ``z``:
    ``MIN_FEATURE_UNITS`` tile units of longitude. One figure per zoom (not per tile), so the test below is
    the indexed expression ``ix_parcels_tile_size`` and a county-wide tile reads only the parcels it draws.
    (A degree of latitude is at least as long on the map as one of longitude: the test is on the safe side.)"""
    return 360.0 / (1 << z) * MIN_FEATURE_UNITS / EXTENT


def tile_size_column() -> Any:
    """The larger side of a parcel's bounding box in degrees: the expression ``ix_parcels_tile_size`` indexes."""
    width, height = Parcel.max_lon - Parcel.min_lon, Parcel.max_lat - Parcel.min_lat
    return case((width >= height, width), else_=height)


def _min_size(tile: Tile, least: Any = None) -> Any:
    """Leave out parcels under ``MIN_FEATURE_UNITS`` tile units on both sides (under three pixels at this zoom:
    drawn, they are an outline without fill; the village outlines of the ``areas`` layer carry the picture)."""
    size = tile_size_column()
    if tile.z > SIZE_DRIVEN_MAX_ZOOM:
        # Not the indexed expression: from z12 most parcels pass, and PostgreSQL's planner AND-ed a scan of
        # the size index (230,000 entries at z12 of a 1 M-parcel county, 115 ms) with the tile's GiST scan.
        size = size + literal(0.0, SAFloat)
    return size >= (literal(min_size_deg(tile.z), SAFloat) if least is None else least)


def feature_cap(z: int) -> int:
    """The most parcels one tile of zoom ``z`` holds (largest first; fewer when the bytes say so)."""
    return MAX_FEATURES if z >= FULL_DETAIL_ZOOM else LOW_ZOOM_FEATURES


UNGRADED = ("not_graded", "not_assessed")


def _verdict_column() -> Any:
    """The parcel's verdict; no grade, or a grade that judged nothing, is ``not_assessed``."""
    return case((or_(Grade.verdict.is_(None), Grade.verdict.in_(UNGRADED)), literal("not_assessed")),
                else_=Grade.verdict)


def _basis_column() -> Any:
    """The grade's basis (``measured``/``estimated``: the column the grading pass writes from the explanation);
    no grade, or one that judged nothing, is ``not_assessed``."""
    return case((or_(Grade.verdict.is_(None), Grade.verdict.in_(UNGRADED)), literal("not_assessed")),
                else_=func.coalesce(Grade.basis, literal("measured")))


def sampling_state(code: Any = Parcel.code, outer: Any = Parcel) -> Any:
    """A parcel's sampling state from its live samples: held, incomplete, complete, or none (one look-up:
    the worst state of its samples, 2 held, 1 not complete, 0 complete; none when it has no sample).
    ``code``: the parcel code column of the enclosing query's ``outer``."""
    rank = case((Sample.state.in_(HELD_STATES), 2), (Sample.state != "complete", 1), else_=0)
    worst = func.max(rank)
    state = case((worst == 2, literal("held")), (worst == 1, literal("incomplete")), (worst == 0, literal("complete")))
    return func.coalesce(select(state).where(Sample.parcel_code == code, Sample.deleted_at.is_(None))
                         .correlate(outer).scalar_subquery(), literal("none"))


def _driven_by_index(conditions: list[Any]) -> list[Any]:
    """The scope as one opaque test: SQLite (without statistics) would otherwise walk the county's
    index, every parcel of the county, instead of the R*Tree's few (34 ms for a z17 tile of a
    20,000-parcel county, 2 ms driven by the R*Tree)."""
    return [case((and_(*conditions), 1), else_=0) == 1] if conditions else []


def _chosen(tile: Tile, actor: Actor, limit: Any, where: Iterable[Any], scope: list[Any] | None, least: Any,
            *columns: Any) -> Any:
    """The tile's parcels (index, scope, size), largest first, at most ``limit``: ``columns`` of them."""
    return (select(*columns)
            .where(*(parcel_scope(actor) if scope is None else scope), Parcel.deleted_at.is_(None),
                   *_bbox_filter(tile, Parcel.min_lon, Parcel.min_lat, Parcel.max_lon, Parcel.max_lat),
                   _min_size(tile, least), *where)
            .order_by(Parcel.area_m2.desc(), Parcel.id).limit(limit).correlate(None))


def _parcel_select(tile: Tile, actor: Actor, limit: Any, extra: Iterable[Any], where: Iterable[Any],
                   scope: list[Any] | None = None, least: Any = None) -> Any:
    """The tile's parcels with their properties, largest first, at most ``limit``.

    Two steps: the ids are chosen first (index, scope, size, order, limit) and only those rows get
    the grade, village and sampling-state look-ups; one statement computed them for every candidate
    and sorted them all (a z10 tile of a 100,000-parcel county: every parcel, three sample look-ups each).
    """
    chosen = _chosen(tile, actor, limit, where, scope, least, Parcel.id)
    columns, grade_join = _property_columns()
    return (select(*columns, *extra)
            .select_from(Parcel).outerjoin(Grade, grade_join).outerjoin(Region, Region.code == Parcel.village_code)
            .where(Parcel.id.in_(chosen)))


@functools.cache
def _property_columns() -> tuple[tuple[Any, ...], Any]:
    """The property columns and the grade join, built once: they never change, and building them (the
    sampling-state subquery above all) was a third of the client's time on a small tile (~5 ms of CPU)."""
    return _properties_of(Parcel.__table__.c, Parcel)


def _properties_of(p: Any, outer: Any) -> tuple[tuple[Any, ...], Any]:
    """The property columns of parcel rows ``p`` (``id, code, village_code, land_use`` columns of ``outer``,
    the parcels table or a subquery of it) and the grade join."""
    # (the type as SQL text, not a bound value: the planner then matches ``ix_grades_current_parcel``'s condition)
    grade_join = and_(Grade.subject_type == literal_column("'parcel'"), Grade.subject_code == p.code,
                      Grade.rule_pack == DEFAULT_PACK, Grade.superseded_by.is_(None))
    return (p.id.label("id"), p.code.label("code"), p.village_code.label("village"),
            Region.name.label("village_name"), Region.name_en.label("village_name_en"),
            p.land_use.label("land_use"), Grade.grade.label("grade"), _verdict_column().label("verdict"),
            _basis_column().label("basis"), sampling_state(p.code, outer).label("state")), grade_join


PARCEL_PROPS = ("code", "village", "village_name", "village_name_en", "land_use", "grade", "verdict", "basis",
                "state")


def _parcels(tile: Tile, actor: Actor, limit: int, using: str) -> encode.Encoded:
    if using == "postgis":
        return _postgis_parcels(tile, actor, limit)
    if tile.z <= SIZE_DRIVEN_MAX_ZOOM:  # (few parcels are big enough to draw: the size index finds them)
        where = []
    else:
        where = [Parcel.id.in_(select(_rtree.c.id).where(
            *_bbox_filter(tile, _rtree.c.min_lon, _rtree.c.min_lat, _rtree.c.max_lon, _rtree.c.max_lat)))]
    scope = _driven_by_index(parcel_scope(actor))
    if db.engine.dialect.name != "sqlite":
        where, scope = [], None  # (the Python path on PostgreSQL, for comparison: the bounding-box columns alone)
    result = db.session.execute(_parcel_select(tile, actor, limit, [Parcel.geometry_json], where, scope))
    columns = list(result.keys())
    rows = result.all()
    at = [columns.index(k) for k in PARCEL_PROPS]  # (by position: a Row's getattr was a tenth of a 4,000-parcel tile)
    geometry, ids = columns.index("geometry_json"), columns.index("id")
    return encode.encode("parcels", [r[ids] for r in rows], shapely.from_geojson([r[geometry] for r in rows]),
                         [dict(zip(PARCEL_PROPS, [r[i] for i in at], strict=True)) for r in rows], tile)


class _BoundTile:
    """A stand-in for a tile whose figures are bound parameters, to build a statement once per zoom band and
    scope (``_postgis_parcels``); ``z`` is the real zoom (it chooses the band's index)."""

    def __init__(self, z: int):
        self.z = z

    def bounds_deg(self, _margin: float = 0) -> tuple[Any, Any, Any, Any]:
        return bindparam("w", type_=SAFloat), bindparam("s", type_=SAFloat), bindparam("e", type_=SAFloat), \
            bindparam("n", type_=SAFloat)


_STATEMENTS: dict[tuple[bool, str], Any] = {}


def _postgis_parcels(tile: Tile, actor: Actor, limit: int) -> encode.Encoded:
    """PostGIS's tile of parcels. The statement is built once per zoom band and scope with the tile's figures
    as bound parameters: building and compiling it anew took ~4 ms of client CPU per tile, more than PostGIS
    spends on a z17 tile (bare ``ST_AsMVT`` of its 20 parcels: ~2 ms)."""
    scope = parcel_scope(actor)
    band = tile.z > SIZE_DRIVEN_MAX_ZOOM
    key = (band, " AND ".join(str(c.compile(compile_kwargs={"literal_binds": True})) for c in scope))
    statement = _STATEMENTS.get(key)
    if statement is None:
        if len(_STATEMENTS) > 256:
            _STATEMENTS.clear()
        statement = _STATEMENTS[key] = _postgis_parcels_statement(_BoundTile(tile.z), actor, scope)
    w, s, e, n = tile.bounds_deg(BUFFER)
    data, count = db.session.execute(statement, {
        "tz": tile.z, "tx": tile.x, "ty": tile.y, "tol": tile.units_m(SIMPLIFY_UNITS), "w": w, "s": s, "e": e,
        "n": n, "least": min_size_deg(tile.z), "lim": limit}).one()
    return encode.Encoded(bytes(data or b""), int(count or 0))


def _postgis_parcels_statement(tile: Any, actor: Actor, scope: list[Any]) -> Any:
    geom = literal_column("parcels.geom")
    z, x, y = (bindparam(k, type_=Integer) for k in ("tz", "tx", "ty"))
    near = geom.op("&&")(func.ST_TileEnvelope(z, x, y, literal_column(f"margin => {BUFFER / EXTENT}")))
    # The chosen rows carry what the tile needs (no second fetch of each by id), then get the look-ups.
    chosen = _chosen(tile, actor, bindparam("lim", type_=Integer), [near], scope, bindparam("least", type_=SAFloat),
                     Parcel.id, Parcel.code, Parcel.village_code, Parcel.land_use, geom.label("geom")).subquery("p")
    columns, grade_join = _properties_of(chosen.c, chosen)
    mvt_geom = func.ST_AsMVTGeom(func.ST_Simplify(chosen.c.geom, bindparam("tol", type_=SAFloat)),
                                 func.ST_TileEnvelope(z, x, y), EXTENT, BUFFER, True).label("geom")
    inner = (select(*columns, mvt_geom).select_from(chosen).outerjoin(Grade, grade_join)
             .outerjoin(Region, Region.code == chosen.c.village_code))
    return _mvt_statement(inner, "parcels", "id")


def _mvt_statement(inner: Any, name: str, id_column: str | None) -> Any:
    """``ST_AsMVT`` of the rows whose clipped geometry is not empty. The test is the aggregate's ``FILTER``,
    not a ``WHERE``: PostgreSQL pushed a ``WHERE`` on ``t.geom`` down into ``t`` and computed
    ``ST_AsMVTGeom`` twice a parcel (a fifth of a z12-z13 tile's server time, 1 M-parcel county)."""
    sub = inner.subquery("t")
    args = [literal_column("t"), literal(name), EXTENT, literal("geom")]
    if id_column:
        args.append(literal(id_column))
    drawn = sub.c.geom.is_not(None)
    return select(func.ST_AsMVT(*args).filter(drawn), func.count().filter(drawn)).select_from(sub)


def _as_mvt(inner: Any, name: str, id_column: str | None) -> encode.Encoded:
    data, count = db.session.execute(_mvt_statement(inner, name, id_column)).one()
    return encode.Encoded(bytes(data or b""), int(count or 0))


# --- samples --------------------------------------------------------------------------------------

SAMPLE_PROPS = ("id", "code", "parcel", "state", "flags", "accuracy_m", "collected_at_s", "sampler", "photos")


def _sample_select(tile: Tile, actor: Actor, extra: Iterable[Any]) -> Any:
    return (select(Sample.id.label("id"), Sample.code.label("code"), Sample.parcel_code.label("parcel"),
                   Sample.state.label("state"), Sample.accuracy_m.label("accuracy_m"), *extra)
            .where(*sample_scope(actor), Sample.deleted_at.is_(None), Sample.lat.is_not(None),
                   Sample.lon.is_not(None), *_bbox_filter(tile, Sample.lon, Sample.lat, Sample.lon, Sample.lat))
            .order_by(Sample.id).limit(MAX_SAMPLES))


def _samples(tile: Tile, actor: Actor, using: str) -> encode.Encoded:
    if using == "postgis":
        flags = func.translate(cast(Sample.flags, Text), '[]" ', "")  # ["a", "b"] → a,b (codes have no spaces)
        point = func.ST_Transform(func.ST_SetSRID(func.ST_MakePoint(Sample.lon, Sample.lat), 4326), 3857)
        extra = [func.nullif(flags, "").label("flags"),
                 func.floor(func.extract("epoch", Sample.collected_at)).cast(db.BigInteger).label("collected_at_s"),
                 Sample.created_by.label("sampler"),
                 func.json_array_length(Sample.media).label("photos"),
                 func.ST_AsMVTGeom(point, func.ST_TileEnvelope(tile.z, tile.x, tile.y), EXTENT, BUFFER, True)
                 .label("geom")]
        return _as_mvt(_sample_select(tile, actor, extra), "samples", None)
    rows = db.session.execute(_sample_select(tile, actor, [Sample.lon, Sample.lat, Sample.flags, Sample.collected_at,
                                                           Sample.created_by, Sample.media])).all()

    def props(r: Any) -> dict[str, Any]:
        return {"id": r.id, "code": r.code, "parcel": r.parcel, "state": r.state,
                "flags": ",".join(r.flags or []) or None, "accuracy_m": r.accuracy_m,
                "collected_at_s": int(r.collected_at.timestamp() // 1) if r.collected_at else None,
                "sampler": r.created_by, "photos": len(r.media or [])}
    points = shapely.points(np.array([(r.lon, r.lat) for r in rows], dtype=float).reshape(-1, 2))
    return encode.encode("samples", [None] * len(rows), points,
                         [props(r) for r in rows], tile)


# --- planned points -------------------------------------------------------------------------------

PLANNED_PROPS = ("key", "parcel", "rank", "reason", "device", "device_name", "plan")


def _planned(tile: Tile, actor: Actor) -> encode.Encoded:
    """The open planned points in the tile (``grading.plans``): an official's county's, a device its own.
    Few (hundreds per county), so encoded in Python on both engines."""
    rows = db.session.execute(
        select(PlannedPoint.id, PlannedPoint.key, PlannedPoint.parcel_code, PlannedPoint.rank, PlannedPoint.reason,
               PlannedPoint.lon, PlannedPoint.lat, Device.device_id, Device.name)
        .join(Device, Device.id == PlannedPoint.device_pk)
        .where(PlannedPoint.status == "open",
               *access.planned_point_filter(actor, PlannedPoint.county_code, PlannedPoint.device_pk),
               *_bbox_filter(tile, PlannedPoint.lon, PlannedPoint.lat, PlannedPoint.lon, PlannedPoint.lat))
        .order_by(PlannedPoint.id).limit(MAX_SAMPLES)).all()
    points = shapely.points(np.array([(r.lon, r.lat) for r in rows], dtype=float).reshape(-1, 2))
    props = [{"key": r.key, "parcel": r.parcel_code, "rank": r.rank, "reason": r.reason, "device": r.device_id,
              "device_name": r.name, "plan": int(r.key.split(":", 1)[0])} for r in rows]
    return encode.encode("planned", [r.id for r in rows], points, props, tile)


# --- areas ----------------------------------------------------------------------------------------

AREA_KINDS = ("village", "farm_park")


def refresh_outlines(county: str) -> int:
    """Rebuild the outlines of the county's villages and parks whose parcels changed since the last
    build (all of them the first time). Returns how many were rebuilt.

    Several tile requests may find the outlines stale at once: each rebuilds in a savepoint, and one
    that collides with another's rebuild (a unique row, a locked SQLite file) leaves it to that one
    and draws what is there.
    """
    try:
        with db.session.begin_nested():
            return _refresh_outlines(county)
    except (IntegrityError, OperationalError):
        return 0


def _refresh_outlines(county: str) -> int:
    now = sequence.current()
    built = db.session.scalar(select(func.min(AreaOutline.source_seq)).where(AreaOutline.county_code == county))
    if built is not None and built >= now:
        return 0
    changed = select(Parcel.village_code, Parcel.farm_park_code).where(Parcel.county_code == county)
    if built is not None:
        changed = changed.where(Parcel.seq > built)
    villages: set[str] = set()
    parks: set[str] = set()
    for village, park in db.session.execute(changed.distinct()):
        villages.add(village)
        if park:
            parks.add(park)
    park_rows = db.session.execute(select(FarmPark.code, FarmPark.geometry_json).where(
        FarmPark.county_code == county, *([FarmPark.seq > built] if built is not None else []))).all()
    own = {code: geometry for code, geometry in park_rows if geometry}
    parks.update(code for code, _ in park_rows)
    count = 0
    for kind, codes in (("village", villages), ("farm_park", parks)):
        for code in sorted(codes):
            geometry = own.get(code) if kind == "farm_park" else None
            shape = shapely.from_geojson(geometry) if geometry else _hull(kind, code)
            db.session.execute(AreaOutline.__table__.delete().where(AreaOutline.kind == kind,
                                                                    AreaOutline.code == code))
            if shape is not None:
                minx, miny, maxx, maxy = shape.bounds
                db.session.add(AreaOutline(kind=kind, code=code, county_code=county,
                                           geometry_json=shapely.to_geojson(shape), min_lon=minx, min_lat=miny,
                                           max_lon=maxx, max_lat=maxy, source_seq=now))
            count += 1
    db.session.flush()
    db.session.execute(AreaOutline.__table__.update().where(AreaOutline.county_code == county)
                       .values(source_seq=now))
    return count


def _hull(kind: str, code: str) -> shapely.Geometry | None:
    column = Parcel.village_code if kind == "village" else Parcel.farm_park_code
    corners = [(x, y) for x0, y0, x1, y1 in db.session.execute(
        select(Parcel.min_lon, Parcel.min_lat, Parcel.max_lon, Parcel.max_lat)
        .where(column == code, Parcel.deleted_at.is_(None)))
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    if not corners:
        return None
    hull = shapely.MultiPoint(corners).convex_hull
    return hull if hull.geom_type == "Polygon" else hull.buffer(1e-5)


def _visible_counties(tile: Tile, actor: Actor) -> list[str]:
    return list(db.session.scalars(select(Region.code).where(
        Region.level == "county", *access.region_filter(actor, Region.code, Region.county_code))))


def _areas(tile: Tile, actor: Actor) -> encode.Encoded:
    for county in _visible_counties(tile, actor):
        refresh_outlines(county)
    name = func.coalesce(Region.name, FarmPark.name)
    area_grade = and_(Grade.subject_type == AreaOutline.kind, Grade.subject_code == AreaOutline.code,
                      Grade.rule_pack == DEFAULT_PACK, Grade.superseded_by.is_(None))
    where = [access.county_filter(actor, AreaOutline.county_code),
             *_bbox_filter(tile, AreaOutline.min_lon, AreaOutline.min_lat, AreaOutline.max_lon, AreaOutline.max_lat)]
    if access.assignment_bound(actor):
        where.append(or_(
            and_(AreaOutline.kind == "village", AreaOutline.code.in_(
                select(Region.code).where(Region.level == "village",
                                          *access.region_filter(actor, Region.code, Region.county_code)))),
            and_(AreaOutline.kind == "farm_park", AreaOutline.code.in_(
                select(FarmPark.code).where(*access.farm_park_filter(actor, FarmPark.code, FarmPark.county_code))))))
    stmt = (select(AreaOutline.id, AreaOutline.kind, AreaOutline.code, AreaOutline.geometry_json,
                   name.label("name"), func.coalesce(Region.name_en, FarmPark.name_en).label("name_en"),
                   Grade.grade)
            .outerjoin(Region, and_(AreaOutline.kind == "village", Region.code == AreaOutline.code))
            .outerjoin(FarmPark, and_(AreaOutline.kind == "farm_park", FarmPark.code == AreaOutline.code))
            .outerjoin(Grade, area_grade).where(*where).order_by(AreaOutline.kind.desc(), AreaOutline.code))
    rows = db.session.execute(stmt).all()
    shapes = shapely.from_geojson([r.geometry_json for r in rows])
    props = [{"code": r.code, "name": r.name, "name_en": r.name_en, "kind": r.kind, "grade": r.grade or "not_assessed"}
             for r in rows]
    outlines = encode.encode("areas", [r.id for r in rows], shapes, props, tile)
    # One label point per area (a second layer of the same tile: a tile is a sequence of layers, so the two
    # encodings concatenate), so that a name is written once, not once per tile its outline crosses.
    labels = encode.encode("area_labels", [r.id for r in rows], shapely.point_on_surface(shapes), props, tile)
    return encode.Encoded(outlines.data + labels.data, outlines.features)


def area_geometry_json(kind: str, code: str) -> dict[str, Any] | None:
    """An area's outline as GeoJSON (the console flies to it)."""
    text = db.session.scalar(select(AreaOutline.geometry_json).where(AreaOutline.kind == kind,
                                                                     AreaOutline.code == code))
    return json.loads(text) if text else None


# --- search and the county's extent (the console's map) -------------------------------------------

def county_bbox(county: str) -> list[float] | None:
    """The county's extent from its area outlines (a few hundred rows, not every parcel)."""
    refresh_outlines(county)
    row = db.session.execute(select(func.min(AreaOutline.min_lon), func.min(AreaOutline.min_lat),
                                    func.max(AreaOutline.max_lon), func.max(AreaOutline.max_lat))
                             .where(AreaOutline.county_code == county)).one()
    return None if row[0] is None else [float(v) for v in row]


def find(query: str, actor: Actor) -> dict[str, Any]:
    """A parcel code, village or farm-park code or name, or a bag code the caller may see → where it is."""
    q = query.strip()[:120]
    if not q:
        return {"found": False}
    parcel = db.session.execute(select(Parcel.code, Parcel.geometry_json, Parcel.min_lon, Parcel.min_lat,
                                       Parcel.max_lon, Parcel.max_lat)
                                .where(Parcel.code == q, Parcel.deleted_at.is_(None), *parcel_scope(actor))).first()
    if parcel:
        return {"found": True, "kind": "parcel", "code": parcel.code, "outline": json.loads(parcel.geometry_json),
                "bbox": [parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat]}
    sample = db.session.execute(select(Sample.code, Sample.lon, Sample.lat).where(
        func.upper(Sample.code) == q.upper(), Sample.deleted_at.is_(None), Sample.lat.is_not(None),
        *sample_scope(actor))).first()
    if sample:
        return {"found": True, "kind": "sample", "code": sample.code,
                "bbox": [sample.lon, sample.lat, sample.lon, sample.lat]}
    village = db.session.execute(select(Region.code, Region.county_code).where(
        Region.level == "village", or_(Region.code == q, Region.name == q, Region.name_en == q),
        *access.region_filter(actor, Region.code, Region.county_code)).limit(1)).first()
    park = None if village else db.session.execute(select(FarmPark.code, FarmPark.county_code).where(
        or_(FarmPark.code == q, FarmPark.name == q, FarmPark.name_en == q),
        *access.farm_park_filter(actor, FarmPark.code, FarmPark.county_code)).limit(1)).first()
    for kind, hit in (("village", village), ("farm_park", park)):
        if hit:
            refresh_outlines(hit.county_code)
            outline = db.session.scalar(select(AreaOutline).where(AreaOutline.kind == kind,
                                                                  AreaOutline.code == hit.code))
            if outline is not None:
                return {"found": True, "kind": kind, "code": hit.code, "outline": json.loads(outline.geometry_json),
                        "bbox": [outline.min_lon, outline.min_lat, outline.max_lon, outline.max_lat]}
    return {"found": False}


# --- a subject's page (village, farm park, parcel): the map zoomed to it --------------------------

def area_focus(kind: str, code: str, county: str) -> dict[str, Any] | None:
    """A village's or farm park's outline and extent, for its page's map to fit and draw."""
    refresh_outlines(county)
    row = db.session.execute(select(AreaOutline.geometry_json, AreaOutline.min_lon, AreaOutline.min_lat,
                                    AreaOutline.max_lon, AreaOutline.max_lat)
                             .where(AreaOutline.kind == kind, AreaOutline.code == code)).first()
    if row is None:
        return None
    return {"kind": kind, "code": code, "outline": json.loads(row.geometry_json),
            "bbox": [row.min_lon, row.min_lat, row.max_lon, row.max_lat]}


def parcel_focus(code: str, geometry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A parcel's outline and extent (from the geometry its page already has)."""
    if not geometry:
        return None
    minx, miny, maxx, maxy = shapely.from_geojson(json.dumps(geometry)).bounds
    return {"kind": "parcel", "code": code, "outline": geometry, "bbox": [minx, miny, maxx, maxy]}
