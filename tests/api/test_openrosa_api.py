"""OpenRosa over HTTP on both engines: form list and form, HEAD/POST /submission, auth, limits, errors."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import func, select

from fieldsvc.audit.models import AuditEvent
from fieldsvc.extensions import db
from fieldsvc.openrosa.xform import FORM_ID
from tests.api.test_http import ExplodingStream
from tests.api.test_sync_push import (
    centre,
    count_samples,
    data_for,
    parcels_in,
    push,
    record,
    register_device,
    results,
    village_codes,
)

RESPONSE = "{http://openrosa.org/http/response}"
LIST = "{http://openrosa.org/xforms/xformsList}"


@pytest.fixture
def phone(client, official, county, make_account):
    villages = village_codes(county, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "device_id": device_id, "parcels": parcels_in(county, villages)}


@pytest.fixture(scope="module")
def photos():
    return [(f"17000000{i}.jpg", os.urandom(40_000 + i)) for i in range(3)]


def basic(username, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def instance_xml(iid, parcel, code="OR-0001", photo_names=(), **values) -> bytes:
    lat, lon = centre(parcel)
    fields = {"code": code, "parcel": parcel["properties"]["code"], "location": f"{lat!r} {lon!r} 41.5 4.5",
              "depth_top_cm": "0", "depth_bottom_cm": "20", "sample_type": "composite",
              "land_use_observed": "paddy", "note": "", "photo1": "", "photo2": "", "photo3": "",
              "collected_at": "2026-11-20T08:30:00.000+08:00"}
    for i, name in enumerate(photo_names, 1):
        fields[f"photo{i}"] = name
    fields.update(values)
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><data xmlns:jr="http://openrosa.org/javarosa" '
            f'xmlns:orx="http://openrosa.org/xforms" id="{FORM_ID}" version="1">{body}'
            f"<meta><instanceID>uuid:{iid}</instanceID></meta></data>").encode()


def submit(client, headers, xml, files=(), incomplete=False, extra_headers=None):
    """POST like Collect: the XML part, then each file as a part named by its file name."""
    data = {"xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml")}
    multi = [(name, (io.BytesIO(content), name, "image/jpeg")) for name, content in files]
    if incomplete:
        data["*isIncomplete*"] = "yes"
    form = list(data.items()) + multi
    from werkzeug.datastructures import MultiDict

    return client.post("/submission", data=MultiDict(form), content_type="multipart/form-data",
                       headers={**headers, "X-OpenRosa-Version": "1.0", **(extra_headers or {})})


def openrosa(resp, status, nature=None):
    """The OpenRosa response: status, headers, one message; returns the message text."""
    assert resp.status_code == status, resp.data[:500]
    assert resp.headers["X-OpenRosa-Version"] == "1.0"
    assert resp.mimetype == "text/xml"
    root = ET.fromstring(resp.data)
    assert root.tag == f"{RESPONSE}OpenRosaResponse"
    message = root.find(f"{RESPONSE}message")
    if nature is not None:
        assert message.get("nature") == nature
    return message.text


def sha(content):
    return hashlib.sha256(content).hexdigest()


def manifest(files):
    return [{"name": n, "sha256": sha(c), "bytes": len(c), "mime": "image/jpeg"} for n, c in files]


def get_sample(client, headers, iid):
    resp = client.get(f"/api/v1/samples/{iid}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# --- form list and form ---------------------------------------------------------------------------


def test_form_list_points_at_the_form_and_its_hash(client, phone, app):
    resp = client.get("/formList", headers=phone["headers"])
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    assert resp.headers["X-OpenRosa-Version"] == "1.0"
    root = ET.fromstring(resp.data)
    [xform] = root.findall(f"{LIST}xform")
    assert xform.findtext(f"{LIST}formID") == FORM_ID and xform.findtext(f"{LIST}version")
    url = xform.findtext(f"{LIST}downloadUrl")
    assert url == f"https://fieldsvc.example/forms/{FORM_ID}.xml"
    form = client.get(url.removeprefix("https://fieldsvc.example"), headers=phone["headers"])
    assert form.status_code == 200 and form.headers["X-OpenRosa-Version"] == "1.0"
    assert xform.findtext(f"{LIST}hash") == "md5:" + hashlib.md5(form.data).hexdigest()
    assert b"<depth_bottom_cm/>" in form.data and b'type="geopoint"' in form.data
    other = ET.fromstring(client.get("/formList?formID=other", headers=phone["headers"]).data)
    assert other.findall(f"{LIST}xform") == []


def test_unknown_form_is_an_openrosa_404(client, phone):
    assert "no form" in openrosa(client.get("/forms/nope.xml", headers=phone["headers"]), 404, "error")


def test_head_submission_advertises_the_limit(client, phone, app):
    resp = client.head("/submission", headers=phone["headers"])
    assert resp.status_code == 204 and resp.data == b""
    # the files one POST may carry: the largest body taken less room for the multipart overhead
    assert resp.headers["X-OpenRosa-Accept-Content-Length"] == str(app.config["MAX_REQUEST_BYTES"] - 64 * 1024)
    assert resp.headers["X-OpenRosa-Version"] == "1.0"


# --- submissions ----------------------------------------------------------------------------------


def test_submission_with_two_photos_is_the_sample_a_push_makes(client, phone, official, photos, app):
    parcel = phone["parcels"][0]
    iid = str(uuid.uuid4())
    two = photos[:2]
    xml = instance_xml(iid, parcel, "OR-0001", [n for n, _ in two], note="edge of the field")
    text = openrosa(submit(client, phone["headers"], xml, two), 201, "submit_success")
    assert "complete" in text
    got = get_sample(client, official.headers, iid)
    assert got["state"] == "complete" and got["version"] == 1 and got["flags"] == []
    assert got["media"] == manifest(two)
    # the same data pushed through the sync API (another id and bag code) reads back the same
    lat, lon = centre(parcel)
    twin = record(data_for(parcel, "OR-0002", location={"lat": lat, "lon": lon, "accuracy_m": 4.5},
                           collected_at="2026-11-20T08:30:00.000+08:00", note="edge of the field",
                           media=manifest(two)))
    assert results(push(client, phone["headers"], [twin]))[0]["status"] == "applied"
    pushed = get_sample(client, official.headers, twin["id"])
    ignore = {"id", "code", "received_at", "updated_at", "clock_skew_s"}
    assert {k: v for k, v in got.items() if k not in ignore} == {k: v for k, v in pushed.items() if k not in ignore}
    # the photos are content-addressed blobs a reader can fetch
    for _name, content in two:
        with client.get(f"/api/v1/media/{sha(content)}", headers=official.headers) as blob:
            assert blob.status_code == 200 and blob.data == content
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.entity_key.in_([iid, *(sha(c) for _, c in two)]))))
    assert {"create", "upload_complete"} <= actions


def test_same_xml_again_is_201_without_a_duplicate(client, phone, official, photos, app):
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, phone["parcels"][1], "OR-0100", [photos[0][0]])
    openrosa(submit(client, phone["headers"], xml, photos[:1]), 201)
    text = openrosa(submit(client, phone["headers"], xml, photos[:1]), 201, "submit_success")
    assert "already received" in text
    assert count_samples(app) == 1
    got = get_sample(client, official.headers, iid)
    assert got["version"] == 1 and got["state"] == "complete"


def test_resend_attaches_a_photo_missing_the_first_time(client, phone, official, photos):
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, phone["parcels"][1], "OR-0150", [photos[0][0]])
    assert "Waiting for" in openrosa(submit(client, phone["headers"], xml), 201)  # the file did not come
    assert get_sample(client, official.headers, iid)["state"] == "awaiting_media"
    openrosa(submit(client, phone["headers"], xml, photos[:1]), 201)
    got = get_sample(client, official.headers, iid)
    assert got["state"] == "complete" and got["media"] == manifest(photos[:1])


def test_different_xml_with_the_same_instance_id_is_409_and_both_are_kept(client, phone, official):
    iid = str(uuid.uuid4())
    parcel = phone["parcels"][0]
    openrosa(submit(client, phone["headers"], instance_xml(iid, parcel, "OR-0200")), 201)
    text = openrosa(submit(client, phone["headers"], instance_xml(iid, parcel, "OR-0200", depth_bottom_cm="30")),
                    409, "error")
    assert "Conflict" in text
    got = get_sample(client, official.headers, iid)
    assert got["depth_bottom_cm"] == 20 and got["version"] == 1
    conflicts = client.get(f"/api/v1/conflicts?record={iid}", headers=official.headers).get_json()["items"]
    assert len(conflicts) == 1 and conflicts[0]["incoming_body"]["depth_bottom_cm"] == 30


def test_split_submission_awaits_media_then_completes(client, phone, official, photos, app):
    iid = str(uuid.uuid4())
    two = photos[1:3]
    xml = instance_xml(iid, phone["parcels"][2], "OR-0300", [n for n, _ in two])
    text = openrosa(submit(client, phone["headers"], xml, two[:1], incomplete=True), 201)
    assert two[1][0] in text
    first = get_sample(client, official.headers, iid)
    assert first["state"] == "awaiting_media"
    assert first["media"][0] == manifest(two[:1])[0]
    assert first["media"][1]["name"] == two[1][0] and first["media"][1]["mime"] == "application/vnd.fieldsvc.pending"
    openrosa(submit(client, phone["headers"], xml, two[1:]), 201)
    done = get_sample(client, official.headers, iid)
    assert done["state"] == "complete" and done["media"] == manifest(two) and done["version"] == 2
    # Collect retrying the first part afterwards changes nothing
    openrosa(submit(client, phone["headers"], xml, two[:1], incomplete=True), 201)
    assert get_sample(client, official.headers, iid) == {**done, "updated_at": done["updated_at"]}
    assert count_samples(app) == 1


def test_rejected_submission_is_400_naming_the_field_and_stores_nothing(client, phone, official, photos):
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, phone["parcels"][0], "OR-0400", [photos[0][0]], depth_top_cm="30",
                       depth_bottom_cm="10")
    text = openrosa(submit(client, phone["headers"], xml, photos[:1]), 400, "error")
    assert "depth_bottom_cm" in text
    assert client.get(f"/api/v1/samples/{iid}", headers=official.headers).status_code == 404
    assert client.head(f"/api/v1/media/{sha(photos[0][1])}", headers=official.headers).status_code == 404


def test_unknown_parcel_is_202_held(client, phone, official):
    iid = str(uuid.uuid4())
    parcel = {**phone["parcels"][0], "properties": {**phone["parcels"][0]["properties"], "code": "NOT-YET-1"}}
    assert "held" in openrosa(submit(client, phone["headers"], instance_xml(iid, parcel, "OR-0500")), 202)
    assert get_sample(client, official.headers, iid)["state"] == "held"


def test_date_header_gives_the_clock_skew(client, phone, official):
    iid = str(uuid.uuid4())
    sent = format_datetime(datetime.now(UTC) - timedelta(hours=2), usegmt=True)
    openrosa(submit(client, phone["headers"], instance_xml(iid, phone["parcels"][0], "OR-0600"),
                    extra_headers={"Date": sent}), 201)
    got = get_sample(client, official.headers, iid)
    assert abs(abs(got["clock_skew_s"]) - 7200) < 60 and "clock_skew" in got["flags"]


@pytest.mark.parametrize("xml, code", [
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>', "xml_refused"),
    (b"<data", "malformed_xml"),
    (b"", "invalid_submission"),
])
def test_bad_xml_is_an_openrosa_400(client, phone, xml, code):
    assert f"[{code}]" in openrosa(submit(client, phone["headers"], xml), 400, "error")


def test_oversized_submission_is_413_before_reading(client, phone, app):
    resp = client.post("/submission", headers=phone["headers"], content_type="multipart/form-data; boundary=x",
                       environ_overrides={"CONTENT_LENGTH": str(app.config["MAX_REQUEST_BYTES"] + 1),
                                          "wsgi.input": ExplodingStream()})
    assert "payload_too_large" in openrosa(resp, 413, "error")
    assert resp.headers["X-OpenRosa-Accept-Content-Length"] == str(app.config["MAX_REQUEST_BYTES"] - 64 * 1024)


# --- auth -----------------------------------------------------------------------------------------


def test_basic_auth_with_sampler_credentials(client, make_account, county, official, photos):
    sampler = make_account("sampler")
    headers = basic(sampler.username, sampler.password)
    assert client.get("/formList", headers=headers).status_code == 200
    assert client.head("/submission", headers=headers).status_code == 204
    # a sampler's password reaches what its live devices are assigned, nothing more (README, Security)
    parcel = county.parcels[0]["properties"]
    iid = str(uuid.uuid4())
    refused = submit(client, headers, instance_xml(iid, county.parcels[0], "OR-0700", [photos[0][0]]), photos[:1])
    assert "not_assigned" in openrosa(refused, 400, "error")
    resp = client.post("/api/v1/devices", json={"name": "Phone", "user": sampler.username,
                                                "villages": [parcel["village"]], "parcels": []},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    openrosa(submit(client, headers, instance_xml(iid, county.parcels[0], "OR-0700", [photos[0][0]]),
                    photos[:1]), 201)
    got = get_sample(client, official.headers, iid)
    assert got["state"] == "complete" and got["media"] == manifest(photos[:1])


def test_wrong_password_is_401_with_a_basic_challenge_and_is_rate_limited(client, make_account, app):
    sampler = make_account("sampler")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        resp = client.head("/submission", headers=basic(sampler.username, "wrong-password"))
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == 'Basic realm="fieldsvc"'
    resp = client.get("/formList", headers=basic(sampler.username, "wrong-password"))
    assert "invalid_credentials" in openrosa(resp, 401, "error")
    # the failures count like token logins: now even the right password waits
    resp = client.get("/formList", headers=basic(sampler.username, sampler.password))
    assert "rate_limited" in openrosa(resp, 429, "error") and int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize("header", [None, "Basic not-base64!", "Basic " + base64.b64encode(b"nocolon").decode()])
def test_missing_or_garbled_credentials_are_401_with_a_basic_challenge(client, header):
    resp = client.get("/formList", headers={"Authorization": header} if header else {})
    openrosa(resp, 401, "error")
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")


def test_non_sampler_is_403(client, official, make_account, county):
    assert "forbidden" in openrosa(client.get("/formList", headers=official.headers), 403, "error")
    lab = make_account("lab")
    resp = client.head("/submission", headers=basic(lab.username, lab.password))
    assert resp.status_code == 403 and resp.headers["X-OpenRosa-Version"] == "1.0"
    xml = instance_xml(str(uuid.uuid4()), county.parcels[0], "OR-0800")
    openrosa(submit(client, official.headers, xml), 403, "error")
    with client.application.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "create", AuditEvent.entity_type == "sample")) == 0
