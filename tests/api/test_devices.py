"""Device registration, assignment, provisioning QR, revocation, last_seen_at."""

from __future__ import annotations

import base64
import io

import zxingcpp
from PIL import Image

from tests.helpers import assert_problem


def villages(county, n=2):
    return [r["code"] for r in county.regions if r["level"] == "village"][:n]


def register(client, official, county, make_account, **overrides):
    sampler = make_account("sampler")
    body = {"name": "Phone A", "user": sampler.username, "villages": villages(county), "parcels": []}
    body.update(overrides)
    return client.post("/api/v1/devices", json=body, headers=official.headers)


def test_register_shows_token_once_and_device_acts_as_sampler(client, official, county, make_account):
    resp = register(client, official, county, make_account)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["device_id"].startswith("dev_") and body["token"].startswith("fsd_")
    assert body["villages"] == sorted(villages(county))
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).get_json()
    assert me["role"] == "sampler" and me["device_id"] == body["device_id"]
    again = client.get(f"/api/v1/devices/{body['device_id']}", headers=official.headers).get_json()
    assert "token" not in again and again["last_seen_at"] is not None


def test_provisioning_qr_carries_server_and_token(client, official, county, make_account, app):
    body = register(client, official, county, make_account).get_json()
    prefix = "data:image/png;base64,"
    assert body["provisioning_qr_url"].startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(body["provisioning_qr_url"][len(prefix):])))
    decoded = [r.text for r in zxingcpp.read_barcodes(image)]
    assert len(decoded) == 1
    assert decoded[0].startswith(app.config["PUBLIC_BASE_URL"] + "/field/#")
    assert f"token={body['token']}" in decoded[0] and f"device={body['device_id']}" in decoded[0]


def test_device_sees_only_assigned_parcels(client, official, county, make_account):
    body = register(client, official, county, make_account, villages=villages(county, 1)).get_json()
    device = {"Authorization": f"Bearer {body['token']}"}
    items = client.get("/api/v1/parcels", query_string={"limit": 1000}, headers=device).get_json()["items"]
    expected = {f["properties"]["code"] for f in county.parcels if f["properties"]["village"] == villages(county, 1)[0]}
    assert {f["id"] for f in items} == expected and expected
    other = next(f["properties"]["code"] for f in county.parcels if f["properties"]["code"] not in expected)
    assert_problem(client.get(f"/api/v1/parcels/{other}", headers=device), 404, "not_found")


def test_change_assignment_adds_and_removes(client, official, county, make_account):
    body = register(client, official, county, make_account).get_json()
    parcel = county.parcels[-1]["properties"]["code"]
    resp = client.patch(f"/api/v1/devices/{body['device_id']}", json={"villages": [], "parcels": [parcel]},
                        headers=official.headers)
    assert resp.status_code == 200
    assert resp.get_json()["villages"] == [] and resp.get_json()["parcels"] == [parcel]
    assert resp.get_json()["version"] == 2
    device = {"Authorization": f"Bearer {body['token']}"}
    items = client.get("/api/v1/parcels", headers=device).get_json()["items"]
    assert [f["id"] for f in items] == [parcel]


def test_revoked_device_gets_401_on_next_request(client, official, county, make_account):
    body = register(client, official, county, make_account).get_json()
    device = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/auth/me", headers=device).status_code == 200
    resp = client.post(f"/api/v1/devices/{body['device_id']}/revoke", headers=official.headers)
    assert resp.status_code == 200 and resp.get_json()["revoked_at"]
    assert_problem(client.get("/api/v1/auth/me", headers=device), 401, "token_revoked")
    assert_problem(client.patch(f"/api/v1/devices/{body['device_id']}", json={"villages": []},
                                headers=official.headers), 409, "device_revoked")


def test_register_rejects_bad_input_naming_fields(client, official, county, make_account):
    lab = make_account("lab")
    cases = [
        ({"user": lab.username}, "user"),
        ({"user": "nobody"}, "user"),
        ({"villages": ["999999999999"]}, "villages"),
        ({"parcels": ["NOPE"]}, "parcels"),
        ({"villages": "360129100200"}, "villages"),
        ({"name": ""}, "name"),
    ]
    for overrides, field in cases:
        assert_problem(register(client, official, county, make_account, **overrides), 422, "validation_failed",
                       field=field)


def test_only_officials_manage_devices(client, county, make_account):
    lab = make_account("lab")
    sampler = make_account("sampler")
    for who in (lab, sampler):
        assert_problem(client.post("/api/v1/devices", json={"name": "x", "user": sampler.username},
                                   headers=who.headers), 403, "forbidden")
        assert_problem(client.get("/api/v1/devices", headers=who.headers), 403, "forbidden")


def test_unknown_device_is_404(client, official):
    assert_problem(client.get("/api/v1/devices/dev_nope", headers=official.headers), 404, "not_found")
    assert_problem(client.post("/api/v1/devices/dev_nope/revoke", headers=official.headers), 404, "not_found")


def test_device_reads_only_regions_and_parks_on_its_way(client, official, county, make_account):
    village = villages(county, 1)[0]
    body = register(client, official, county, make_account, villages=[village]).get_json()
    device = {"Authorization": f"Bearer {body['token']}"}
    regions = client.get("/api/v1/regions", query_string={"limit": 1000}, headers=device).get_json()["items"]
    assert {r["code"] for r in regions} == {village, village[:9], village[:6]}
    other = next(r["code"] for r in county.regions if r["level"] == "village" and r["code"] != village)
    assert_problem(client.get(f"/api/v1/regions/{other}", headers=device), 404, "not_found")
    parks = client.get("/api/v1/farm-parks", headers=device).get_json()["items"]
    expected = {f["properties"].get("farm_park") for f in county.parcels
                if f["properties"]["village"] == village} - {None}
    assert {p["code"] for p in parks} == expected
