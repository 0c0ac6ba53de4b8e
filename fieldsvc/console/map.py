"""An SVG map of parcels from their polygons, with no tile server. Plain values in and out, no Flask import.

Longitude and latitude are projected equirectangularly around the map's mean latitude
(``x = lon · cos(lat0)``, ``y = -lat``), which keeps shapes true at county scale, then fitted into
the view box with a margin. Each parcel becomes one ``<path>`` whose ``d`` is built here; the
template wraps it in a link and a ``<title>``, so every string that reaches the page is escaped by Jinja.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

WIDTH = 800
MARGIN = 10

# Colours with strong contrast against the white map and each other (and a pattern-free legend text).
GRADE_COLOURS = {
    "qualified": "#1b7a3a",
    "not_qualified": "#b3261e",
    "indeterminate": "#c25e00",
    "needs_sampling": "#e3c000",
    "not_assessed": "#9aa3a0",  # grey, never red: unsampled land is not failed land
}
_LEGACY = {"not_graded": "not_assessed"}  # the verdict's old name, on rows graded before the rename
SAMPLING_COLOURS = {
    "complete": "#1b5fa8",
    "incomplete": "#c77700",
    "held": "#7a2e8f",
    "none": "#d7dbd9",
}
MODES = {"grade": GRADE_COLOURS, "sampling": SAMPLING_COLOURS}


@dataclass(frozen=True)
class Shape:
    code: str
    d: str
    category: str
    colour: str


@dataclass(frozen=True)
class ParcelMap:
    width: int
    height: int
    shapes: list[Shape]
    legend: list[tuple[str, str, int]]  # (category, colour, count)


def _rings(geometry: Mapping[str, Any]) -> list[list[list[float]]]:
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return [ring for ring in coords if ring]
    if kind == "MultiPolygon":
        return [ring for polygon in coords for ring in polygon if ring]
    return []


def build(parcels: Iterable[tuple[str, Mapping[str, Any], str]], mode: str, width: int = WIDTH) -> ParcelMap:
    """``parcels``: (code, GeoJSON geometry, category); ``mode``: ``grade`` or ``sampling``."""
    colours = MODES[mode]
    items = [(code, _rings(geometry), _LEGACY.get(category, category)) for code, geometry, category in parcels]
    points = [p for _, rings, _ in items for ring in rings for p in ring]
    counts = {category: 0 for category in colours}
    for _, _, category in items:
        counts[category] = counts.get(category, 0) + 1
    legend = [(c, colours.get(c, "#000000"), counts[c]) for c in counts]
    if not points:
        return ParcelMap(width, width // 2, [], legend)
    lat0 = math.radians(sum(p[1] for p in points) / len(points))
    k = max(math.cos(lat0), 0.01)
    min_x = min(p[0] for p in points) * k
    max_x = max(p[0] for p in points) * k
    min_y = -max(p[1] for p in points)
    max_y = -min(p[1] for p in points)
    span_x = max(max_x - min_x, 1e-9)
    span_y = max(max_y - min_y, 1e-9)
    scale = (width - 2 * MARGIN) / span_x
    height = int(min(max(span_y * scale + 2 * MARGIN, 120), width * 1.5))
    scale = min(scale, (height - 2 * MARGIN) / span_y)

    def xy(p: Sequence[float]) -> str:
        return f"{(p[0] * k - min_x) * scale + MARGIN:.1f} {(-p[1] - min_y) * scale + MARGIN:.1f}"

    shapes = []
    for code, rings, category in items:
        if not rings:
            continue
        d = " ".join("M" + " L".join(xy(p) for p in ring) + " Z" for ring in rings)
        shapes.append(Shape(code, d, category, colours.get(category, "#000000")))
    return ParcelMap(width, height, shapes, legend)
