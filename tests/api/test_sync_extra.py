"""Custom questions through sync (issue 17): a pushed sample's ``extra`` answers, typed against the
form extension version they were given in, versioned, merged field by field, pulled and read like
the other fields, stored as Collect's are; and the device id and User-Agent kept with each version."""

from __future__ import annotations

import io
import uuid

import pytest
from sqlalchemy import select

from fieldsvc.extensions import db
from fieldsvc.samples.models import SampleClient
from tests.api.test_openrosa_api import get_sample, instance_xml, openrosa
from tests.api.test_openrosa_collect import CROPS, EXTRA_ROWS, upload, xlsform
from tests.api.test_sync_pull import pull_all
from tests.api.test_sync_push import data_for, parcels_in, push, record, results, village_codes

ANSWERS = {"crop": "rice", "plants": 12, "ph_field": 6.5, "past_crops": ["rice", "rape"], "tilled_on": "2026-10-01",
           "well": {"lat": 28.1, "lon": 115.6, "accuracy_m": 5}, "farmer": "王"}


@pytest.fixture
def phone(client, official, county, make_account):
    """A device (its token and its Collect key URL) on one village, and extension version 1."""
    villages = village_codes(county, 1)
    sampler = make_account("sampler")
    resp = client.post("/api/v1/devices", json={"name": "Phone", "user": sampler.username, "villages": villages},
                       headers=official.headers)
    body = resp.get_json()
    assert upload(client, official, xlsform(EXTRA_ROWS, CROPS)).status_code == 201
    return {"headers": {"Authorization": f"Bearer {body['token']}", "User-Agent": "fieldsvc-field/1.4 (Android 14)"},
            "device_id": body["device_id"], "key": f"/key/{body['token']}",
            "parcels": parcels_in(county, villages)}


def with_extra(phone, code, extra, version=1, **overrides):
    return data_for(phone["parcels"][0], code, extra=extra, extension_version=version, **overrides)


def test_config_carries_the_extension_the_field_app_offers(client, official, county, make_account):
    villages = village_codes(county, 1)
    sampler = make_account("sampler")
    token = client.post("/api/v1/devices", json={"name": "P", "user": sampler.username, "villages": villages},
                        headers=official.headers).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/sync/config", headers=headers).get_json()["form_extension"] is None
    assert upload(client, official, xlsform(EXTRA_ROWS, CROPS)).status_code == 201
    ext = client.get("/api/v1/sync/config", headers=headers).get_json()["form_extension"]
    assert ext["version"] == 1
    crop = next(q for q in ext["questions"] if q["name"] == "crop")
    assert crop["type"] == "select_one" and crop["label_zh"] == "作物" and crop["required"] is True
    assert [c["name"] for c in crop["choices"]] == ["rice", "rape"]
    assert {q["type"] for q in ext["questions"]} == {"select_one", "integer", "decimal", "select_multiple", "date",
                                                     "geopoint", "image", "text"}


def test_pushed_answers_are_typed_kept_read_and_pulled(client, phone, official):
    given = {**ANSWERS, "plants": "12", "past_crops": "rice rape", "well": "28.1 115.6 40 5", "note_empty": None}
    del given["note_empty"]
    rec = record(with_extra(phone, "EXS-0001", given))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["status"] == "applied", res
    body = get_sample(client, official.headers, rec["id"])
    assert body["extra"] == ANSWERS and body["extension_version"] == 1  # text spellings stored typed
    [again] = results(push(client, phone["headers"], [record(with_extra(phone, "EXS-0001", ANSWERS), rec["id"])]))
    assert again["status"] == "duplicate"  # the same answers, typed or as text, are the same content
    changes = [c for c in pull_all(client, phone["headers"])[0] if c["type"] == "sample" and c["id"] == rec["id"]]
    assert changes[-1]["data"]["extra"] == ANSWERS and changes[-1]["data"]["extension_version"] == 1
    plain = record(data_for(phone["parcels"][0], "EXS-0002"))  # a client that knows no extension
    assert results(push(client, phone["headers"], [plain]))[0]["status"] == "applied"
    assert "extra" not in get_sample(client, official.headers, plain["id"])


@pytest.mark.parametrize("extra, version, field, words", [
    ({"plants": "twelve"}, 1, "data.extra.plants", "whole number"),
    ({"plants": 1.5}, 1, "data.extra.plants", "whole number"),
    ({"ph_field": "acid"}, 1, "data.extra.ph_field", "number"),
    ({"crop": "wheat"}, 1, "data.extra.crop", "one of"),
    ({"past_crops": ["rice", "maize"]}, 1, "data.extra.past_crops", "one of"),
    ({"tilled_on": "2026-13-01"}, 1, "data.extra.tilled_on", "YYYY-MM-DD"),
    ({"well": {"lat": 128, "lon": 115}}, 1, "data.extra.well", "out of range"),
    ({"field_photo": "f.jpg"}, 1, "data.extra.field_photo", "data.media"),
    ({"crop_variety": "IR64"}, 1, "data.extra.crop_variety", "Unknown question"),
    ({"crop": "rice"}, 7, "data.extension_version", "no form extension version 7"),
    ({"crop": "rice"}, None, "data.extension_version", "Is required"),
    (["rice"], 1, "data.extra", "object"),
])
def test_a_wrong_answer_is_rejected_naming_the_question(client, phone, extra, version, field, words):
    rec = record(with_extra(phone, "EXS-0100", extra, version))
    good = record(with_extra(phone, "EXS-0101", {"crop": "rape"}))
    bad, ok = results(push(client, phone["headers"], [rec, good]))
    assert bad["status"] == "rejected" and bad["code"] == "validation_failed", bad
    assert any(words in m for m in bad["errors"][field]), bad["errors"]
    assert ok["status"] == "applied"  # judged alone


def test_an_image_answer_names_a_photo_of_the_sample(client, phone, official):
    media = [{"name": "field.jpg", "sha256": "a" * 64, "bytes": 10, "mime": "image/jpeg"}]
    rec = record(with_extra(phone, "EXS-0150", {"field_photo": "field.jpg"}, media=media))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["status"] == "applied" and res["state"] == "awaiting_media"
    assert get_sample(client, official.headers, rec["id"])["extra"] == {"field_photo": "field.jpg"}


def test_two_phones_answering_different_questions_merge_field_by_field(client, phone, official):
    rec = record(with_extra(phone, "EXS-0200", {"crop": "rice", "plants": 3}))
    results(push(client, phone["headers"], [rec]))
    first = record(with_extra(phone, "EXS-0200", {"crop": "rape", "plants": 3}), rec["id"], base_version=1)
    assert results(push(client, phone["headers"], [first]))[0]["status"] == "applied"
    second = record(with_extra(phone, "EXS-0200", {"crop": "rice", "plants": 9, "farmer": "李"}), rec["id"],
                    base_version=1)
    [res] = results(push(client, phone["headers"], [second]))
    assert res["status"] == "merged" and res["version"] == 3, res
    assert set(res["soft_fields"]) == {"extra.crop", "extra.plants", "extra.farmer"}
    body = get_sample(client, official.headers, rec["id"])
    assert body["extra"] == {"crop": "rape", "plants": 9, "farmer": "李"}
    versions = client.get(f"/api/v1/samples/{rec['id']}/versions", headers=official.headers).get_json()["items"]
    assert [v["data"].get("extra") for v in versions] == [{"crop": "rice", "plants": 3}, {"crop": "rape", "plants": 3},
                                                          {"crop": "rape", "plants": 9, "farmer": "李"}]


def test_the_same_answer_changed_both_ways_is_a_hard_conflict_naming_it(client, phone, official, app):
    rec = record(with_extra(phone, "EXS-0300", {"plants": 3}))
    results(push(client, phone["headers"], [rec]))
    results(push(client, phone["headers"], [record(with_extra(phone, "EXS-0300", {"plants": 4}), rec["id"], 1)]))
    [res] = results(push(client, phone["headers"], [record(with_extra(phone, "EXS-0300", {"plants": 5}),
                                                           rec["id"], 1)]))
    assert res["status"] == "conflict" and res["hard_fields"] == ["extra.plants"], res
    from tests.api.test_console_pages import Console

    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    page = console.get(f"/console/conflicts/{res['conflict_id']}?lang=en").get_data(as_text=True)
    assert "Plants counted" in page and "extra.plants" not in page.replace('name="pick.extra.plants"', "")
    resolved = client.post(f"/api/v1/conflicts/{res['conflict_id']}/resolve", json={"resolution": "take_incoming"},
                           headers=official.headers)
    assert resolved.status_code == 200, resolved.get_json()
    assert get_sample(client, official.headers, rec["id"])["extra"] == {"plants": 5}
    bad = client.post(f"/api/v1/conflicts/{res['conflict_id']}/resolve", json={"resolution": "merge"},
                      headers=official.headers)
    assert bad.status_code == 409  # already resolved


def test_collect_and_sync_answers_are_stored_alike(client, phone, official, app):
    form = client.get("/api/v1/forms/extensions", headers=official.headers).get_json()["form_version"]
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, phone["parcels"][0], "EXS-0400").decode().replace('version="1"', f'version="{form}"')
    xml = xml.replace("<meta>", "<extra><crop>rice</crop><plants>12</plants><ph_field>6.5</ph_field><past_crops>"
                      "rice rape</past_crops><tilled_on>2026-10-01</tilled_on><well>28.1 115.6 40 5</well>"
                      "<farmer>王</farmer></extra><meta>")
    resp = client.post(f"{phone['key']}/submission?deviceID=collect:abc123", data={
        "xml_submission_file": (io.BytesIO(xml.encode()), "s.xml", "text/xml")}, content_type="multipart/form-data",
        headers={"User-Agent": "org.odk.collect.android/v2025.2.1"})
    openrosa(resp, 201)
    rec = record(with_extra(phone, "EXS-0401", ANSWERS))
    results(push(client, phone["headers"], [rec]))
    by_collect, by_sync = get_sample(client, official.headers, iid), get_sample(client, official.headers, rec["id"])
    assert by_collect["extra"] == by_sync["extra"] == ANSWERS
    assert by_collect["extension_version"] == by_sync["extension_version"] == 1
    with app.app_context():
        rows = {r.sample_id: r for r in db.session.scalars(select(SampleClient))}
        assert (rows[iid].channel, rows[iid].device_id, rows[iid].user_agent) == (
            "openrosa", "collect:abc123", "org.odk.collect.android/v2025.2.1")
        assert (rows[rec["id"]].channel, rows[rec["id"]].device_id, rows[rec["id"]].user_agent) == (
            "sync", phone["device_id"], "fieldsvc-field/1.4 (Android 14)")


def test_each_pushed_version_keeps_its_device_and_user_agent(client, phone, app):
    rec = record(data_for(phone["parcels"][0], "EXS-0500"))
    results(push(client, phone["headers"], [rec]))
    results(push(client, phone["headers"], [rec]))  # a resend makes no version and no row
    edit = record(data_for(phone["parcels"][0], "EXS-0500", depth_bottom_cm=30), rec["id"], base_version=1)
    results(push(client, {**phone["headers"], "User-Agent": "fieldsvc-field/1.5"}, [edit]))
    with app.app_context():
        rows = db.session.scalars(select(SampleClient).where(SampleClient.sample_id == rec["id"])
                                  .order_by(SampleClient.version)).all()
        assert [(r.version, r.device_id, r.user_agent) for r in rows] == [
            (1, phone["device_id"], "fieldsvc-field/1.4 (Android 14)"), (2, phone["device_id"], "fieldsvc-field/1.5")]


# --- shown and exported -------------------------------------------------------------------------------

def test_exports_carry_the_answers_as_columns_headed_by_their_labels(client, phone, official, tmp_path):
    import csv
    import json

    import pyogrio.raw

    from tests.api.test_exports import sheet_rows

    rec = record(with_extra(phone, "EXS-0600", ANSWERS))
    plain = record(data_for(phone["parcels"][0], "EXS-0601"))
    results(push(client, phone["headers"], [rec, plain]))
    parcel = phone["parcels"][0]["properties"]["code"]

    def get(name, **query):
        resp = client.get(f"/api/v1/exports/{name}", query_string={"parcel": parcel, **query}, headers=official.headers)
        assert resp.status_code == 200, resp.get_data()[:300]
        return resp.data

    header, rows = sheet_rows(get("samples.xlsx", lang="zh"))
    assert {"作物", "株数", "现场 pH", "前茬作物", "翻耕日期", "最近水井", "田块照片", "农户"} <= set(header)
    row = next(r for r in rows if r["样品袋编号"] == "EXS-0600")
    assert (row["作物"], row["株数"], row["现场 pH"]) == ("rice", 12, 6.5)
    assert (row["前茬作物"], row["农户"]) == ("rice;rape", "王")
    assert row["最近水井"] == "28.1 115.6" and next(r for r in rows if r["样品袋编号"] == "EXS-0601")["作物"] is None
    text = get("samples.csv", lang="en").decode("utf-8-sig")
    by_code = {r["Bag code"]: r for r in csv.DictReader(io.StringIO(text))}
    assert by_code["EXS-0600"]["Plants counted"] == "12" and by_code["EXS-0600"]["Past crops"] == "rice;rape"
    assert by_code["EXS-0600"]["Tilled on"] == "2026-10-01" and by_code["EXS-0601"]["Crop"] == ""
    features = json.loads(get("samples.geojson"))["features"]
    props = next(f["properties"] for f in features if f["properties"]["code"] == "EXS-0600")
    assert props["extra_crop"] == "rice" and props["extra_ph_field"] == 6.5 and props["extra_past_crops"] == [
        "rice", "rape"]
    path = tmp_path / "samples.gpkg"
    path.write_bytes(get("samples.gpkg"))
    meta, _, _, fields = pyogrio.raw.read(path, layer="samples")
    data = dict(zip(meta["fields"], fields, strict=True))
    at = list(data["code"]).index("EXS-0600")
    assert data["extra_crop"][at] == "rice" and data["extra_plants"][at] == 12 and data["extra_farmer"][at] == "王"


def test_console_pages_show_the_answers_by_label_and_who_made_each_version(client, phone, official, app):
    from tests.api.test_console_pages import Console

    rec = record(with_extra(phone, "EXS-0700", ANSWERS))
    results(push(client, phone["headers"], [rec]))
    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    parcel = phone["parcels"][0]["properties"]["code"]
    page = console.get(f"/console/parcel/{parcel}?lang=zh").get_data(as_text=True)
    assert "作物: 水稻" in page and "前茬作物: 水稻、油菜" in page and "最近水井: 28.100000, 115.600000 (± 5 m)" in page
    page = console.get(f"/console/audit/sample/{rec['id']}?lang=en").get_data(as_text=True)
    assert 'id="extra-answers"' in page and "<th>Past crops</th><td>Rice, Rapeseed</td>" in page
    assert 'id="version-clients"' in page and "Field app sync" in page and phone["device_id"] in page
    assert "fieldsvc-field/1.4 (Android 14)" in page
    assert "<th>Extra questions</th><td>Crop: Rice; Plants counted: 12;" in page  # the version, in words


def test_a_collect_instance_received_before_answers_were_kept_on_the_sample_resends_cleanly(client, phone, official,
                                                                                              app):
    from fieldsvc.samples import services as samples
    from fieldsvc.samples.content import content_hash
    from fieldsvc.samples.models import Sample

    form = client.get("/api/v1/forms/extensions", headers=official.headers).get_json()["form_version"]
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, phone["parcels"][0], "EXS-0900").decode().replace('version="1"', f'version="{form}"')
    xml = xml.replace("<meta>", "<extra><crop>rice</crop></extra><meta>").encode()

    def send():
        return client.post(f"{phone['key']}/submission", data={
            "xml_submission_file": (io.BytesIO(xml), "s.xml", "text/xml")}, content_type="multipart/form-data")

    openrosa(send(), 201)
    with app.app_context():  # as stored before: the answers only on the instance row
        sample = db.session.get(Sample, iid)
        sample.extra = sample.extension_version = None
        sample.data_json = None
        sample.content_hash = content_hash(samples.sample_data(sample))
        db.session.commit()
    assert "extra" in get_sample(client, official.headers, iid)  # read from the instance row
    openrosa(send(), 201)  # Collect resends it: the answers join the sample, no conflict
    got = get_sample(client, official.headers, iid)
    assert got["extra"] == {"crop": "rice"} and got["version"] == 2
    openrosa(send(), 201)
    assert get_sample(client, official.headers, iid)["version"] == 2
