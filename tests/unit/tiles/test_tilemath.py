"""Tile arithmetic and the Python encoder, without a database."""

from __future__ import annotations

import pytest
import shapely

from fieldsvc.errors import Problem
from fieldsvc.tiles import encode
from fieldsvc.tiles.tilemath import EXTENT, HALF, Tile, parse_tile, tile_for, to_lonlat, to_mercator


def test_tile_bounds_cover_the_mercator_square_and_round_trip():
    assert Tile(0, 0, 0).bounds_m() == pytest.approx((-HALF, -HALF, HALF, HALF))
    w, s, e, n = Tile(1, 1, 0).bounds_deg()
    assert (w, e) == pytest.approx((0, 180)) and s == pytest.approx(0, abs=1e-9) and n == pytest.approx(85.0511, 1e-4)
    x, y = to_mercator(115.62, 28.18)
    assert to_lonlat(x, y) == pytest.approx((115.62, 28.18))
    t = tile_for(115.62, 28.18, 15)
    w, s, e, n = t.bounds_deg()
    assert w <= 115.62 <= e and s <= 28.18 <= n


@pytest.mark.parametrize(("z", "x", "y", "field"), [("a", "0", "0", "z"), ("2", "4", "0", "x"), ("2", "0", "4", "y"),
                                                    ("2", "-1", "0", "x"), ("2", "٣", "0", "x"),
                                                    ("12345678", "0", "0", "z")])
def test_parse_tile_names_the_bad_part(z, x, y, field):
    with pytest.raises(Problem) as info:
        parse_tile(z, x, y)
    assert info.value.status == 400 and field in info.value.details["fields"]


def test_zoom_past_the_maximum_parses_for_the_views_404():
    assert parse_tile("25", "99999", "0") == Tile(25, 99999, 0)


def test_encoder_clips_to_the_buffer_snaps_and_drops_what_collapses():
    tile = tile_for(115.62, 28.18, 16)
    w, s, e, n = tile.bounds_deg()
    big = shapely.box(w - 1, s - 1, e + 1, n + 1)  # covers the tile: clipped to tile + buffer
    tiny = shapely.box(w + (e - w) / 2, s + (n - s) / 2, w + (e - w) / 2 + 1e-9, s + (n - s) / 2 + 1e-9)
    out = encode.encode("parcels", [1, 2], [big, tiny], [{"code": "BIG", "grade": None}, {"code": "TINY"}], tile)
    assert out.features == 1
    (feature,) = encode.decode(out.data)["parcels"]["features"]
    assert feature["id"] == 1 and feature["properties"] == {"code": "BIG"}
    assert shapely.geometry.shape(feature["geometry"]).bounds == (-64, -64, EXTENT + 64, EXTENT + 64)
    assert encode.encode("parcels", [], [], [], tile).data == b""


def test_encoder_writes_exterior_rings_clockwise_holes_counter_clockwise_and_points():
    tile = tile_for(115.62, 28.18, 14)
    w, s, e, n = tile.bounds_deg()
    dx, dy = (e - w) / 8, (n - s) / 8
    ring = shapely.box(w + dx, s + dy, w + 7 * dx, s + 7 * dy)
    hole = shapely.box(w + 3 * dx, s + 3 * dy, w + 5 * dx, s + 5 * dy)
    donut = shapely.Polygon(ring.exterior.coords, [hole.exterior.coords])
    out = encode.encode("t", [None, None], [donut, shapely.Point(w + 2 * dx, s + 2 * dy)],
                        [{"code": "D", "n": 1, "x": 1.5, "ok": True}, {"code": "P"}], tile)
    layer = encode.decode(out.data)["t"]
    donut_f, point_f = layer["features"]
    got = shapely.geometry.shape(donut_f["geometry"])
    assert got.is_valid and len(got.interiors) == 1
    assert got.area == pytest.approx(36 * 512 * 512 - 4 * 512 * 512, rel=0.01)
    assert donut_f["properties"] == {"code": "D", "n": 1, "x": 1.5, "ok": True}
    assert point_f["geometry"]["type"] == "Point"
    assert point_f["geometry"]["coordinates"] == pytest.approx([1024, 3072], abs=1)
