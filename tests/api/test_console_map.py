"""The console's SVG map as a pure function: projection into the view box, colours, legend counts."""

from __future__ import annotations

import re

import pytest

from fieldsvc.console import map as parcel_map
from tests.api.test_console_pages import importer, reviewer, scene  # noqa: F401 (fixtures)


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


def test_subject_pages_map_their_subject_and_a_parcels_samples(app, client, scene, reviewer, county):  # noqa: F811
    """Village, farm-park and parcel pages carry the tile map's settings zoomed to their subject (its
    outline and extent), the parcel page its samples with their GPS accuracy, the overview the surfaces."""
    from tests.api.test_console_pages import map_config, text_of

    _, console = reviewer
    members = [f for f in county.parcels if f["properties"]["village"] == scene.village]
    village = map_config(text_of(console.get(f"/console/village/{scene.village}")))
    assert village["focus"]["kind"] == "village" and village["focus"]["code"] == scene.village
    w, s, e, n = village["bbox"]
    corners = [p for f in members for p in f["geometry"]["coordinates"][0]]
    assert all(w - 1e-9 <= x <= e + 1e-9 and s - 1e-9 <= y <= n + 1e-9 for x, y in corners)
    assert village["focus"]["outline"]["type"] in ("Polygon", "MultiPolygon") and village["surfaces"] is None
    park_code = next(f["properties"]["farm_park"] for f in county.parcels if f["properties"].get("farm_park"))
    park = map_config(text_of(console.get(f"/console/farm-park/{park_code}")))
    assert park["focus"]["kind"] == "farm_park" and park["focus"]["code"] == park_code

    clean = next(f for f in county.parcels if f["properties"]["code"] == scene.clean_parcel)
    parcel = map_config(text_of(console.get(f"/console/parcel/{scene.clean_parcel}")))
    assert parcel["focus"] == {"kind": "parcel", "code": scene.clean_parcel, "outline": clean["geometry"],
                               "bbox": parcel["bbox"]}
    xs = [p[0] for p in clean["geometry"]["coordinates"][0]]
    assert parcel["bbox"][0] == min(xs) and parcel["bbox"][2] == max(xs)
    codes = {p["code"] for p in parcel["points"]}
    assert scene.clean_sample in codes and scene.flagged_sample not in codes  # its own samples only
    assert [p["accuracy_m"] for p in parcel["points"]] == [4.5]
    overview = map_config(text_of(console.get(f"/console/county/{scene.county}")))
    assert "Cd" in overview["surfaces"]["analytes"]
    assert overview["surfaces"]["png"] == f"/console/map/surface/{scene.county}/ANALYTE.png"
