"""Regions, farm parks and parcels over HTTP: import, list, read, edit, delete."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from fieldsvc.audit.models import AuditEvent, EntityVersion
from fieldsvc.audit.services import digest
from fieldsvc.extensions import db
from fieldsvc.places.models import Parcel
from tests.helpers import assert_problem

SQUARE = {"type": "Polygon", "coordinates": [[[115.0, 28.0], [115.001, 28.0], [115.001, 28.001],
                                              [115.0, 28.001], [115.0, 28.0]]]}


def feature(code: str, village: str, **props):
    return {"type": "Feature", "geometry": copy.deepcopy(props.pop("geometry", SQUARE)),
            "properties": {"code": code, "village": village, "land_use": "paddy", **props}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def first_village(county):
    return next(r["code"] for r in county.regions if r["level"] == "village")


def test_county_loads_and_lists_with_cursor(client, admin, county):
    seen, cursor = [], None
    while True:
        resp = client.get("/api/v1/parcels", query_string={"limit": 25, **({"cursor": cursor} if cursor else {})},
                          headers=admin.headers)
        assert resp.status_code == 200
        body = resp.get_json()
        seen += [f["id"] for f in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f["properties"]["code"] for f in county.parcels)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("filter_key", ["village", "farm_park", "land_use"])
def test_parcel_list_filters(client, admin, county, filter_key):
    props = [f["properties"] for f in county.parcels]
    value = next(p[filter_key] for p in props if p.get(filter_key))
    expected = sorted(p["code"] for p in props if p.get(filter_key) == value)
    resp = client.get("/api/v1/parcels", query_string={filter_key: value, "limit": 1000}, headers=admin.headers)
    items = resp.get_json()["items"]
    assert sorted(f["id"] for f in items) == expected
    assert all(f["properties"][filter_key] == value for f in items)


def test_parcel_is_a_geojson_feature_with_computed_area(client, admin, county):
    village = first_village(county)
    resp = client.post("/api/v1/parcels", json=collection(feature("NEW-1", village)), headers=admin.headers)
    assert resp.status_code == 201 and resp.get_json()["computed_areas"] == 1
    got = client.get("/api/v1/parcels/NEW-1", headers=admin.headers).get_json()
    assert got["type"] == "Feature" and got["id"] == "NEW-1"
    assert got["geometry"] == SQUARE
    props = got["properties"]
    assert props["village"] == village and props["county"] == county.county and props["version"] == 1
    # 0.001° x 0.001° at 28°N ≈ 111.3 m x 98.2 m
    assert props["area_computed"] is True and 10_500 < props["area_m2"] < 11_300


@pytest.mark.parametrize(
    "bad_feature, field",
    [
        (feature("B1", "X", geometry={"type": "Polygon", "coordinates": [[[115, 28], [115.1, 28], [115, 28.1]]]}),
         "geometry"),
        (feature("B2", "X", geometry={"type": "Polygon", "coordinates": [[[190, 28], [115.1, 28], [115.1, 28.1],
                                                                          [190, 28]]]}), "geometry"),
        (feature("B3", "X", geometry={"type": "Polygon", "coordinates": [[[115, 28], [115.1, 28.1], [115.1, 28],
                                                                          [115, 28.1], [115, 28]]]}), "geometry"),
        (feature("B4", "999999999999"), "properties.village"),
        (feature("B5", "X", land_use="moon"), "properties.land_use"),
        (feature("B6", "X", area_m2=-3), "properties.area_m2"),
        (feature("B7", "X", farm_park="NOPARK"), "properties.farm_park"),
        ({"type": "Feature", "geometry": SQUARE}, "properties.code"),
        ({"type": "Point"}, "type"),
    ],
)
def test_bad_feature_rejects_whole_import_naming_it(client, admin, county, bad_feature, field):
    village = first_village(county)
    if bad_feature.get("properties", {}).get("village") == "X":
        bad_feature["properties"]["village"] = village
    good = feature("GOOD-1", village)
    before = _parcel_count(client, admin)
    resp = client.post("/api/v1/parcels", json=collection(good, bad_feature), headers=admin.headers)
    body = assert_problem(resp, 422, "validation_failed")
    errors = body["details"]["features"]
    assert [e["index"] for e in errors] == [1]
    assert field in errors[0]["errors"], errors
    assert _parcel_count(client, admin) == before  # all or nothing
    assert_problem(client.get("/api/v1/parcels/GOOD-1", headers=admin.headers), 404, "not_found")


def test_property_errors_name_their_own_feature_after_features_that_are_not_features(client, admin, county):
    """Properties are loaded in one batch; each error still names its feature's index and code."""
    village = first_village(county)
    features = [{"type": "Point"}, feature("P-1", village, land_use="moon"), feature("P-2", village),
                {"type": "Feature", "geometry": SQUARE, "properties": "code"}, feature("P 4", village)]
    resp = client.post("/api/v1/parcels", json=collection(*features), headers=admin.headers)
    errors = assert_problem(resp, 422, "validation_failed")["details"]["features"]
    assert [(e["index"], e["code"], sorted(e["errors"])) for e in errors] == [
        (0, None, ["type"]), (1, "P-1", ["properties.land_use"]),
        (3, None, ["properties.code", "properties.land_use", "properties.village"]),
        (4, "P 4", ["properties.code"])]
    assert_problem(client.get("/api/v1/parcels/P-2", headers=admin.headers), 404, "not_found")


def test_duplicate_codes_in_file_and_in_database_are_errors(client, admin, county):
    village = first_village(county)
    existing = county.parcels[0]["properties"]["code"]
    resp = client.post("/api/v1/parcels", json=collection(feature("D-1", village), feature("D-1", village),
                                                          feature(existing, village)), headers=admin.headers)
    errors = assert_problem(resp, 422, "validation_failed")["details"]["features"]
    assert [e["index"] for e in errors] == [1, 2]
    assert "duplicate code" in errors[0]["errors"]["properties.code"][0]
    assert "already exists" in errors[1]["errors"]["properties.code"][0]


@pytest.mark.parametrize("body", [{"type": "FeatureCollection"}, {"type": "FeatureCollection", "features": []},
                                  {"features": []}, [1, 2]])
def test_not_a_feature_collection_is_422(client, admin, county, body):
    resp = client.post("/api/v1/parcels", json=body, headers=admin.headers)
    assert_problem(resp, 422, "validation_failed")


def test_edit_makes_a_version_and_refuses_stale_base(client, admin, county, app):
    code = county.parcels[0]["properties"]["code"]
    resp = client.patch(f"/api/v1/parcels/{code}", json={"crop": "紫云英", "base_version": 1}, headers=admin.headers)
    assert resp.status_code == 200
    assert resp.get_json()["properties"]["crop"] == "紫云英" and resp.get_json()["properties"]["version"] == 2
    stale = client.patch(f"/api/v1/parcels/{code}", json={"crop": "玉米", "base_version": 1}, headers=admin.headers)
    body = assert_problem(stale, 409, "version_conflict")
    assert body["details"]["current_version"] == 2
    stale_header = client.patch(f"/api/v1/parcels/{code}", json={"crop": "玉米"},
                                headers={**admin.headers, "If-Match": '"1"'})
    assert_problem(stale_header, 409, "version_conflict")
    versions = client.get(f"/api/v1/parcels/{code}/versions", headers=admin.headers).get_json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    crops = [v["data"]["properties"].get("crop") for v in versions]
    assert crops[0] != "紫云英" and crops[1] == "紫云英"


def test_first_version_stays_on_the_row_until_an_edit_stores_it(client, admin, county, app):
    """An import writes no version rows; the versions endpoint reads version 1 off the parcel's row,
    and the first edit stores it, unchanged, before the row changes (nothing overwritten unkept)."""
    village = first_village(county)
    assert client.post("/api/v1/parcels", json=collection(feature("V-1", village, crop="水稻")),
                       headers=admin.headers).status_code == 201

    def stored():
        with app.app_context():
            return db.session.scalars(select(EntityVersion.version).where(
                EntityVersion.entity_type == "parcel", EntityVersion.entity_key == "V-1")).all()

    assert stored() == []
    first = client.get("/api/v1/parcels/V-1/versions", headers=admin.headers).get_json()["items"]
    assert [(v["version"], v["deleted"], v["actor"]) for v in first] == [(1, False, f"user:{admin.username}")]
    current = client.get("/api/v1/parcels/V-1", headers=admin.headers).get_json()
    current["properties"].pop("grade")
    assert first[0]["data"] == current
    assert client.patch("/api/v1/parcels/V-1", json={"crop": "玉米"}, headers=admin.headers).status_code == 200
    assert client.delete("/api/v1/parcels/V-1", headers=admin.headers).status_code == 200
    assert stored() == [1, 2, 3]
    versions = client.get("/api/v1/parcels/V-1/versions", headers=admin.headers).get_json()["items"]
    assert versions[0] == first[0]
    assert [v["data"]["properties"]["crop"] for v in versions] == ["水稻", "玉米", "玉米"]
    with app.app_context():
        created = db.session.scalar(select(AuditEvent.after_digest).where(
            AuditEvent.entity_key == "V-1", AuditEvent.action == "create"))
    assert digest(versions[0]["data"]) == created


def test_geometry_edit_recomputes_computed_area(client, admin, county):
    village = first_village(county)
    client.post("/api/v1/parcels", json=collection(feature("G-1", village)), headers=admin.headers)
    bigger = {"type": "Polygon", "coordinates": [[[115.0, 28.0], [115.002, 28.0], [115.002, 28.001],
                                                  [115.0, 28.001], [115.0, 28.0]]]}
    resp = client.patch("/api/v1/parcels/G-1", json={"geometry": bigger}, headers=admin.headers)
    area = resp.get_json()["properties"]["area_m2"]
    assert 21_000 < area < 22_600
    bad = client.patch("/api/v1/parcels/G-1", json={"geometry": {"type": "Polygon", "coordinates": []}},
                       headers=admin.headers)
    assert_problem(bad, 422, "validation_failed", field="geometry")
    assert client.get("/api/v1/parcels/G-1", headers=admin.headers).get_json()["properties"]["area_m2"] == area


def test_delete_leaves_a_tombstone(client, admin, county, app):
    code = county.parcels[1]["properties"]["code"]
    resp = client.delete(f"/api/v1/parcels/{code}", headers=admin.headers)
    assert resp.status_code == 200 and resp.get_json()["version"] == 2
    assert_problem(client.get(f"/api/v1/parcels/{code}", headers=admin.headers), 410, "deleted")
    assert_problem(client.delete(f"/api/v1/parcels/{code}", headers=admin.headers), 410, "deleted")
    listed = client.get("/api/v1/parcels", query_string={"limit": 1000}, headers=admin.headers).get_json()["items"]
    assert code not in {f["id"] for f in listed}
    with_deleted = client.get("/api/v1/parcels", query_string={"limit": 1000, "include_deleted": "true"},
                              headers=admin.headers).get_json()["items"]
    assert next(f for f in with_deleted if f["id"] == code)["properties"]["deleted"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Parcel).where(Parcel.code == code)) == 1
    versions = client.get(f"/api/v1/parcels/{code}/versions", headers=admin.headers).get_json()["items"]
    assert [v["deleted"] for v in versions] == [False, True]


def test_every_write_is_audited(client, admin, county, app):
    code = county.parcels[2]["properties"]["code"]
    client.patch(f"/api/v1/parcels/{code}", json={"crop": "茶叶"}, headers=admin.headers)
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.entity_key == code)
                                         .order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].actor == f"user:{admin.username}"
    assert events[1].before_digest == events[0].after_digest != events[1].after_digest
    assert events[1].request_id


def test_audit_events_are_append_only(app, client, admin, county):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DatabaseError

    with app.app_context():
        with pytest.raises(DatabaseError):
            db.session.execute(update(AuditEvent).values(actor="forger"))
            db.session.flush()
        db.session.rollback()
        with pytest.raises(DatabaseError):
            db.session.execute(delete(AuditEvent))
            db.session.flush()
        db.session.rollback()


def test_region_hierarchy_is_enforced(client, admin, county):
    township = next(r["code"] for r in county.regions if r["level"] == "township")
    village = first_village(county)
    cases = [
        ({"code": township + "901", "name": "新村", "level": "village", "parent": county.county}, "parent"),
        ({"code": "999999901001", "name": "新村", "level": "village", "parent": township}, "code"),
        ({"code": township + "902", "name": "新村", "level": "village", "parent": "888888888"}, "parent"),
        ({"code": "12345", "name": "x", "level": "county"}, "code"),
        ({"code": township + "903", "name": "", "level": "village", "parent": township}, "name"),
        ({"code": township + "904", "name": "x", "level": "hamlet", "parent": township}, "level"),
    ]
    for body, field in cases:
        assert_problem(client.post("/api/v1/regions", json=body, headers=admin.headers), 422, "validation_failed",
                       field=field)
    dup = client.post("/api/v1/regions", json={"code": village, "name": "x", "level": "village",
                                               "parent": township}, headers=admin.headers)
    assert_problem(dup, 409, "duplicate_code")
    ok = client.post("/api/v1/regions", json={"code": township + "905", "name": "新村", "name_en": "Xin Village",
                                              "level": "village", "parent": township}, headers=admin.headers)
    assert ok.status_code == 201 and ok.get_json()["county"] == county.county
    listed = client.get("/api/v1/regions", query_string={"parent": township, "limit": 1000},
                        headers=admin.headers).get_json()["items"]
    assert township + "905" in {r["code"] for r in listed}


def test_county_scoped_official_sees_and_changes_only_their_county(client, admin, make_account, county):
    other = client.post("/api/v1/regions", json={"code": "361130", "name": "邻县", "level": "county"},
                        headers=admin.headers)
    assert other.status_code == 201
    scoped = make_account("official", county="361130")
    code = county.parcels[0]["properties"]["code"]
    assert_problem(client.get(f"/api/v1/parcels/{code}", headers=scoped.headers), 404, "not_found")
    assert_problem(client.patch(f"/api/v1/parcels/{code}", json={"crop": "x"}, headers=scoped.headers), 404,
                   "not_found")
    assert client.get("/api/v1/parcels", headers=scoped.headers).get_json()["items"] == []
    village = first_village(county)
    resp = client.post("/api/v1/parcels", json=collection(feature("S-1", village)), headers=scoped.headers)
    assert_problem(resp, 422, "validation_failed")
    regions = client.get("/api/v1/regions", query_string={"limit": 1000}, headers=scoped.headers).get_json()
    assert {r["county"] for r in regions["items"]} == {"361130"}
    home = make_account("official", county=county.county)
    assert client.get(f"/api/v1/parcels/{code}", headers=home.headers).status_code == 200


def test_list_limit_and_cursor_are_validated(client, admin, county):
    assert_problem(client.get("/api/v1/parcels?limit=0", headers=admin.headers), 422, "validation_failed",
                   field="limit")
    assert_problem(client.get("/api/v1/parcels?limit=abc", headers=admin.headers), 422, "validation_failed",
                   field="limit")
    assert_problem(client.get("/api/v1/parcels?cursor=%%%", headers=admin.headers), 422, "validation_failed",
                   field="cursor")
    assert_problem(client.get("/api/v1/parcels?land_use=moon", headers=admin.headers), 422, "validation_failed",
                   field="land_use")
    assert_problem(client.get("/api/v1/parcels?bogus=1", headers=admin.headers), 422, "validation_failed",
                   field="bogus")


def test_writes_need_an_official_and_reads_any_role(client, make_account, county):
    lab = make_account("lab")
    code = county.parcels[0]["properties"]["code"]
    assert client.get(f"/api/v1/parcels/{code}", headers=lab.headers).status_code == 200
    assert_problem(client.patch(f"/api/v1/parcels/{code}", json={"crop": "x"}, headers=lab.headers), 403,
                   "forbidden")
    assert_problem(client.post("/api/v1/parcels", json=collection(), headers=lab.headers), 403, "forbidden")


def _parcel_count(client, account) -> int:
    return len(client.get("/api/v1/parcels", query_string={"limit": 1000}, headers=account.headers)
               .get_json()["items"])
