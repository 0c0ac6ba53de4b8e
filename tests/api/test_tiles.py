"""Vector tiles (DESIGN §4.8) on both engines: contents decoded with mapbox-vector-tile's decoder and
compared with the database, PostGIS's ST_AsMVT against the Python encoder on the same data, scoping
(another county's parcel in the same tile never shows), ETag/304 and a changed ETag after an edit,
400/404 for bad paths, the byte cap, the console's session cookie and a device's assignment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from sqlalchemy import select

from fieldsvc.extensions import db
from fieldsvc.places.models import Parcel
from fieldsvc.tiles import encode, services
from fieldsvc.tiles.tilemath import EXTENT, MIN_FEATURE_UNITS, Tile, tile_for
from tests.api.test_console_pages import Console, centre, push, record, sample_data
from tests.helpers import assert_problem

MVT = "application/vnd.mapbox-vector-tile"


def county_tile(county, z: int) -> Tile:
    shapes = [shapely.geometry.shape(f["geometry"]) for f in county.parcels]
    c = shapely.union_all(shapes).centroid
    return tile_for(c.x, c.y, z)


def features(data: bytes, layer: str) -> dict[str, dict]:
    decoded = encode.decode(data) if data else {}
    return {f["properties"]["code"]: f for f in decoded.get(layer, {}).get("features", [])}


def expected_parcels(county, tile: Tile, skip: set[str] = frozenset()) -> dict[str, shapely.Geometry]:
    """What the tile should hold, straight from the county's GeoJSON: every parcel that keeps some area
    inside the tile plus its buffer and is not under the zoom's minimum size (``MIN_FEATURE_UNITS`` tile
    units of longitude, on its longer side in degrees)."""
    least = 360.0 / (1 << tile.z) * MIN_FEATURE_UNITS / EXTENT
    out = {}
    for f in county.parcels:
        code = f["properties"]["code"]
        shape = shapely.geometry.shape(f["geometry"])
        x0, y0, x1, y1 = shape.bounds
        if code in skip or (x1 - x0 < least and y1 - y0 < least):
            continue
        geom = encode.tile_geometry(shape, tile)
        if geom is not None:
            out[code] = geom
    return out


def assert_same_shape(decoded: dict, geom: shapely.Geometry, tolerance: float = 2.0) -> None:
    got = shapely.geometry.shape(decoded["geometry"])
    assert got.bounds == pytest.approx(geom.bounds, abs=tolerance)
    assert got.area == pytest.approx(geom.area, rel=0.1, abs=4 * tolerance * (geom.length or 1))


@pytest.fixture
def device(client, official, make_account, county):
    """A phone assigned to the county's first village, with two samples pushed on its parcels."""
    sampler = make_account("sampler")
    village = sorted({f["properties"]["village"] for f in county.parcels})[0]
    resp = client.post("/api/v1/devices", json={"name": "Phone", "user": sampler.username, "villages": [village],
                                                "parcels": []}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    members = [f for f in county.parcels if f["properties"]["village"] == village]
    out = push(client, headers, record(sample_data(members[0], "TB-1")),
               record(sample_data(members[1], "TB-2", location={"lat": 0.0, "lon": 0.0, "accuracy_m": 3.0,
                                                                 "mock": False})),
               record(sample_data(members[2], "TB-3", location={**centre_of(members[2]), "accuracy_m": 80.0,
                                                                 "mock": False})))
    assert all(r["status"] in ("applied", "held") for r in out), out
    return {"headers": headers, "village": village, "members": [f["properties"]["code"] for f in members]}


def centre_of(feature: dict) -> dict[str, float]:
    lat, lon = centre(feature)
    return {"lat": lat, "lon": lon}


def get(client, path: str, headers: dict | None = None, **kwargs):
    return client.get(path, headers=headers or {}, **kwargs)


def test_parcel_tile_holds_exactly_the_parcels_of_the_database(client, official, county, device):
    for z in (12, 13, 15, 17):
        tile = county_tile(county, z)
        resp = get(client, f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt", official.headers)
        assert resp.status_code == 200 and resp.mimetype == MVT
        got = features(resp.data, "parcels")
        want = expected_parcels(county, tile)
        assert set(got) == set(want) and want, (z, set(got) ^ set(want))
        by_code = {f["properties"]["code"]: f["properties"] for f in county.parcels}
        for code, feature in got.items():
            props = feature["properties"]
            assert props["village"] == by_code[code]["village"] and props["land_use"] == by_code[code]["land_use"]
            assert props["verdict"] == "not_assessed" and props["basis"] == "not_assessed"
            if code == device["members"][0]:
                assert props["state"] == "complete"
            elif code not in device["members"][:3]:
                assert props["state"] == "none"
            assert_same_shape(feature, want[code])


def test_sample_tile_has_the_pushed_point_with_its_properties(client, official, county, device):
    members = {f["properties"]["code"]: f for f in county.parcels}
    lat, lon = centre(members[device["members"][0]])  # where sample_data put TB-1
    tile = tile_for(lon, lat, 16)
    resp = get(client, f"/tiles/samples/{tile.z}/{tile.x}/{tile.y}.mvt", official.headers)
    got = features(resp.data, "samples")
    assert "TB-1" in got and "TB-2" not in got  # TB-2 lies at 0,0 (null island), far from this tile
    low = features(get(client, f"/tiles/samples/13/{tile.x // 8}/{tile.y // 8}.mvt", official.headers).data,
                   "samples")["TB-3"]["properties"]
    assert low["flags"] == "low_accuracy" and low["accuracy_m"] == 80.0
    props = got["TB-1"]["properties"]
    assert props["parcel"] == device["members"][0] and props["accuracy_m"] == 4.5 and props["state"] == "complete"
    assert props["photos"] == 0 and "flags" not in props
    assert props["collected_at_s"] == int(datetime(2026, 11, 20, 0, 30, tzinfo=UTC).timestamp())
    x, y = got["TB-1"]["geometry"]["coordinates"]
    want = encode.tile_geometry(shapely.Point(lon, lat), tile)
    assert (x, y) == pytest.approx((want.x, want.y), abs=1)


def test_postgis_and_python_encoders_give_the_same_features(app, client, official, county, device):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PostGIS against the Python encoder on the same PostgreSQL data")
    from fieldsvc.auth.principal import SYSTEM

    with app.app_context():
        for z in (12, 14, 15, 16, 17):
            tile = county_tile(county, z)
            for layer in ("parcels", "samples"):
                pg = services.render(layer, tile, SYSTEM, max_bytes=10**7, using="postgis")
                py = services.render(layer, tile, SYSTEM, max_bytes=10**7, using="python")
                a, b = features(pg, layer), features(py, layer)
                assert set(a) == set(b), (layer, z, set(a) ^ set(b))
                for code in a:
                    assert a[code]["properties"] == b[code]["properties"]
                    assert a[code].get("id") == b[code].get("id")
                    assert_same_shape(a[code], shapely.geometry.shape(b[code]["geometry"]), 1.0)


def test_another_countys_parcel_in_the_same_tile_never_shows(client, admin, make_account, county):
    code = county.parcels[0]["properties"]["code"]
    ring = county.parcels[0]["geometry"]["coordinates"][0]
    for body in ({"code": "360199", "name": "Other", "name_en": "Other", "level": "county"},
                 {"code": "360199001", "name": "T", "name_en": "T", "level": "township", "parent": "360199"},
                 {"code": "360199001001", "name": "V", "name_en": "V", "level": "village", "parent": "360199001"}):
        assert client.post("/api/v1/regions", json=body, headers=admin.headers).status_code == 201
    shifted = [[x + 0.00001, y + 0.00001] for x, y in ring]
    resp = client.post("/api/v1/parcels", headers=admin.headers, json={"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [shifted]},
         "properties": {"code": "OTHER-1", "village": "360199001001", "land_use": "paddy"}}]})
    assert resp.status_code == 201, resp.get_json()
    scoped = make_account("official", county=county.county)
    lon, lat = shapely.geometry.shape(county.parcels[0]["geometry"]).centroid.coords[0]
    for z in (13, 16):  # (at z12 this parcel is under the minimum size)
        tile = tile_for(lon, lat, z)
        path = f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt"
        mine = features(get(client, path, scoped.headers).data, "parcels")
        everyone = features(get(client, path, admin.headers).data, "parcels")
        assert code in mine and "OTHER-1" not in mine
        assert "OTHER-1" in everyone
        areas = features(get(client, f"/tiles/areas/{tile.z}/{tile.x}/{tile.y}.mvt", scoped.headers).data, "areas")
        assert "360199001001" not in areas


def test_etag_revalidates_and_changes_after_an_edit(client, official, county):
    tile = county_tile(county, 14)
    path = f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt"
    first = get(client, path, official.headers)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache" and "Authorization" in first.headers["Vary"]
    again = get(client, path, {**official.headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    code = next(iter(features(first.data, "parcels")))
    old = features(first.data, "parcels")[code]["properties"]["land_use"]
    new_use = "tea" if old != "tea" else "orchard"
    resp = client.patch(f"/api/v1/parcels/{code}", json={"land_use": new_use}, headers=official.headers)
    assert resp.status_code == 200, resp.get_json()
    after = get(client, path, {**official.headers, "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert features(after.data, "parcels")[code]["properties"]["land_use"] == new_use


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/tiles/parcels/a/0/0.mvt", 400, "z"),
    ("/tiles/parcels/3/8/0.mvt", 400, "x"),
    ("/tiles/parcels/3/0/-1.mvt", 400, "y"),
    ("/tiles/parcels/3/0/1e3.mvt", 400, "y"),
    ("/tiles/parcels/21/0/0.mvt", 404, None),
    ("/tiles/roads/3/0/0.mvt", 404, None),
])
def test_malformed_path_is_400_naming_the_part_and_past_max_zoom_404(client, official, path, status, field):
    resp = get(client, path, official.headers)
    if status == 400:
        assert_problem(resp, 400, "malformed_tile_path", field=field)
    else:
        assert_problem(resp, 404, "not_found")


def test_tiles_need_a_signed_in_caller_and_planned_is_empty_without_plans(client, official, county):
    assert get(client, "/tiles/parcels/3/0/0.mvt").status_code == 401
    resp = get(client, "/tiles/planned/14/0/0.mvt", official.headers)
    assert resp.status_code == 200 and resp.data == b"" and resp.headers["ETag"]


def test_a_full_tile_keeps_its_largest_parcels_under_the_byte_cap(app, client, official, county):
    tile = county_tile(county, 13)
    path = f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt"
    full = features(get(client, path, official.headers).data, "parcels")
    app.config["TILE_MAX_BYTES"] = 1500
    capped = get(client, path, official.headers)
    kept = features(capped.data, "parcels")
    assert len(capped.data) <= 1500 and 0 < len(kept) < len(full)
    with app.app_context():
        area = dict(db.session.execute(select(Parcel.code, Parcel.area_m2)).all())
    assert min(area[c] for c in kept) >= max(area[c] for c in full if c not in kept) * 0.999


def test_console_session_cookie_reads_tiles(app, official, county):
    console = Console(app)
    console.login(official.username, official.password)
    tile = county_tile(county, 14)
    resp = console.get(f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert resp.status_code == 200 and features(resp.data, "parcels")
    assert app.test_client().get(f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt").status_code == 401


def test_device_token_sees_only_its_assignment(client, county, device):
    tile = county_tile(county, 13)  # (at z12 the small county's parcels are under the minimum size)
    got = features(get(client, f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt", device["headers"]).data,
                   "parcels")
    assert got and set(got) <= set(device["members"])
    areas = features(get(client, f"/tiles/areas/{tile.z}/{tile.x}/{tile.y}.mvt", device["headers"]).data, "areas")
    assert {c for c, f in areas.items() if f["properties"]["kind"] == "village"} == {device["village"]}


def test_area_outlines_carry_names_and_follow_new_parcels(client, official, county):
    tile = county_tile(county, 12)
    path = f"/tiles/areas/{tile.z}/{tile.x}/{tile.y}.mvt"
    areas = features(get(client, path, official.headers).data, "areas")
    villages = {f["properties"]["village"] for f in county.parcels}
    assert villages <= set(areas)
    names = {r["code"]: r["name"] for r in county.regions}
    for code in villages:
        assert areas[code]["properties"]["name"] == names[code] and areas[code]["properties"]["kind"] == "village"
    parks = {p["code"] for p in county.farm_parks}
    assert {c for c, f in areas.items() if f["properties"]["kind"] == "farm_park"} <= parks


def test_map_library_is_served_from_our_origin(client):
    from fieldsvc.tiles.assets import FILES

    if not FILES["ol.js"].is_file():
        import os

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node_modules/ol is missing: make install runs npm ci")
        pytest.skip("npm ci has not run (make install does it)")
    for name, kind in (("ol.js", "javascript"), ("ol.css", "css"), ("map.js", "javascript")):
        resp = client.get(f"/maps/{name}")
        assert resp.status_code == 200 and kind in resp.mimetype and resp.headers["ETag"] and resp.get_data()
        resp.close()
        again = client.get(f"/maps/{name}", headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status_code == 304
        again.close()
    assert_problem(client.get("/maps/../package.json"), 404, "not_found")
    assert_problem(client.get("/maps/ol.d.ts"), 404, "not_found")


@pytest.mark.parametrize(("url", "source"), [
    ("", ""),
    ("https://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org"),
    ("https://{a-c}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
    ("http://127.0.0.1:8123/{z}/{x}/{y}.png", "http://127.0.0.1:8123"),
    ("javascript:alert(1)", ""),
])
def test_csp_allows_our_origin_and_the_basemap_host_only(app, url, source):
    from fieldsvc.console.views import basemap_source, content_security_policy

    assert basemap_source(url) == source
    csp = content_security_policy(url)
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert csp.count("http") == (2 if source else 0)  # img-src and connect-src name it, nothing else does


def test_map_search_finds_parcels_villages_and_bag_codes_in_scope(app, client, official, make_account, county,
                                                                  device):
    console = Console(app)
    console.login(official.username, official.password)
    parcel = county.parcels[0]
    hit = console.get("/console/map/find", query_string={"q": parcel["properties"]["code"]}).get_json()
    w, s, e, n = hit["bbox"]
    x, y = shapely.geometry.shape(parcel["geometry"]).centroid.coords[0]
    assert hit["found"] and hit["kind"] == "parcel" and w <= x <= e and s <= y <= n
    assert console.get("/console/map/find", query_string={"q": "tb-1"}).get_json()["kind"] == "sample"
    village = next(r for r in county.regions if r["code"] == device["village"])
    by_name = console.get("/console/map/find", query_string={"q": village["name"]}).get_json()
    assert by_name["kind"] == "village" and by_name["code"] == village["code"] and by_name["outline"]["type"]
    assert console.get("/console/map/find", query_string={"q": "nothing"}).get_json() == {"found": False}
    other = make_account("official", county="360199")
    elsewhere = Console(app)
    elsewhere.login(other.username, other.password)
    assert elsewhere.get("/console/map/find", query_string={"q": "tb-1"}).get_json() == {"found": False}


def test_outlines_rebuilt_by_two_requests_at_once_do_not_fail_either(app, county, monkeypatch):
    """A request whose rebuild collides with another's (a unique row) gives way: no error, its savepoint undone."""
    from sqlalchemy import func
    from sqlalchemy.exc import IntegrityError

    from fieldsvc.tiles.models import AreaOutline

    with app.app_context():
        assert services.refresh_outlines(county.county) > 0
        db.session.execute(AreaOutline.__table__.update().values(source_seq=0))  # stale again
        original = services._refresh_outlines

        def colliding(code: str) -> int:
            original(code)
            raise IntegrityError("INSERT INTO area_outlines", {}, Exception("uq_area_outlines_kind_code"))

        monkeypatch.setattr(services, "_refresh_outlines", colliding)
        assert services.refresh_outlines(county.county) == 0
        assert db.session.scalar(select(func.max(AreaOutline.source_seq))) == 0  # the savepoint was undone
        db.session.rollback()


def square(lon: float, lat: float, side_deg: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + side_deg, lat], [lon + side_deg, lat + side_deg],
                                                [lon, lat + side_deg], [lon, lat]]]}


def test_low_zoom_draws_only_parcels_big_enough_to_see(client, official, county):
    """At z10-z11 (the size index finds the parcels on SQLite, the planner chooses on PostgreSQL) a
    county-wide tile leaves out parcels under three pixels: the demo parcels are gone, a large one stays."""
    village = county.parcels[0]["properties"]["village"]
    lon, lat = county.parcels[0]["geometry"]["coordinates"][0][0]
    big = {"type": "Feature", "geometry": square(lon - 0.01, lat - 0.01, 0.006),
           "properties": {"code": "BIG-1", "village": village, "land_use": "grassland"}}
    resp = client.post("/api/v1/parcels", json={"type": "FeatureCollection", "features": [big]},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    everything = [*county.parcels, big]
    for z in (10, 11, 12):
        tile = tile_for(lon - 0.008, lat - 0.008, z)
        got = features(get(client, f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt", official.headers).data,
                       "parcels")
        want = expected_parcels(type(county)(**{**county.__dict__, "parcels": everything}), tile)
        assert set(got) == set(want) and "BIG-1" in got, (z, set(got) ^ set(want))
        assert len(want) < len(everything)  # (the small ones are left out)
        assert_same_shape(got["BIG-1"], want["BIG-1"])
    assert services.min_size_deg(11) * 2 == pytest.approx(services.min_size_deg(10))


def test_cached_tile_is_read_back_until_parcels_samples_or_grades_change(app, client, official, make_account,
                                                                        county, monkeypatch, device):
    """The second read of a tile renders nothing; an edit, a pushed sample or a new grade (the event chain)
    makes the next read render afresh and show the change; another county's official never gets the tile.
    Tiles from z14 on (many, cheap) are not kept."""
    tile = county_tile(county, 13)
    path = f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt"
    built: list[Tile] = []
    original = services._parcels

    def counting(*args, **kwargs):
        built.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "_parcels", counting)
    first = get(client, path, official.headers)
    assert len(built) == 1
    again = get(client, path, official.headers)
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"] and len(built) == 1
    other = make_account("official", county="360199")
    assert features(get(client, path, other.headers).data, "parcels") == {} and len(built) == 2

    shown = features(first.data, "parcels")
    code = next(c for c in device["members"][3:] if c in shown)
    assert shown[code]["properties"]["state"] == "none"
    member = next(f for f in county.parcels if f["properties"]["code"] == code)
    assert push(client, device["headers"], record(sample_data(member, "TB-9")))[0]["status"] == "applied"
    after = features(get(client, path, official.headers).data, "parcels")
    assert after[code]["properties"]["state"] == "complete" and len(built) == 3

    get(client, path, official.headers)
    assert len(built) == 3
    with app.app_context():  # a grade written without an event (as a county run's first grades): the version moves
        from fieldsvc.grading.models import Grade

        before = cache_version()
        db.session.add(Grade(subject_type="parcel", subject_code=code, rule_pack="other", rule_pack_version="1",
                             verdict="qualified", qualified=True, explanation={}, fingerprint="f", inputs={},
                             computed_by="test"))
        db.session.commit()
        assert cache_version() != before
    get(client, path, official.headers)
    assert len(built) == 4
    high = county_tile(county, 14)
    for _ in range(2):
        get(client, f"/tiles/parcels/{high.z}/{high.x}/{high.y}.mvt", official.headers)
    assert len(built) == 6


def cache_version() -> str:
    from fieldsvc.tiles import cache

    return cache.data_version()


def test_numpy_polygon_commands_equal_the_per_feature_path():
    """encode.py writes simple polygons' commands for the whole tile at once: the same commands as
    ``_commands`` ring by ring, for odd rings too (repeated points, reversed, collapsed, closing point
    repeated, no area) and for parcels of the demo county mapped into a tile."""
    import numpy as np

    from fieldsvc.places.demo_data import generate_county

    odd = [shapely.Polygon([(0, 0), (0, 0), (10, 0), (10, 10), (0, 10)]),
           shapely.Polygon([(0, 0), (0, 10), (10, 10), (10, 0)]),
           shapely.Polygon([(0, 0), (5, 0), (5, 0), (0, 0.0001)]),
           shapely.Polygon([(3, 3), (9, 3), (9, 9), (3, 3), (3, 3)]),
           shapely.Polygon([(1, 1), (2, 1), (3, 1)]),
           shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (2, 4), (4, 4), (4, 2)]]),
           shapely.MultiPolygon([shapely.box(0, 0, 5, 5), shapely.box(8, 8, 9, 9)]),
           None]
    county = generate_county(seed=7, parcels=400, townships=2, villages=20)
    tile = county_tile(county, 15)
    parcels = encode.tile_geometries(np.array([shapely.geometry.shape(f["geometry"]) for f in county.parcels]), tile)
    shapes = np.array(odd + list(parcels), dtype=object)

    def normal(x):
        return x if x and x[1] else None

    fast = [normal(x) for x in encode._all_commands(shapes)]
    slow = [normal(encode._commands(g)) if g is not None else None for g in shapes]
    assert fast == slow and sum(x is not None for x in fast) > 20


def test_parcel_tiles_tell_measured_estimated_and_not_assessed_grades_apart(app, client, official, county):
    """A county run over ten sampled parcels grades them measured and values their neighbours as estimates: each
    parcel's tile properties say what its grade API says (the grade's ``basis`` column, not its explanation)."""
    from tests.api.test_grading_api import graded_village

    dry = graded_village(app, client, official, county)
    seen = set()
    for z in (13, 14, 15):
        lon, lat = centre(dry[0])[1], centre(dry[0])[0]
        tile = tile_for(lon, lat, z)
        for code, feature in features(get(client, f"/tiles/parcels/{z}/{tile.x}/{tile.y}.mvt",
                                          official.headers).data, "parcels").items():
            grade = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
            props = feature["properties"]
            assert props["basis"] == grade.get("basis", "not_assessed"), (code, props, grade)
            assert props["verdict"] == ("not_assessed" if grade.get("basis", "not_assessed") == "not_assessed"
                                        else grade["verdict"])
            seen.add(props["basis"])
    assert {"measured", "estimated"} <= seen, seen
