from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from fieldsvc.errors import Problem
from fieldsvc.places.geometry import (
    MAX_ERRORS,
    area_m2,
    areas_m2,
    bbox,
    centroid,
    check_geometries,
    check_geometries_with_bounds,
    check_geometry,
    distance_to_geometry_m,
    metres_per_degree,
    point_in_geometry,
    to_shape,
)

GEOD = Geod(ellps="WGS84")
A, E2 = 6378137.0, 6.69437999014e-3


def square(lon: float, lat: float, size: float = 0.001, clockwise: bool = False) -> list[list[float]]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return ring[::-1] if clockwise else ring


def polygon(*rings: list) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


SQUARE = polygon(square(115.0, 28.0))
WITH_HOLE = polygon(square(115.0, 28.0, 0.003), square(115.001, 28.001, 0.001, clockwise=True))
TWO_PARTS = {"type": "MultiPolygon", "coordinates": [[square(115.0, 28.0)], [square(115.002, 28.0)]]}
BOWTIE = polygon([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


# --- check_geometry: what is rejected, and how it is explained ----------------------------------


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (None, "geometry must be a GeoJSON object"),
        ([], "geometry must be a GeoJSON object"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", "geometry must be a GeoJSON object"),
        ({"coordinates": [square(0, 0)]}, "geometry has no type"),
        ({"type": 7, "coordinates": [square(0, 0)]}, "geometry type must be a string"),
        ({"type": "Point", "coordinates": [1.0, 2.0]}, "unsupported geometry type Point"),
        ({"type": "polygon", "coordinates": [square(0, 0)]}, "unsupported geometry type polygon"),
        ({"type": "Polygon"}, "coordinates must be an array of rings"),
        ({"type": "Polygon", "coordinates": {"0": 1}}, "coordinates must be an array of rings"),
        (polygon(), "a polygon needs at least one ring"),
        ({"type": "Polygon", "coordinates": [5]}, "ring 0 must be an array of positions"),
        (polygon([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), "ring 0 is not closed"),
        (polygon([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), "ring 0 has fewer than 4 positions"),
        (polygon([]), "ring 0 has fewer than 4 positions"),
        (polygon(square(0, 0), [[0.1, 0.1], [0.2, 0.1], [0.1, 0.2]]), "ring 1 has fewer than 4 positions"),
        (polygon([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [190.0, 1.0], [0.0, 0.0]]),
         "position 3 of ring 0: longitude 190.0 out of range [-180, 180]"),
        (polygon([[0.0, 0.0], [1.0, 0.0], [1.0, -95.5], [0.0, 1.0], [0.0, 0.0]]),
         "position 2 of ring 0: latitude -95.5 out of range [-90, 90]"),
        (polygon([[0.0, 0.0], ["1.0", 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: coordinates must be numbers"),
        (polygon([[0.0, 0.0], [True, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: coordinates must be numbers"),
        (polygon([[0.0, 0.0], [None, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: coordinates must be numbers"),
        (polygon([[0.0, 0.0], [math.nan, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: NaN is not a coordinate"),
        (polygon([[0.0, 0.0], [1.0, math.inf], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: latitude inf out of range [-90, 90]"),
        (polygon([[0.0, 0.0], [10**400, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: longitude inf out of range [-180, 180]"),
        (polygon([[0.0, 0.0], [1.0, 0.0, 5.0, 6.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0 must have 2 or 3 numbers, not 4"),
        (polygon([[0.0, 0.0], [1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0 must have 2 or 3 numbers, not 1"),
        (polygon([[0.0, 0.0], {"lon": 1.0}, [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0 must be a [longitude, latitude] array"),
        (polygon([[0.0, 0.0], [1.0, 0.0, math.nan], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
         "position 1 of ring 0: NaN is not a coordinate"),
        (BOWTIE, "self-intersection at (0.5, 0.5)"),
        (polygon(square(0, 0), square(2, 2)), "hole lies outside shell at (2, 2)"),
        ({"type": "MultiPolygon", "coordinates": []}, "coordinates must be a non-empty array of polygons"),
        ({"type": "MultiPolygon", "coordinates": [[square(0, 0)], [[[5.0, 5.0], [6.0, 5.0], [6.0, 6.0],
                                                                   [5.0, 6.0]]]]},
         "polygon 1: ring 0 is not closed"),
        ({"type": "MultiPolygon", "coordinates": [[square(0, 0)], 3]},
         "polygon 1: coordinates must be an array of rings"),
        ({"type": "MultiPolygon", "coordinates": [[square(0, 0, 1.0)], [square(0.5, 0.5, 1.0)]]},
         "self-intersection at (0.5, 1)"),
    ],
)
def test_invalid_geometry_is_rejected_with_its_reason(geometry: object, message: str) -> None:
    normalised, errors = check_geometry(geometry)
    assert normalised is None
    assert message in errors


def test_every_bad_position_is_reported_not_just_the_first() -> None:
    ring = [[0.0, 0.0], [200.0, 0.0], [1.0, 100.0], [0.0, 1.0], [0.0, 0.0]]
    _, errors = check_geometry(polygon(ring))
    assert errors == [
        "position 1 of ring 0: longitude 200.0 out of range [-180, 180]",
        "position 2 of ring 0: latitude 100.0 out of range [-90, 90]",
    ]


def test_a_hopeless_geometry_stops_after_max_errors() -> None:
    ring = [["x", "y"]] * 1000
    _, errors = check_geometry(polygon(ring))
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == f"stopped after {MAX_ERRORS} errors"


# --- check_geometry: what is accepted, and left as it was ---------------------------------------


@pytest.mark.parametrize(
    "geometry",
    [
        SQUARE,
        polygon(square(115.0, 28.0, clockwise=True)),
        WITH_HOLE,
        TWO_PARTS,
        {"type": "MultiPolygon", "coordinates": [WITH_HOLE["coordinates"], [square(116.0, 28.0)]]},
        polygon(square(-180.0, -90.0, 1.0)),
        polygon(square(179.0, 89.0, 1.0)),
        polygon([[115.0, 28.0, 30.5], [115.001, 28.0, 31.0], [115.001, 28.001, 30.0], [115.0, 28.0, 30.5]]),
    ],
    ids=["square", "clockwise", "hole", "multipolygon", "multi-with-hole", "min-corner", "max-corner", "3d"],
)
def test_valid_geometry_is_returned_unchanged(geometry: dict) -> None:
    normalised, errors = check_geometry(geometry)
    assert errors == []
    assert normalised == geometry
    assert json.dumps(normalised) == json.dumps(geometry)


@pytest.mark.parametrize(
    "coordinate",
    [115, Decimal("115"), Decimal("115.0000001"), 115.0],
)
def test_numbers_of_any_json_type_are_normalised_to_floats(coordinate: object) -> None:
    ring = [[coordinate, 28], [115.001, 28], [115.001, 28.001], [coordinate, 28]]
    normalised, errors = check_geometry(polygon(ring))
    assert errors == []
    assert normalised is not None
    positions = normalised["coordinates"][0]
    assert all(type(v) is float for p in positions for v in p)
    assert positions[0] == [float(coordinate), 28.0]  # type: ignore[arg-type]


def test_tuples_from_shapely_mapping_are_accepted() -> None:
    geometry = {"type": "Polygon", "coordinates": (tuple(tuple(p) for p in square(115.0, 28.0)),)}
    normalised, errors = check_geometry(geometry)
    assert errors == []
    assert normalised == SQUARE


def test_extra_members_are_dropped_from_the_normalised_geometry() -> None:
    normalised, _ = check_geometry({**SQUARE, "bbox": [0, 0, 1, 1], "crs": "EPSG:4326"})
    assert normalised == SQUARE


def test_batch_check_keeps_order_and_agrees_with_single_checks() -> None:
    geoms = [SQUARE, BOWTIE, None, WITH_HOLE, polygon(square(0, 0)[:-1]), TWO_PARTS]
    assert check_geometries(geoms) == [check_geometry(g) for g in geoms]
    assert [bool(errors) for _, errors in check_geometries(geoms)] == [False, True, True, False, True, False]


def test_batch_bounds_are_the_bbox_of_each_accepted_geometry() -> None:
    with_z = polygon([[*p, 12.5] for p in square(115.0, 28.0)])
    geoms = [SQUARE, BOWTIE, None, WITH_HOLE, polygon(square(0, 0)[:-1]), TWO_PARTS, with_z]
    checked, bounds = check_geometries_with_bounds(geoms, max_vertices=100)
    assert checked == check_geometries(geoms, max_vertices=100)
    assert bounds == [None if errors else bbox(g) for g, (_, errors) in zip(geoms, checked, strict=True)]
    assert check_geometries_with_bounds([polygon(square(115.0, 28.0))], max_vertices=4)[1] == [None]


@pytest.mark.parametrize("geoms", [[], [None, "x"], [BOWTIE, BOWTIE]])
def test_batch_check_handles_batches_without_valid_geometries(geoms: list) -> None:
    results = check_geometries(geoms)
    assert len(results) == len(geoms)
    assert all(normalised is None and errors for normalised, errors in results)


# --- fuzz: never raises, always answers one of the two shapes -----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=40,
)
numbers = st.integers(-10**400, 10**400) | st.floats() | st.decimals() | st.sampled_from([0.0, 1.0, 180.0])
positions = st.lists(numbers | st.text(max_size=2) | st.none(), min_size=0, max_size=4)
rings = st.lists(positions, max_size=7).map(lambda r: r + r[:1] if r else r)
polygons = st.lists(rings, max_size=3)
geojson_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString"]) | json_values,
     "coordinates": polygons | st.lists(polygons, max_size=3) | json_values}
)


def assert_well_formed_answer(geometry: object) -> None:
    normalised, errors = check_geometry(geometry)
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    assert (normalised is None) == bool(errors)
    if normalised is not None:
        assert check_geometry(normalised) == (normalised, [])
        assert area_m2(normalised) >= 0.0


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_check_geometry_never_raises_for_any_json_value(value: object) -> None:
    assert_well_formed_answer(value)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(geojson_like)
def test_check_geometry_never_raises_for_polygon_shaped_junk(value: dict) -> None:
    assert_well_formed_answer(value)


@settings(max_examples=100, deadline=None, database=None)
@given(st.floats(-179.0, 178.9), st.floats(-89.0, 88.9), st.floats(1e-5, 0.1))
def test_any_small_square_is_valid_contains_its_centroid_and_has_positive_area(
    lon: float, lat: float, size: float
) -> None:
    geometry = polygon(square(lon, lat, size))
    assert check_geometry(geometry) == (geometry, [])
    assert area_m2(geometry) > 0.0
    assert point_in_geometry(*centroid(geometry), geometry)


# --- areas ------------------------------------------------------------------------------------


def test_area_of_a_small_square_at_the_equator_matches_the_analytic_value() -> None:
    d = math.radians(0.001)
    analytic = A * A * (1.0 - E2) * d * d  # N·cos(0)·dλ × M(0)·dφ; higher-order terms are ~1e-10
    measured = area_m2(polygon(square(0.0, 0.0)))
    assert measured == pytest.approx(analytic, rel=1e-4)
    assert abs(measured - analytic) / analytic < 0.005


@pytest.mark.parametrize("lat", [0.0, 28.0, 45.0, 60.0])
def test_area_of_a_hectare_agrees_with_the_local_scale(lat: float) -> None:
    kx, ky = metres_per_degree(lat)
    ring = [[100.0, lat], [100.0 + 100.0 / kx, lat], [100.0 + 100.0 / kx, lat + 100.0 / ky],
            [100.0, lat + 100.0 / ky], [100.0, lat]]
    assert area_m2(polygon(ring)) == pytest.approx(10_000.0, rel=1e-4)


def test_area_ignores_ring_orientation_and_subtracts_holes() -> None:
    outer, inner = square(115.0, 28.0, 0.003), square(115.001, 28.001, 0.001)
    full, hole = area_m2(polygon(outer)), area_m2(polygon(inner))
    expected = full - hole
    for o in (outer, outer[::-1]):
        for i in (inner, inner[::-1]):
            assert area_m2(polygon(o, i)) == pytest.approx(expected, rel=1e-9)
    assert area_m2(polygon(outer[::-1])) == pytest.approx(full, rel=1e-12)


def test_multipolygon_area_is_the_sum_of_its_parts() -> None:
    parts = [area_m2(polygon(*p)) for p in TWO_PARTS["coordinates"]]
    assert area_m2(TWO_PARTS) == pytest.approx(sum(parts), rel=1e-12)


def test_batch_areas_match_single_areas() -> None:
    geoms = [SQUARE, WITH_HOLE, TWO_PARTS]
    assert areas_m2(geoms) == [area_m2(g) for g in geoms]
    assert areas_m2([]) == []


@pytest.mark.parametrize("function", [area_m2, bbox, centroid, to_shape])
def test_measures_of_a_malformed_geometry_are_a_422(function) -> None:
    with pytest.raises(Problem) as info:
        function(polygon(square(0, 0)[:-1]))
    assert (info.value.status, info.value.code) == (422, "validation_failed")
    assert info.value.details["fields"] == {"geometry": ["ring 0 is not closed"]}


def test_batch_area_names_the_malformed_item() -> None:
    with pytest.raises(Problem) as info:
        areas_m2([SQUARE, None])
    assert info.value.details["fields"] == {"geometry": ["item 1: geometry must be a GeoJSON object"]}


# --- bbox, centroid ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("geometry", "expected"),
    [
        (SQUARE, (115.0, 28.0, 115.001, 28.001)),
        (WITH_HOLE, (115.0, 28.0, 115.003, 28.003)),
        (TWO_PARTS, (115.0, 28.0, 115.003, 28.001)),
    ],
)
def test_bbox_spans_the_exterior_rings(geometry: dict, expected: tuple) -> None:
    assert bbox(geometry) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("geometry", "expected"),
    [
        (SQUARE, (115.0005, 28.0005)),
        (polygon(square(115.0, 28.0, clockwise=True)), (115.0005, 28.0005)),
        (WITH_HOLE, (115.0015, 28.0015)),
        (TWO_PARTS, (115.0015, 28.0005)),
        (polygon([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [0.0, 0.0]]), (1.0, 1.0)),
    ],
)
def test_centroid_is_the_area_centroid(geometry: dict, expected: tuple) -> None:
    assert centroid(geometry) == pytest.approx(expected, abs=1e-9)


# --- points -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "geometry", "inside"),
    [
        (115.0005, 28.0005, SQUARE, True),
        (115.0, 28.0005, SQUARE, True),  # on the boundary counts as inside
        (115.001, 28.001, SQUARE, True),  # a vertex too
        (114.9999, 28.0005, SQUARE, False),
        (115.0015, 28.0015, WITH_HOLE, False),  # in the hole
        (115.0005, 28.0005, WITH_HOLE, True),
        (115.0025, 28.0005, TWO_PARTS, True),  # second part
        (115.0015, 28.0005, TWO_PARTS, False),  # between parts
        (0.0, 0.0, SQUARE, False),
    ],
)
def test_point_in_geometry(lon: float, lat: float, geometry: dict, inside: bool) -> None:
    assert point_in_geometry(lon, lat, geometry) is inside


@pytest.mark.parametrize(("lon", "lat"), [(115.0005, 28.0005), (115.0, 28.0005), (115.001, 28.001)])
def test_distance_is_zero_inside_and_on_the_boundary(lon: float, lat: float) -> None:
    assert distance_to_geometry_m(lon, lat, SQUARE) == 0.0


def test_distance_from_inside_a_hole_is_to_the_hole_edge() -> None:
    kx, _ = metres_per_degree(28.0015)
    assert distance_to_geometry_m(115.0015, 28.0015, WITH_HOLE) == pytest.approx(0.0005 * kx, rel=1e-6)


def test_distance_east_of_a_square_at_the_equator_is_a_times_dlon() -> None:
    geometry = polygon(square(0.0, -0.0005))
    expected = A * math.radians(0.002)
    assert distance_to_geometry_m(0.003, 0.0, geometry) == pytest.approx(expected, rel=1e-9)


def test_distance_to_a_multipolygon_is_to_its_nearest_part() -> None:
    kx, _ = metres_per_degree(28.0005)
    assert distance_to_geometry_m(115.0015, 28.0005, TWO_PARTS) == pytest.approx(0.0005 * kx, rel=1e-6)


@pytest.mark.parametrize("lat", [0.0, 28.0, 45.0, 60.0, -35.0])
@pytest.mark.parametrize("d", [10.0, 300.0, 2_000.0, 10_000.0])
def test_distance_stays_within_the_documented_error_bound(lat: float, d: float) -> None:
    """Diagonally off a corner the nearest point is the corner, so the geodesic is the truth."""
    corner = (100.001, lat)
    geometry = polygon(square(100.0, lat - 0.001))
    kx, ky = metres_per_degree(lat)
    lon_p, lat_p = corner[0] + d / math.sqrt(2) / kx, corner[1] + d / math.sqrt(2) / ky
    _, _, truth = GEOD.inv(lon_p, lat_p, *corner)
    r = 6_371_000.0
    bound = abs(math.tan(math.radians(lat_p))) * truth / r + (truth / r) ** 2 + 1e-12
    assert abs(distance_to_geometry_m(lon_p, lat_p, geometry) - truth) / truth <= bound


def test_distance_wraps_longitudes_across_the_antimeridian() -> None:
    geometry = polygon(square(179.998, 0.0))
    kx, _ = metres_per_degree(0.0005)
    assert distance_to_geometry_m(-179.999, 0.0005, geometry) == pytest.approx(0.002 * kx, rel=1e-6)


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [(181.0, 0.0, "lon"), (0.0, -91.0, "lat"), (math.nan, 0.0, "lon"), ("1", 0.0, "lon"), (True, 0.0, "lon")],
)
@pytest.mark.parametrize("function", [point_in_geometry, distance_to_geometry_m])
def test_bad_point_is_a_422_naming_the_coordinate(function, lon: object, lat: object, field: str) -> None:
    with pytest.raises(Problem) as info:
        function(lon, lat, SQUARE)
    assert info.value.status == 422
    assert list(info.value.details["fields"]) == [field]
