"""ODK Collect as samplers use it (issue 17), on both engines: key URLs, the settings QR, the parcel
list in the form, the Date header, deprecatedID edits, XLSForm extensions, the advertised limit."""

from __future__ import annotations

import base64
import csv
import io
import logging
import re
import shutil
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import openpyxl
import pytest
from sqlalchemy import func, select

from fieldsvc.devices import collect
from fieldsvc.extensions import db
from fieldsvc.openrosa.models import OpenRosaSubmission
from fieldsvc.openrosa.xform import FORM_ID
from fieldsvc.samples.models import Sample
from tests.api.test_console_pages import Console
from tests.api.test_openrosa_api import get_sample, instance_xml, openrosa
from tests.api.test_sync_push import parcels_in, village_codes

LIST = "{http://openrosa.org/xforms/xformsList}"
MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"
BASE = "https://fieldsvc.example"
java = pytest.mark.skipif(shutil.which("java") is None, reason="ODK Validate needs Java (make system-deps)")


@pytest.fixture
def device(client, official, county, make_account):
    """A device registered by the API, as Collect is set up: its key URL, its Collect settings."""
    villages = village_codes(county, 1)
    sampler = make_account("sampler")
    resp = client.post("/api/v1/devices", json={"name": "Collect phone", "user": sampler.username,
                                                "villages": villages}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    return {**body, "key": f"/key/{body['token']}", "parcels": parcels_in(county, villages), "villages": villages}


def xml_of(resp):
    assert resp.status_code == 200, resp.data[:300]
    assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"  # one charset, not two
    return ET.fromstring(resp.data)


def manifest_of(client, key):
    root = xml_of(client.get(f"{key}/forms/{FORM_ID}/manifest"))
    [media] = root.findall(f"{MANIFEST}mediaFile")
    return media.findtext(f"{MANIFEST}filename"), media.findtext(f"{MANIFEST}hash"), media.findtext(
        f"{MANIFEST}downloadUrl")


def validate_with_odk(xml: str, tmp_path) -> list[str]:
    from pyxform.validators import odk_validate

    path = tmp_path / "form.xml"
    path.write_text(xml, encoding="utf-8")
    return odk_validate.check_xform(str(path))


# --- key URLs -------------------------------------------------------------------------------------

def test_every_openrosa_endpoint_answers_under_the_key_without_a_password(client, device, official):
    key = device["key"]
    listing = xml_of(client.get(f"{key}/formList"))
    [entry] = listing.findall(f"{LIST}xform")
    download, manifest_url = entry.findtext(f"{LIST}downloadUrl"), entry.findtext(f"{LIST}manifestUrl")
    assert download == f"{BASE}{key}/forms/{FORM_ID}.xml" and manifest_url == f"{BASE}{key}/forms/{FORM_ID}/manifest"
    form = client.get(download.removeprefix(BASE))
    assert form.status_code == 200 and b"jr://file-csv/parcels.csv" in form.data
    name, md5, media_url = manifest_of(client, key)
    assert name == "parcels.csv" and media_url == f"{BASE}{key}/forms/{FORM_ID}/media/parcels.csv"
    media = client.get(media_url.removeprefix(BASE))
    assert media.status_code == 200 and media.mimetype == "text/csv"
    head = client.head(f"{key}/submission")
    assert head.status_code == 204
    iid = str(uuid.uuid4())
    resp = client.post(f"{key}/submission", data={"xml_submission_file": (
        io.BytesIO(instance_xml(iid, device["parcels"][0], "KEY-0001")), "submission.xml", "text/xml")},
        content_type="multipart/form-data")
    openrosa(resp, 201, "submit_success")
    assert get_sample(client, official.headers, iid)["code"] == "KEY-0001"


def test_a_revoked_device_is_refused_at_once_on_every_key_url(client, device, official):
    key = device["key"]
    assert client.get(f"{key}/formList").status_code == 200
    resp = client.post(f"/api/v1/devices/{device['device_id']}/revoke", headers=official.headers)
    assert resp.status_code == 200
    for method, path in (("GET", "/formList"), ("GET", f"/forms/{FORM_ID}.xml"),
                         ("GET", f"/forms/{FORM_ID}/manifest"), ("GET", f"/forms/{FORM_ID}/media/parcels.csv"),
                         ("HEAD", "/submission"), ("POST", "/submission")):
        resp = client.open(f"{key}{path}", method=method)
        assert resp.status_code == 401, (method, path)
        assert "Basic" not in resp.headers.get("WWW-Authenticate", "")  # a password would not help
        if method != "HEAD":
            assert re.search(r"\[(device|token)_revoked\]", openrosa(resp, 401, "error"))


def test_a_key_opens_only_openrosa_paths_and_only_device_tokens(client, device, official, make_account):
    assert client.get(f"{device['key']}/api/v1/samples").status_code == 404
    assert client.get(f"{device['key']}/api/v1/devices").status_code == 404
    assert client.get("/key/nonsense/formList").status_code == 401
    sampler = make_account("sampler")  # an account token (not a device's) is not a key
    assert client.get(f"/key/{sampler.token}/formList").status_code == 401


def test_the_token_stays_out_of_the_logs(client, device, caplog, app):
    caplog.set_level(logging.INFO, logger="fieldsvc.access")
    token = device["token"]
    assert client.get(f"/key/{token}/formList").status_code == 200
    assert caplog.records and all(token not in r.getMessage() + repr(getattr(r, "fields", ""))
                                  for r in caplog.records)
    assert any(getattr(r, "fields", {}).get("path") == "/formList" for r in caplog.records)
    # what gunicorn's access log prints (RAW_URI, after the app ran) is redacted in place
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/key/{token}/formList", "QUERY_STRING": "formID=x",
               "RAW_URI": f"/key/{token}/formList?formID=x", "REQUEST_URI": f"/key/{token}/formList?formID=x",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO()}
    statuses = []
    b"".join(app.wsgi_app(environ, lambda status, headers, *exc: statuses.append(status)))
    assert statuses == ["200 OK"] and environ["PATH_INFO"] == "/formList"
    assert environ["RAW_URI"] == environ["REQUEST_URI"] == "/key/***/formList?formID=x"


# --- the settings QR ------------------------------------------------------------------------------

def decode_qr(data_url: str) -> str:
    import zxingcpp
    from PIL import Image

    png = base64.b64decode(data_url.removeprefix("data:image/png;base64,"))
    # QR codes only, as the other QR tests read them: the reader's other formats now and then
    # found a second, spurious barcode in the modules of a token-dependent picture
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    return found.text


def test_settings_qr_decodes_to_settings_whose_server_url_works(client, device, official):
    settings = collect.decode_payload(decode_qr(device["collect_settings_qr_url"]))
    assert settings == device["collect_settings"]
    general = settings["general"]
    assert general["server_url"] == f"{BASE}/key/{device['token']}" and general["app_language"] == "zh"
    assert general["autosend"] == "wifi_and_cellular" and "Collect phone" in settings["project"]["name"]
    resp = client.get(general["server_url"].removeprefix(BASE) + "/formList")
    assert resp.status_code == 200 and FORM_ID.encode() in resp.data
    # shown again by the device API (and only the token's URL, not a `token` field)
    again = client.get(f"/api/v1/devices/{device['device_id']}", headers=official.headers).get_json()
    assert again["collect_settings"] == settings and "token" not in again
    assert collect.decode_payload(decode_qr(again["collect_settings_qr_url"])) == settings
    client.post(f"/api/v1/devices/{device['device_id']}/revoke", headers=official.headers)
    gone = client.get(f"/api/v1/devices/{device['device_id']}", headers=official.headers).get_json()
    assert gone["collect_settings"] is None and gone["collect_settings_qr_url"] is None


# --- the parcel list ------------------------------------------------------------------------------

def test_manifest_lists_the_device_parcels_and_its_hash_follows_the_assignment(client, device, official, county):
    key = device["key"]
    _, before, url = manifest_of(client, key)
    rows = list(csv.DictReader(io.StringIO(client.get(url.removeprefix(BASE)).data.decode())))
    assert sorted(r["name"] for r in rows) == sorted(p["properties"]["code"] for p in device["parcels"])
    lat, lon, *_ = map(float, rows[0]["geometry"].split())
    assert 0 < lat < 60 and 70 < lon < 140  # a point in China, lat first as ODK geopoints are
    assert manifest_of(client, key)[1] == before  # stable while nothing changes
    other = village_codes(county, 2)[1]
    resp = client.patch(f"/api/v1/devices/{device['device_id']}", json={"villages": [other]},
                        headers=official.headers)
    assert resp.status_code == 200
    _, after, url = manifest_of(client, key)
    assert after != before
    codes = {r["name"] for r in csv.DictReader(io.StringIO(client.get(url.removeprefix(BASE)).data.decode()))}
    assert codes == {p["properties"]["code"] for p in parcels_in(county, [other])}


def test_the_free_text_parcel_is_taken_when_none_was_picked(client, device, official):
    iid = str(uuid.uuid4())
    code = device["parcels"][1]["properties"]["code"]
    xml = instance_xml(iid, device["parcels"][1], "FREE-0001").decode()
    xml = xml.replace(f"<parcel>{code}</parcel>", f"<parcel_pick/><parcel_other>  {code} </parcel_other><parcel/>")
    openrosa(post_key(client, device, xml.encode()), 201)
    assert get_sample(client, official.headers, iid)["parcel"] == code


# --- time -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("hours_off, flagged", [(12, False), (-12, False), (14, True)])
def test_a_date_header_twelve_hours_off_raises_no_flag(client, device, official, hours_off, flagged):
    iid = str(uuid.uuid4())
    sent = format_datetime(datetime.now(UTC) + timedelta(hours=hours_off), usegmt=True)
    resp = client.post(f"{device['key']}/submission", headers={"Date": sent}, data={"xml_submission_file": (
        io.BytesIO(instance_xml(iid, device["parcels"][0], f"DATE-{hours_off + 20}")), "s.xml", "text/xml")},
        content_type="multipart/form-data")
    openrosa(resp, 201)
    got = get_sample(client, official.headers, iid)
    assert ("clock_skew" in got["flags"]) is flagged
    if flagged:  # 14 hours off reads as 2 hours off: the part that survives the AM/PM ambiguity
        assert abs(got["clock_skew_s"] - 7200) < 120


# --- edits ----------------------------------------------------------------------------------------

def post_key(client, device, xml, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"{device['key']}/submission" + (f"?{query}" if query else ""),
                       headers={"User-Agent": "org.odk.collect.android/v2025.2.1 Dalvik/2.1.0"},
                       data={"xml_submission_file": (io.BytesIO(xml), "s.xml", "text/xml")},
                       content_type="multipart/form-data")


def edit_xml(new_iid, old_iid, parcel, code, **values) -> bytes:
    xml = instance_xml(new_iid, parcel, code, **values).decode()
    return xml.replace("</instanceID>", f"</instanceID><deprecatedID>uuid:{old_iid}</deprecatedID>").encode()


def test_a_deprecated_id_edit_makes_version_2_never_a_second_sample(client, device, official, app):
    first, edit = str(uuid.uuid4()), str(uuid.uuid4())
    parcel = device["parcels"][0]
    openrosa(post_key(client, device, instance_xml(first, parcel, "EDIT-0001"), deviceID="collect:abc123"), 201)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Sample))
    resp = post_key(client, device, edit_xml(edit, first, parcel, "EDIT-0001", depth_bottom_cm="25",
                                             note="re-measured"), deviceID="collect:abc123")
    assert "Sample received" in openrosa(resp, 201, "submit_success")
    assert resp.headers["Location"].endswith(f"/api/v1/samples/{first}")
    got = get_sample(client, official.headers, first)
    assert got["version"] == 2 and got["depth_bottom_cm"] == 25 and got["note"] == "re-measured"
    assert client.get(f"/api/v1/samples/{edit}", headers=official.headers).status_code == 404
    openrosa(post_key(client, device, edit_xml(edit, first, parcel, "EDIT-0001", depth_bottom_cm="25",
                                               note="re-measured")), 201)  # Collect resends it
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Sample)) == before
        rows = {r.instance_id: r for r in db.session.scalars(select(OpenRosaSubmission))}
    assert get_sample(client, official.headers, first)["version"] == 2
    assert rows[first].sample_version == 1 and rows[edit].sample_version == 2
    assert rows[edit].sample_id == first and rows[edit].deprecated_id == first
    assert rows[first].collect_device_id == "collect:abc123"
    assert rows[first].user_agent.startswith("org.odk.collect.android/v2025.2.1")


def test_an_edit_merges_with_another_writers_change(client, device, official):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    parcel = device["parcels"][0]
    openrosa(post_key(client, device, instance_xml(first, parcel, "EDIT-0100")), 201)
    got = get_sample(client, official.headers, first)
    data = {k: got[k] for k in ("code", "parcel", "collected_at", "depth_top_cm", "depth_bottom_cm", "sample_type",
                                "land_use_observed", "media")}
    data["location"] = {k: got["location"][k] for k in ("lat", "lon", "accuracy_m")}
    resp = client.post("/api/v1/sync/push", headers={"Authorization": f"Bearer {device['token']}"},
                       json={"records": [  # another writer (the field app) changes the note meanwhile
                           {"type": "sample", "id": first, "base_version": 1, "data": {**data, "note": "new note"}}]})
    assert resp.status_code in (200, 207), resp.get_json()
    resp = post_key(client, device, edit_xml(second, first, parcel, "EDIT-0100", depth_top_cm="5"))
    assert resp.status_code == 201, resp.data
    got = get_sample(client, official.headers, first)
    assert got["version"] == 3 and got["depth_top_cm"] == 5 and got["note"] == "new note"


# --- messages and limits --------------------------------------------------------------------------

def test_rejection_messages_end_in_one_full_stop(client, device):
    iid = str(uuid.uuid4())
    resp = post_key(client, device, instance_xml(iid, device["parcels"][0], "BAD CODE", depth_top_cm="30",
                                                 depth_bottom_cm="20"))
    message = openrosa(resp, 400, "error")
    assert "code:" in message and "depth_bottom_cm:" in message and ".." not in message


def test_every_openrosa_response_names_one_charset(client, device):
    """``text/xml; charset=utf-8`` once, on answers and refusals alike (it was doubled on every one)."""
    key = device["key"]
    ok = post_key(client, device, instance_xml(str(uuid.uuid4()), device["parcels"][0], "CT-0001"))
    refused = post_key(client, device, instance_xml(str(uuid.uuid4()), device["parcels"][0], "BAD CODE"))
    for resp in (client.get(f"{key}/formList"), client.get(f"{key}/forms/{FORM_ID}.xml"),
                 client.get(f"{key}/forms/{FORM_ID}/manifest"), ok, refused, client.get("/key/nonsense/formList")):
        assert resp.headers["Content-Type"].lower().count("charset") == 1, resp.headers["Content-Type"]
        assert resp.headers["X-OpenRosa-Version"] == "1.0"
    assert (ok.status_code, refused.status_code) == (201, 400)
    assert client.head(f"{key}/submission").headers.get("Content-Type", "").lower().count("charset") <= 1


def test_a_post_exactly_at_the_advertised_limit_is_accepted(client, device, official, app):
    app.config["MAX_REQUEST_BYTES"] = 400_000
    advertised = int(client.head(f"{device['key']}/submission").headers["X-OpenRosa-Accept-Content-Length"])
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, device["parcels"][0], "BIG-0001", photo_names=["a.jpg"])
    photo = b"\xff\xd8" + b"\x00" * (advertised - len(xml) - 2)  # the files sum to exactly the limit
    resp = client.post(f"{device['key']}/submission", data={
        "xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml"),
        "a.jpg": (io.BytesIO(photo), "a.jpg", "image/jpeg")}, content_type="multipart/form-data")
    assert len(xml) + len(photo) == advertised and resp.request.content_length > advertised
    openrosa(resp, 201)
    assert get_sample(client, official.headers, iid)["state"] == "complete"


# --- the served form and extensions ---------------------------------------------------------------

def xlsform(rows, choices=()) -> bytes:
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label::English (en)", "label::Chinese (zh)", "required", "constraint"])
    for row in rows:
        survey.append(list(row))
    if choices:
        sheet = book.create_sheet("choices")
        sheet.append(["list_name", "name", "label::English (en)", "label::Chinese (zh)"])
        for row in choices:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


EXTRA_ROWS = [("select_one crops", "crop", "Crop", "作物", "yes", ""),
              ("integer", "plants", "Plants counted", "株数", "", ""),
              ("decimal", "ph_field", "Field pH", "现场 pH", "", ""),
              ("select_multiple crops", "past_crops", "Past crops", "前茬作物", "", ""),
              ("date", "tilled_on", "Tilled on", "翻耕日期", "", ""),
              ("geopoint", "well", "Nearest well", "最近水井", "", ""),
              ("image", "field_photo", "Field photo", "田块照片", "", ""),
              ("text", "farmer", "Farmer", "农户", "", "")]
CROPS = [("crops", "rice", "Rice", "水稻"), ("crops", "rape", "Rapeseed", "油菜")]


def upload(client, official, content, name="extra.xlsx"):
    return client.post("/api/v1/forms/extensions", headers=official.headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name)})


@java
def test_served_form_passes_odk_validate(client, device, tmp_path):
    form = client.get(f"{device['key']}/forms/{FORM_ID}.xml")
    assert validate_with_odk(form.data.decode(), tmp_path) == []


@java
def test_extension_questions_join_the_form_validate_and_their_answers_are_kept(client, device, official, app,
                                                                               tmp_path):
    content = xlsform(EXTRA_ROWS, CROPS)
    resp = upload(client, official, content)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["version"] == 1 and [q["name"] for q in body["questions"]][:2] == ["crop", "plants"]
    again = upload(client, official, content)  # a retried upload adds no version
    assert again.status_code == 200 and again.get_json()["version"] == 1
    form = client.get(f"{device['key']}/forms/{FORM_ID}.xml").data.decode()
    assert '<group ref="/data/extra">' in form and "<crop/>" in form and "作物" in form
    assert validate_with_odk(form, tmp_path) == []
    version = ET.fromstring(form).find(".//{http://www.w3.org/2002/xforms}data").get("version")
    iid = str(uuid.uuid4())
    extra = ("<extra><crop>rice</crop><plants>12</plants><ph_field>6.5</ph_field><past_crops>rice rape"
             "</past_crops><tilled_on>2026-10-01</tilled_on><well>28.1 115.6 40 5</well>"
             "<field_photo>f.jpg</field_photo><farmer>王</farmer></extra>")
    xml = instance_xml(iid, device["parcels"][0], "EXT-0001").decode().replace('version="1"', f'version="{version}"')
    xml = xml.replace("<meta>", extra + "<meta>")
    resp = client.post(f"{device['key']}/submission", data={
        "xml_submission_file": (io.BytesIO(xml.encode()), "s.xml", "text/xml"),
        "f.jpg": (io.BytesIO(b"\xff\xd8photo"), "f.jpg", "image/jpeg")}, content_type="multipart/form-data")
    openrosa(resp, 201)
    with app.app_context():
        row = db.session.get(OpenRosaSubmission, iid)
        assert row.extra == {"crop": "rice", "plants": 12, "ph_field": 6.5, "past_crops": ["rice", "rape"],
                             "tilled_on": "2026-10-01", "well": {"lat": 28.1, "lon": 115.6, "accuracy_m": 5},
                             "field_photo": "f.jpg", "farmer": "王"}
        assert row.extension_version == 1
    got = get_sample(client, official.headers, iid)
    assert [m["name"] for m in got["media"]] == ["f.jpg"] and got["extra"]["past_crops"] == ["rice", "rape"]
    console = Console(app)  # the console's sample page shows the answers by their labels
    assert console.login(official.username, official.password).status_code == 303
    page = console.get(f"/console/audit/sample/{iid}?lang=en").get_data(as_text=True)
    assert 'id="collect-instances"' in page and "<b>Crop</b>: Rice" in page
    assert "<b>Past crops</b>: Rice, Rapeseed" in page
    bad = xml.replace("<plants>12</plants>", "<plants>twelve</plants>").replace(iid, str(uuid.uuid4()))
    resp = client.post(f"{device['key']}/submission", data={
        "xml_submission_file": (io.BytesIO(bad.encode()), "s.xml", "text/xml")}, content_type="multipart/form-data")
    assert "extra/plants: Must be a whole number" in openrosa(resp, 400, "error")


@pytest.mark.parametrize("rows, row, words", [
    ([("decimal", "depth_top", "Depth from (cm)", "采样深度上限 (cm)", "yes", "")], 2, "renamed"),
    ([("text", "crop_note", "Crop", "作物", "", ""), ("integer", "depth_top_cm", "Depth", "深度", "", "")], 3,
     "change its type"),
    ([("decimal", "depth_top_cm", "Depth from (cm)", "深度", "", ". > 5")], 2, "bindings"),
])
def test_an_xlsform_that_changes_a_core_question_is_refused_naming_the_row(client, official, rows, row, words):
    resp = upload(client, official, xlsform(rows))
    assert resp.status_code == 422, resp.get_json()
    fields = resp.get_json()["details"]["fields"]
    assert any(key == f"survey row {row}" and any(words in m for m in msgs) for key, msgs in fields.items()), fields


def test_an_xlsform_that_drops_core_questions_is_refused(client, official):
    rows = [("barcode", "code", "Bag barcode", "样品袋条码", "yes", ""), ("geopoint", "location", "GPS", "GPS", "", "")]
    resp = upload(client, official, xlsform(rows))
    assert resp.status_code == 422
    assert any("'depth_top_cm' is missing" in m for m in resp.get_json()["details"]["fields"]["survey"])


def test_extension_upload_needs_an_official_and_an_xlsx(client, device, official, make_account):
    sampler = make_account("sampler")
    assert upload(client, sampler, xlsform(EXTRA_ROWS, CROPS)).status_code == 403
    resp = upload(client, official, b"type,name\ntext,x\n", "form.csv")
    assert resp.status_code == 422 and "file" in resp.get_json()["details"]["fields"]
    resp = client.post("/api/v1/forms/extensions", headers=official.headers, data={},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "file" in resp.get_json()["details"]["fields"]


def test_a_new_upload_is_a_new_form_version_and_old_forms_answers_still_count(client, device, official, app):
    first = upload(client, official, xlsform(EXTRA_ROWS[:2], CROPS))
    assert first.status_code == 201 and first.get_json()["version"] == 1
    v1 = client.get("/api/v1/forms/extensions", headers=official.headers).get_json()["form_version"]
    second = upload(client, official, xlsform([("text", "weather", "Weather", "天气", "", "")]))
    assert second.status_code == 201 and second.get_json()["version"] == 2
    v2 = client.get("/api/v1/forms/extensions", headers=official.headers).get_json()["form_version"]
    assert ".x1." in v1 and ".x2." in v2
    form = client.get(f"{device['key']}/forms/{FORM_ID}.xml").data.decode()
    assert "<weather/>" in form and "<crop/>" not in form and f'version="{v2}"' in form
    iid = str(uuid.uuid4())  # a phone still on version 1 answers version 1's questions
    xml = instance_xml(iid, device["parcels"][0], "EXT-0200").decode().replace('version="1"', f'version="{v1}"')
    xml = xml.replace("<meta>", "<extra><crop>rape</crop><plants>4</plants></extra><meta>")
    openrosa(post_key(client, device, xml.encode()), 201)
    assert get_sample(client, official.headers, iid)["extra"] == {"crop": "rape", "plants": 4}


def test_a_password_user_gets_the_parcels_of_their_devices(client, official, county, make_account):
    import base64 as b64

    sampler = make_account("sampler")
    village = village_codes(county, 2)[1]
    resp = client.post("/api/v1/devices", json={"name": "P", "user": sampler.username, "villages": [village]},
                       headers=official.headers)
    assert resp.status_code == 201
    basic = {"Authorization": "Basic " + b64.b64encode(f"{sampler.username}:{sampler.password}".encode()).decode()}
    root = xml_of(client.get(f"/forms/{FORM_ID}/manifest", headers=basic))
    url = root.findtext(f"{MANIFEST}mediaFile/{MANIFEST}downloadUrl")
    assert url == f"{BASE}/forms/{FORM_ID}/media/parcels.csv"  # no key prefix without a key
    rows = list(csv.DictReader(io.StringIO(client.get(url.removeprefix(BASE), headers=basic).data.decode())))
    assert {r["name"] for r in rows} == {p["properties"]["code"] for p in parcels_in(county, [village])}
