"""A village's or farm park's outline as a small SVG path for the public page (no Flask, no coordinates).

The outline is the convex hull of the area (a park's own boundary, else its parcels; a village's
parcels), so no parcel and no household can be picked out of it. It is projected to a local plane
and scaled into a fixed view box: the path's numbers are drawing units, not coordinates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from shapely.geometry import MultiPoint, shape

VIEW_W, VIEW_H, PAD = 200.0, 140.0, 8.0


def outline_path(geometries: Iterable[str | None]) -> str | None:
    """GeoJSON geometry texts (lon/lat) → an SVG path ``d`` inside a 200 × 140 view box, or None."""
    points: list[tuple[float, float]] = []
    for text in geometries:
        if not text:
            continue
        try:
            geom = shape(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        hull = geom.convex_hull
        if hull.geom_type == "Polygon":
            points.extend(hull.exterior.coords)
    if len(points) < 3:
        return None
    lat0 = math.radians(sum(p[1] for p in points) / len(points))
    hull = MultiPoint([(lon * math.cos(lat0), lat) for lon, lat in points]).convex_hull
    if hull.geom_type != "Polygon":
        return None
    xs, ys = zip(*hull.exterior.coords, strict=True)
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    scale = min((VIEW_W - 2 * PAD) / width if width else math.inf, (VIEW_H - 2 * PAD) / height if height else math.inf)
    if not math.isfinite(scale):
        return None
    off_x = (VIEW_W - width * scale) / 2
    off_y = (VIEW_H - height * scale) / 2
    steps = [f"{off_x + (x - min(xs)) * scale:.1f},{off_y + (max(ys) - y) * scale:.1f}" for x, y in zip(xs, ys,
                                                                                                         strict=True)]
    return "M" + " L".join(steps[:-1]) + " Z"
