"""The console's SVG map as a pure function: projection into the view box, colours, legend counts."""

from __future__ import annotations

import re

import pytest

from fieldsvc.console import map as parcel_map


def square(lon: float, lat: float, size: float = 0.001) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def numbers(d: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]


def test_parcels_fit_the_view_box_north_up_with_colours_and_counts():
    drawn = parcel_map.build([("A", square(115.0, 28.0), "qualified"), ("B", square(115.01, 28.01), "not_graded"),
                              ("C", {"type": "MultiPolygon", "coordinates": [square(115.02, 28.0)["coordinates"]]},
                               "qualified")], "grade")
    assert [s.code for s in drawn.shapes] == ["A", "B", "C"]
    for shape in drawn.shapes:
        xs, ys = numbers(shape.d)[0::2], numbers(shape.d)[1::2]
        assert all(parcel_map.MARGIN - 0.1 <= x <= drawn.width - parcel_map.MARGIN + 0.1 for x in xs)
        assert all(parcel_map.MARGIN - 0.1 <= y <= drawn.height - parcel_map.MARGIN + 0.1 for y in ys)
    a, b = numbers(drawn.shapes[0].d), numbers(drawn.shapes[1].d)
    assert min(b[1::2]) < min(a[1::2])  # B lies further north: drawn higher (smaller y)
    assert drawn.shapes[0].colour == parcel_map.GRADE_COLOURS["qualified"]
    assert dict((c, n) for c, _, n in drawn.legend) == {"qualified": 2, "not_qualified": 0, "indeterminate": 0,
                                                        "needs_sampling": 0, "not_assessed": 1}
    assert drawn.shapes[1].category == "not_assessed"  # the old word folds into the new one, grey


def test_squares_stay_square_at_their_latitude():
    (shape,) = parcel_map.build([("A", square(115.0, 60.0), "none"), ("B", square(115.5, 60.5), "none")],
                                "sampling").shapes[:1]
    xs, ys = numbers(shape.d)[0::2], numbers(shape.d)[1::2]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    assert width == pytest.approx(height * 0.5, rel=0.05)  # cos(60°) = 0.5: a degree of longitude is half as long


def test_empty_and_unknown_geometry_draw_nothing():
    assert parcel_map.build([], "grade").shapes == []
    assert parcel_map.build([("X", {"type": "Point", "coordinates": [1, 2]}, "none")], "sampling").shapes == []
