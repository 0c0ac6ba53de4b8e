"""Web Mercator tile arithmetic (EPSG:3857, the XYZ scheme every web map uses). Plain values, no Flask.

A tile ``z/x/y`` covers ``2πR / 2^z`` metres; features are clipped to the tile plus a
``BUFFER``-unit margin (of ``EXTENT`` units per side) so that outlines do not show seams, as
PostGIS's ``ST_AsMVTGeom(..., buffer => 64)`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import Problem

R = 6378137.0
HALF = math.pi * R  # 20037508.34...: the edge of the Web Mercator square
MAX_LAT = 85.0511287798066
MAX_ZOOM = 20
EXTENT = 4096
BUFFER = 64
SIMPLIFY_UNITS = 1.0  # Douglas-Peucker tolerance in tile units (of EXTENT): detail finer than this is lost anyway
# A parcel smaller than this (bounding box, both sides) is left out of a tile: 48 units are three pixels of a
# 256-pixel tile, the least that shows any fill inside a one-pixel outline. (It was 4, a quarter pixel: a
# county-wide z10 tile of a 1 M-parcel county then drew its 14,000 largest parcels, each a dot, and took seconds;
# real tile servers drop what is under a pixel or two. The village outlines carry the picture at low zoom.)
MIN_FEATURE_UNITS = 48


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    @property
    def size_m(self) -> float:
        return 2 * HALF / (1 << self.z)

    def bounds_m(self, margin_units: float = 0) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in metres, widened by ``margin_units`` tile units on each side."""
        size = self.size_m
        pad = size * margin_units / EXTENT
        minx = -HALF + self.x * size
        maxy = HALF - self.y * size
        return minx - pad, maxy - size - pad, minx + size + pad, maxy + pad

    def bounds_deg(self, margin_units: float = 0) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees of the (widened) tile."""
        minx, miny, maxx, maxy = self.bounds_m(margin_units)
        (w, s), (e, n) = to_lonlat(minx, miny), to_lonlat(maxx, maxy)
        return w, s, e, n

    def units_m(self, units: float) -> float:
        return self.size_m * units / EXTENT


def to_mercator(lon: float, lat: float) -> tuple[float, float]:
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    return R * math.radians(lon), R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / R), math.degrees(2 * math.atan(math.exp(y / R)) - math.pi / 2)


def parse_tile(z: str, x: str, y: str) -> Tile:
    """A tile from path parts: 400 ``malformed_tile_path`` naming the part when one is not a number
    or lies outside the zoom's grid. A zoom above ``MAX_ZOOM`` is the caller's 404."""
    errors: dict[str, list[str]] = {}
    values = {}
    for name, text in (("z", z), ("x", x), ("y", y)):
        if not text.isascii() or not text.isdigit() or len(text) > 7:
            errors[name] = ["must be a non-negative whole number"]
        else:
            values[name] = int(text)
    if "z" in values and "x" in values and "y" in values and values["z"] <= MAX_ZOOM:
        limit = 1 << values["z"]
        for name in ("x", "y"):
            if values[name] >= limit:
                errors[name] = [f"must be below {limit} at zoom {values['z']}"]
    if errors:
        raise Problem(400, "malformed_tile_path", "The tile path must be /tiles/<layer>/<z>/<x>/<y>.mvt.",
                      fields=errors)
    return Tile(values["z"], values["x"], values["y"])


def tile_for(lon: float, lat: float, z: int) -> Tile:
    """The tile at zoom ``z`` holding a point."""
    x, y = to_mercator(lon, lat)
    n = 1 << z
    size = 2 * HALF / n
    return Tile(z, min(n - 1, max(0, int((x + HALF) // size))), min(n - 1, max(0, int((HALF - y) // size))))
