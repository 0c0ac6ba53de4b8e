"""The whole pipeline over HTTP, as the users do it, on both engines.

A phone pushes a sample, a lab imports results (one before the sample arrived), an official
approves them (four-eyes), the parcel grades itself in that request, a certificate is issued,
a failing re-test revokes it at once, and the public page says so.
"""

from __future__ import annotations

import io
import uuid

from tests.helpers import assert_problem

CLEAN = {"Cd": "0.12", "Hg": "0.05", "As": "8.1", "Pb": "22", "Cr": "60", "Cu": "21", "pH": "6.1"}


def device_for(client, official, make_account, parcel: dict) -> dict:
    sampler = make_account("sampler")
    body = {"name": "phone", "user": sampler.username, "villages": [], "parcels": [parcel["properties"]["code"]]}
    resp = client.post("/api/v1/devices", json=body, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def push_sample(client, device: dict, parcel: dict, code: str, media=None) -> dict:
    lon, lat = parcel["geometry"]["coordinates"][0][0]
    lon, lat = lon + 0.00003, lat + 0.00003
    sample_id = str(uuid.uuid4())
    data = {"code": code, "parcel": parcel["properties"]["code"], "collected_at": "2026-11-20T03:00:00Z",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 5, "mock": False}, "depth_top_cm": 0,
            "depth_bottom_cm": 20, "sample_type": "composite", "land_use_observed": parcel["properties"]["land_use"],
            "note": "", "media": media or []}
    body = {"device_sent_at": "2026-11-20T03:05:00Z", "schema_version": 1,
            "records": [{"type": "sample", "id": sample_id, "base_version": None, "deleted": False, "data": data}]}
    resp = client.post("/api/v1/sync/push", json=body, headers={**device, "Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 200, resp.get_json()
    result = resp.get_json()["results"][0]
    assert result["status"] == "applied", result
    return {"id": sample_id, **result}


def import_csv(client, lab, rows: dict[str, dict[str, str]]) -> dict:
    lines = ["sample_code,analyte,value,unit"]
    for code, values in rows.items():
        lines += [f"{code},{a},{v},{'' if a == 'pH' else 'mg/kg'}" for a, v in values.items()]
    payload = ("\n".join(lines) + "\n").encode()
    resp = client.post("/api/v1/lab/imports", data={"file": (io.BytesIO(payload), "r.csv")}, headers=lab.headers,
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def approve_all(client, official, code: str) -> None:
    items = client.get("/api/v1/lab/results", query_string={"sample": code, "status": "pending"},
                       headers=official.headers).get_json()["items"]
    assert items
    for item in items:
        resp = client.post(f"/api/v1/lab/results/{item['id']}/approve", headers=official.headers)
        assert resp.status_code == 200, resp.get_json()


def test_sample_to_certificate_to_revocation(client, county, official, make_account):
    parcel = next(f for f in county.parcels if f["properties"]["land_use"] == "paddy")
    code = parcel["properties"]["code"]
    device = device_for(client, official, make_account, parcel)
    lab = make_account("lab")
    first = import_csv(client, lab, {"BAG-0001": CLEAN})  # the lab is faster than the phone
    assert first["held"] == len(CLEAN)
    sample = push_sample(client, device, parcel, "bag-0001")
    results = client.get("/api/v1/lab/results", query_string={"sample": sample["id"]},
                         headers=official.headers).get_json()["items"]
    assert len(results) == len(CLEAN) and all(r["sample_id"] == sample["id"] for r in results)

    before = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
    assert before["verdict"] != "qualified" and before["qualified"] is False  # pending results do not count
    assert_problem(client.post(f"/api/v1/lab/results/{results[0]['id']}/approve",
                               headers={"Authorization": f"Bearer {lab.token}"}), 403, "forbidden")
    approve_all(client, official, "BAG-0001")
    grade = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
    assert grade["verdict"] == "qualified" and grade["qualified"] is True
    feature = client.get(f"/api/v1/parcels/{code}", headers=official.headers).get_json()
    assert feature["properties"]["grade"]["verdict"] == "qualified"

    issued = client.post("/api/v1/certificates", json={"subject_type": "parcel", "code": code},
                         headers=official.headers)
    assert issued.status_code == 201, issued.get_json()
    cert = issued.get_json()
    public = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert public["genuine"] is True and public["status"] == "valid"

    import_csv(client, lab, {"BAG-0001": {"Cd": "0.95"}})  # a re-test, far over the paddy limit
    approve_all(client, official, "BAG-0001")
    grade = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
    assert grade["verdict"] == "not_qualified" and "Cd" in grade["limiting"]
    public = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert public["status"] == "revoked" and public["reason"]
    page = client.get(f"/C/{cert['code']}?lang=en")
    assert page.status_code == 200 and "Revoked" in page.get_data(as_text=True)


def test_sample_waiting_for_its_photo_is_graded_once_the_photo_arrives(client, county, official, make_account):
    import hashlib

    parcel = next(f for f in county.parcels if f["properties"]["land_use"] == "dryland")
    code = parcel["properties"]["code"]
    device = device_for(client, official, make_account, parcel)
    photo = b"\xff\xd8 soil photo bytes " * 100
    sha = hashlib.sha256(photo).hexdigest()
    sample = push_sample(client, device, parcel, "BAG-0002",
                         media=[{"name": "photo1.jpg", "sha256": sha, "bytes": len(photo), "mime": "image/jpeg"}])
    assert sample["state"] == "awaiting_media"
    lab = make_account("lab")
    import_csv(client, lab, {"BAG-0002": CLEAN})
    approve_all(client, official, "BAG-0002")
    waiting = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
    assert waiting["qualified"] is False  # an incomplete sample's results do not count yet
    upload = {**device, "Content-Type": "image/jpeg", "Content-Range": f"bytes 0-{len(photo) - 1}/{len(photo)}"}
    resp = client.put(f"/api/v1/media/{sha}", data=photo, headers=upload)
    assert resp.status_code in (200, 201), resp.get_json()
    state = client.get(f"/api/v1/samples/{sample['id']}", headers=official.headers).get_json()["state"]
    assert state == "complete"
    grade = client.get(f"/api/v1/grades/parcel/{code}", headers=official.headers).get_json()
    assert grade["verdict"] == "qualified"
