"""Mapbox Vector Tiles encoded in Python (the SQLite engine's path). Plain values, no Flask.

It follows the steps PostGIS's ``ST_AsMVTGeom`` takes, in the same order, so both engines give the
same features for the same tile: Douglas-Peucker simplification in Web Mercator metres (as
``ST_Simplify``), the affine map into tile units (y down), clipping to the tile plus its buffer,
snapping to the integer grid; a geometry that collapses is left out. The protobuf is written by
``mapbox-vector-tile``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from .tilemath import BUFFER, EXTENT, MAX_LAT, SIMPLIFY_UNITS, R, Tile


def _mercator(coords: np.ndarray) -> np.ndarray:
    lon, lat = coords[:, 0], np.clip(coords[:, 1], -MAX_LAT, MAX_LAT)
    return np.column_stack((R * np.radians(lon), R * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))))


def tile_geometry(geometry: shapely.Geometry, tile: Tile, *, simplify: bool = True) -> shapely.Geometry | None:
    """A lon/lat geometry in the tile's units (0..EXTENT, y down), or None when nothing of it is left."""
    geom = shapely.transform(geometry, _mercator)
    if simplify and geom.geom_type in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
        geom = shapely.simplify(geom, tile.units_m(SIMPLIFY_UNITS), preserve_topology=False)
        if geom.is_empty:
            return None
    minx, miny, maxx, maxy = tile.bounds_m()
    scale = EXTENT / (maxx - minx)
    geom = shapely.transform(geom, lambda c: np.column_stack(((c[:, 0] - minx) * scale, (maxy - c[:, 1]) * scale)))
    if geom.geom_type in ("Point", "MultiPoint"):
        x, y = geom.x, geom.y
        if not (-BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER):
            return None
        return shapely.set_precision(geom, 1.0)
    geom = shapely.clip_by_rect(geom, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    if geom.is_empty:
        return None
    geom = shapely.set_precision(shapely.make_valid(geom), 1.0)
    if geom.is_empty or geom.area == 0 and geom.geom_type not in ("Point", "MultiPoint", "LineString"):
        return None
    if geom.geom_type == "GeometryCollection":  # keep the polygonal part, as ST_AsMVTGeom does
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if not parts:
            return None
        geom = shapely.union_all(parts)
    return geom


def encode(name: str, features: Iterable[tuple[int | None, shapely.Geometry, Mapping[str, Any]]],
           tile: Tile, *, simplify: bool = True) -> bytes:
    """One layer: ``features`` are (id or None, lon/lat geometry, properties; None values left out)."""
    items = []
    for fid, geometry, props in features:
        geom = tile_geometry(geometry, tile, simplify=simplify)
        if geom is None:
            continue
        feature: dict[str, Any] = {"geometry": geom,
                                   "properties": {k: v for k, v in props.items() if v is not None}}
        if fid is not None:
            feature["id"] = fid
        items.append(feature)
    if not items:
        return b""  # an empty tile, as ST_AsMVT of no rows
    return mapbox_vector_tile.encode([{"name": name, "features": items}],
                                     default_options={"extents": EXTENT, "y_coord_down": True,
                                                      "on_invalid_geometry": on_invalid_geometry_make_valid})


def decode(data: bytes) -> dict[str, Any]:
    """The layers of a tile as GeoJSON-like dicts in tile units (y down), for tests and the benchmark."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
