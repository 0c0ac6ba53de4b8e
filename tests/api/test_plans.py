"""Sampling plans: ``POST /api/v1/devices/<id>/plan`` → planned points down the device's pull, closed
by a sample on the parcel from every entry path (sync push, OpenRosa, a held sample moved by an
official), scoped by county, in the ``planned`` map layer."""

from __future__ import annotations

import uuid

import mapbox_vector_tile
import pytest
from shapely.geometry import Point, shape
from sqlalchemy import select

from fieldsvc.extensions import db
from tests.api.test_openrosa_api import instance_xml, openrosa, submit
from tests.api.test_sync_push import data_for, parcels_in, push, record, register_device, results, village_codes
from tests.helpers import assert_problem


@pytest.fixture
def phone(client, official, county, make_account):
    villages = village_codes(county, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "device_id": device_id, "parcels": parcels_in(county, villages),
            "url": f"/api/v1/devices/{device_id}/plan"}


def codes(features) -> list[str]:
    return [f["properties"]["code"] for f in features]


def pull_all(client, headers, cursor=None, limit=500, max_pages=200) -> tuple[list[dict], str]:
    changes: list[dict] = []
    for _ in range(max_pages):
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = client.get("/api/v1/sync/pull", query_string=query, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        changes += body["changes"]
        cursor = body["cursor"]
        if not body["has_more"]:
            return changes, cursor
    raise AssertionError("pull never ended")


def planned(changes) -> dict[str, dict]:
    """The device's view of its planned points after applying ``changes`` in order (as a phone does)."""
    store: dict[str, dict] = {}
    for c in changes:
        if c["type"] != "planned_point":
            continue
        if c["deleted"]:
            store.pop(c["id"], None)
        else:
            store[c["id"]] = c["data"]
    return store


def test_plan_comes_down_the_pull_ranked_with_a_point_inside_each_parcel(client, official, phone, county):
    chosen = codes(phone["parcels"][:4])
    results(push(client, phone["headers"], [record(data_for(phone["parcels"][5], "NEAR-1"))]))
    resp = client.post(phone["url"], json={"parcels": chosen}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["plan"] == 1 and body["open"] == 4 and [i["parcel"] for i in body["items"]] == chosen
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    assert {i["reason"] for i in body["items"]} <= {"not_assessed", "needs_sampling", "requested"}
    geoms = {f["properties"]["code"]: shape(f["geometry"]) for f in phone["parcels"]}
    for item in body["items"]:
        assert geoms[item["parcel"]].contains(Point(item["point"]["lon"], item["point"]["lat"]))
        assert 0 < item["nearest_sample_m"] < 5000  # to the sample on another parcel, in metres
    store = planned(pull_all(client, phone["headers"])[0])
    assert sorted(store) == sorted(f"1:{c}" for c in chosen)
    assert [store[f"1:{c}"]["rank"] for c in chosen] == [1, 2, 3, 4]
    assert all(p["status"] == "open" and p["point"]["lat"] for p in store.values())
    # GET answers the same plan
    got = client.get(phone["url"], headers=official.headers).get_json()
    assert got["items"] == body["items"]


def test_a_retry_does_not_duplicate_and_a_new_list_replaces_keeping_the_old(client, official, phone, app):
    from fieldsvc.audit.models import AuditEvent
    from fieldsvc.grading.plan_models import PlannedPoint, SamplingPlan

    first, second = codes(phone["parcels"][:3]), codes(phone["parcels"][2:5])
    assert client.post(phone["url"], json={"parcels": first}, headers=official.headers).status_code == 201
    changes, cursor = pull_all(client, phone["headers"])
    again = client.post(phone["url"], json={"parcels": first}, headers=official.headers)
    assert again.status_code == 200 and again.get_json()["plan"] == 1
    assert pull_all(client, phone["headers"], cursor)[0] == []  # nothing new for the phone
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(PlannedPoint)) == 3
    replaced = client.post(phone["url"], json={"parcels": second}, headers=official.headers)
    assert replaced.status_code == 201 and replaced.get_json()["plan"] == 2
    more, _ = pull_all(client, phone["headers"], cursor)
    store = planned(changes + more)
    assert sorted(store) == sorted(f"2:{c}" for c in second)  # the old points withdrawn (deletes), new ones in
    with app.app_context():
        plans = db.session.scalars(select(SamplingPlan).order_by(SamplingPlan.number)).all()
        assert [(p.number, p.status, p.parcels) for p in plans] == [(1, "replaced", first), (2, "active", second)]
        old = db.session.scalars(select(PlannedPoint).where(PlannedPoint.plan_id == plans[0].id)).all()
        assert {p.status for p in old} == {"withdrawn"} and len(old) == 3
        actions = [(e.action) for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity_type == "device", AuditEvent.entity_key == phone["device_id"]))]
        assert actions.count("plan") == 2  # the retry recorded nothing


@pytest.mark.parametrize("body, field", [
    ({}, "parcels"), ({"parcels": "P1"}, "parcels"), ({"parcels": [7]}, "parcels"),
    ({"parcels": ["NO-SUCH"]}, "parcels"), ({"parcels": ["X"] * 501}, "parcels"),
    ({"parcels": [], "assign": "maybe"}, "assign"),
])
def test_bad_input_is_422_naming_the_field(client, official, phone, body, field):
    assert_problem(client.post(phone["url"], json=body, headers=official.headers), 422, "validation_failed", field)


def test_duplicates_and_unassigned_parcels_are_named_and_assign_adds_them(client, official, phone, county):
    mine = codes(phone["parcels"][:1])
    outside = [c for c in codes(county.parcels) if c not in codes(phone["parcels"])][:2]
    problem = assert_problem(client.post(phone["url"], json={"parcels": mine + mine}, headers=official.headers),
                             422, "validation_failed", "parcels")
    assert "listed twice" in problem["details"]["fields"]["parcels"][0]
    problem = assert_problem(client.post(phone["url"], json={"parcels": mine + outside}, headers=official.headers),
                             422, "validation_failed", "parcels")
    assert outside[0] in problem["details"]["fields"]["parcels"][0]
    resp = client.post(phone["url"], json={"parcels": mine + outside, "assign": True}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    device = client.get(f"/api/v1/devices/{phone['device_id']}", headers=official.headers).get_json()
    assert set(outside) <= set(device["parcels"])
    store = planned(pull_all(client, phone["headers"])[0])
    assert {p["parcel"] for p in store.values()} == set(mine + outside)


def test_another_countys_official_and_device_cannot_plan_or_see(client, official, phone, make_account, county):
    chosen = codes(phone["parcels"][:2])
    # a county's own official and device
    mine = make_account("official", county=county.county)
    sampler = make_account("sampler", county=county.county)
    resp = client.post("/api/v1/devices", json={"name": "County phone", "user": sampler.username,
                                                "villages": village_codes(county, 2)}, headers=mine.headers)
    assert resp.status_code == 201, resp.get_json()
    url = f"/api/v1/devices/{resp.get_json()['device_id']}/plan"
    assert client.post(url, json={"parcels": chosen}, headers=mine.headers).status_code == 201
    other = make_account("official", county="999999")
    for path in (url, phone["url"]):
        assert_problem(client.post(path, json={"parcels": chosen}, headers=other.headers), 404, "not_found")
        assert_problem(client.get(path, headers=other.headers), 404, "not_found")
    assert_problem(client.post(phone["url"], json={"parcels": chosen}, headers=phone["headers"]), 403, "forbidden")
    lab = make_account("lab")
    assert_problem(client.post(phone["url"], json={"parcels": chosen}, headers=lab.headers), 403, "forbidden")
    assert client.post(phone["url"], json={"parcels": chosen}, headers=official.headers).status_code == 201
    other_headers, _ = register_device(client, official, make_account, villages=village_codes(county, 3)[2:])
    assert planned(pull_all(client, other_headers)[0]) == {}  # another device never gets this device's points


def test_a_revoked_device_is_409(client, official, phone):
    client.post(f"/api/v1/devices/{phone['device_id']}/revoke", headers=official.headers)
    assert_problem(client.post(phone["url"], json={"parcels": codes(phone["parcels"][:1])},
                               headers=official.headers), 409, "device_revoked")


def _open(client, official, phone) -> list[str]:
    body = client.get(phone["url"], headers=official.headers).get_json()
    return [i["parcel"] for i in body["items"] if i["status"] == "open"]


def test_a_sync_push_closes_the_point_and_the_phone_hears_it(client, official, phone):
    target, other = phone["parcels"][0], phone["parcels"][1]
    client.post(phone["url"], json={"parcels": codes([target, other])}, headers=official.headers)
    changes, cursor = pull_all(client, phone["headers"])
    rec = record(data_for(target, "PL-1"))
    assert results(push(client, phone["headers"], [rec]))[0]["status"] == "applied"
    assert _open(client, official, phone) == [other["properties"]["code"]]
    more, _ = pull_all(client, phone["headers"], cursor)
    point = planned(changes + more)[f"1:{target['properties']['code']}"]
    assert point["status"] == "closed" and point["closed_by_sample"] == rec["id"] and point["closed_at"]
    # re-sending the same sample (a retry) changes nothing more
    assert results(push(client, phone["headers"], [rec]))[0]["status"] == "duplicate"
    assert pull_all(client, phone["headers"], _)[0] == []


def test_samples_already_on_the_parcel_do_not_close_it_a_new_one_does(client, official, phone):
    target = phone["parcels"][0]
    first = record(data_for(target, "OLD-1"))
    results(push(client, phone["headers"], [first]))
    client.post(phone["url"], json={"parcels": codes([target])}, headers=official.headers)
    edited = record({**first["data"], "note": "re-read"}, rid=first["id"], base_version=1)
    assert results(push(client, phone["headers"], [edited]))[0]["status"] == "applied"  # SamplesChanged
    assert _open(client, official, phone) == [target["properties"]["code"]]
    results(push(client, phone["headers"], [record(data_for(target, "NEW-1"))]))
    assert _open(client, official, phone) == []


def test_an_openrosa_submission_closes_the_point(client, official, phone):
    target = phone["parcels"][0]
    client.post(phone["url"], json={"parcels": codes([target])}, headers=official.headers)
    iid = str(uuid.uuid4())
    openrosa(submit(client, phone["headers"], instance_xml(iid, target, code="OR-PL-1")), 201)
    body = client.get(phone["url"], headers=official.headers).get_json()
    assert body["items"][0]["status"] == "closed" and body["items"][0]["closed_by_sample"] == iid


def test_a_held_sample_moved_onto_the_parcel_by_an_official_closes_it(client, official, phone):
    target = phone["parcels"][0]
    client.post(phone["url"], json={"parcels": codes([target])}, headers=official.headers)
    rec = record(data_for(target, "MV-PL", parcel=target["properties"]["code"] + "X"))  # a typo: held
    assert results(push(client, phone["headers"], [rec]))[0]["status"] == "held"
    assert _open(client, official, phone) == [target["properties"]["code"]]
    moved = client.post(f"/api/v1/samples/{rec['id']}/parcel", json={"parcel": target["properties"]["code"]},
                        headers=official.headers)
    assert moved.status_code == 200, moved.get_json()
    assert _open(client, official, phone) == []


def test_the_console_move_closes_it_too(app, client, official, phone):
    from tests.api.test_console_pages import Console

    target = phone["parcels"][0]
    client.post(phone["url"], json={"parcels": codes([target])}, headers=official.headers)
    rec = record(data_for(target, "MV-C", parcel="TYPO-C"))
    results(push(client, phone["headers"], [rec]))
    console = Console(app)
    console.login(official.username, official.password)
    console.get("/console/queues")
    resp = console.post(f"/console/samples/{rec['id']}/parcel", {"parcel": target["properties"]["code"]})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:400]
    assert _open(client, official, phone) == []


def test_pull_paging_and_byte_budget_keep_every_point_once(client, official, phone, app):
    from fieldsvc.sync.pull import pull_text

    chosen = codes(phone["parcels"][:12])
    client.post(phone["url"], json={"parcels": chosen}, headers=official.headers)
    whole = planned(pull_all(client, phone["headers"])[0])
    paged_changes, _ = pull_all(client, phone["headers"], limit=3)
    assert planned(paged_changes) == whole and len(whole) == len(chosen) >= 8
    ids = [c["id"] for c in paged_changes if c["type"] == "planned_point"]
    assert len(ids) == len(set(ids))
    # a tiny byte budget: pages end early, nothing lost or repeated
    import json

    from fieldsvc.auth.principal import Actor
    from fieldsvc.devices.models import Device

    with app.test_request_context():
        device = db.session.scalar(select(Device).where(Device.device_id == phone["device_id"]))
        actor = Actor(user_id=device.user_id, username="s", role="sampler", county_code=device.county_code,
                      device_pk=device.id, device_id=device.device_id)
        cursor, seen = None, []
        for _ in range(500):
            page = json.loads(pull_text(actor, cursor, 500, max_bytes=600))
            seen += [c["id"] for c in page["changes"] if c["type"] == "planned_point"]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        db.session.rollback()
    assert sorted(seen) == sorted(whole)


def test_losing_the_parcel_from_the_assignment_deletes_its_point_on_the_phone(client, official, phone, county):
    villages = village_codes(county, 2)
    keep = [f for f in phone["parcels"] if f["properties"]["village"] == villages[0]][0]
    lose = [f for f in phone["parcels"] if f["properties"]["village"] == villages[1]][0]
    client.post(phone["url"], json={"parcels": codes([keep, lose])}, headers=official.headers)
    changes, cursor = pull_all(client, phone["headers"])
    resp = client.patch(f"/api/v1/devices/{phone['device_id']}", json={"villages": villages[:1]},
                        headers=official.headers)
    assert resp.status_code == 200
    more, cursor2 = pull_all(client, phone["headers"], cursor)
    assert set(planned(changes + more)) == {f"1:{keep['properties']['code']}"}
    client.patch(f"/api/v1/devices/{phone['device_id']}", json={"villages": villages}, headers=official.headers)
    again, _ = pull_all(client, phone["headers"], cursor2)
    assert set(planned(changes + more + again)) == {f"1:{c}" for c in codes([keep, lose])}


def _tile_features(client, headers, point) -> list[dict]:
    import math

    z = 14
    lat, lon = point["lat"], point["lon"]
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    resp = client.get(f"/tiles/planned/{z}/{x}/{y}.mvt", headers=headers)
    assert resp.status_code == 200
    decoded = mapbox_vector_tile.decode(resp.data)
    return decoded.get("planned", {}).get("features", [])


def test_the_planned_tile_layer_is_scoped(client, official, phone, make_account, county):
    target = phone["parcels"][0]
    body = client.post(phone["url"], json={"parcels": codes([target])}, headers=official.headers).get_json()
    point = body["items"][0]["point"]
    feats = _tile_features(client, official.headers, point)
    assert [f["properties"]["parcel"] for f in feats] == [target["properties"]["code"]]
    assert feats[0]["properties"]["rank"] == 1 and feats[0]["properties"]["device"] == phone["device_id"]
    assert [f["properties"]["parcel"] for f in _tile_features(client, phone["headers"], point)] == \
        [target["properties"]["code"]]
    other_county = make_account("official", county="999999")
    assert _tile_features(client, other_county.headers, point) == []
    other_headers, _ = register_device(client, official, make_account, villages=village_codes(county, 2))
    assert _tile_features(client, other_headers, point) == []  # a device sees its own plan only
    results(push(client, phone["headers"], [record(data_for(target, "TILE-1"))]))
    assert _tile_features(client, official.headers, point) == []  # closed: off the map


def test_the_offline_package_carries_the_open_points_its_cursor_matches(client, official, phone, tmp_path):
    import json
    import sqlite3

    chosen = codes(phone["parcels"][:3])
    client.post(phone["url"], json={"parcels": chosen}, headers=official.headers)
    results(push(client, phone["headers"], [record(data_for(phone["parcels"][0], "PKG-1"))]))  # closes the first
    resp = client.get("/api/v1/sync/package", headers=phone["headers"])
    assert resp.status_code == 200
    path = tmp_path / "p.sqlite3"
    path.write_bytes(resp.data)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, parcel, rank, data FROM planned_points ORDER BY rank").fetchall()
        cursor = dict(conn.execute("SELECT key, value FROM meta"))["cursor"]
    assert [(r[0], r[1], r[2]) for r in rows] == [(f"1:{c}", c, n) for n, c in ((2, chosen[1]), (3, chosen[2]))]
    assert json.loads(rows[0][3])["point"]["lat"]
    after = client.get("/api/v1/sync/pull", query_string={"cursor": cursor}, headers=phone["headers"]).get_json()
    assert after["changes"] == []  # nothing to pull again
