"""Every entry point of every chain leaves grades and certificates as a full re-grade would.

The chain (``fieldsvc/handlers.py``): parcels imported → held samples linked → re-grade →
certificates revoked; a photo completes a sample → re-grade; results approved → re-grade →
revoke. Each test drives one entry point (API, console, CLI, OpenRosa, housekeeping, demo) on a
county whose maintained grades exist, then ``assert_as_full_regrade``: a county run from
scratch, in a transaction rolled back afterwards, changes no parcel and no area grade, and
every valid certificate's subject still qualifies.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import uuid

import pytest
from sqlalchemy import select

from fieldsvc.extensions import db
from tests.api.test_console_pages import Console, text_of
from tests.api.test_grading_api import CLEAN, FAIL_CD, grade, put_results, put_sample, regrade
from tests.api.test_openrosa_api import instance_xml, manifest, openrosa, submit
from tests.api.test_sync_push import data_for, parcels_in, push, record, register_device, results, village_codes

# --- the oracle --------------------------------------------------------------------------------------------

def assert_as_full_regrade(app, county_code: str) -> None:
    """A full county run changes nothing, and no valid certificate's subject has stopped qualifying."""
    from fieldsvc.certificates.models import Certificate
    from fieldsvc.grading.qualification import qualification
    from fieldsvc.grading.runs import run_grading

    with app.app_context():
        try:
            run = run_grading("county", county_code)
            counts = dict(run.counts)
            stale = [c["subject_type"] + " " + c["code"] for c in run.changed]
            certificates = list(db.session.execute(select(Certificate.code, Certificate.subject_type,
                                                          Certificate.subject_code).where(
                Certificate.status == "valid", Certificate.county_code == county_code)))
            unqualified = [code for code, kind, subject in certificates
                           if not qualification(kind, subject).qualified]
        finally:
            db.session.rollback()
    assert (counts["changed"], counts["areas_changed"]) == (0, 0), f"stale grades: {stale}"
    assert unqualified == [], f"valid certificates of subjects that no longer qualify: {unqualified}"


def run_county(app, county_code: str) -> None:
    from fieldsvc.grading.runs import run_grading

    with app.app_context():
        run_grading("county", county_code)
        db.session.commit()


def verdict(client, account, code: str) -> str:
    resp = grade(client, account, "parcel", code)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["verdict"]


def paddies(features) -> list[dict]:
    return [f for f in features if f["properties"]["land_use"] == "paddy"]


def sample_state(app, sid: str) -> str:
    from fieldsvc.samples.models import Sample

    with app.app_context():
        return db.session.get(Sample, sid).state


@pytest.fixture
def graded(app, county):
    """The small county with its maintained grades built (a county run)."""
    run_county(app, county.county)
    return county


@pytest.fixture
def phone(client, official, graded, make_account):
    villages = village_codes(graded, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "device_id": device_id, "parcels": parcels_in(graded, villages)}


def issue(client, account, code: str) -> str:
    resp = client.post("/api/v1/certificates", json={"subject_type": "parcel", "code": code},
                       headers=account.headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["code"]


def certificate_status(client, account, code: str) -> str:
    return client.get(f"/api/v1/certificates/{code}", headers=account.headers).get_json()["status"]


def certified_paddy(app, client, official, county) -> tuple[str, str, str]:
    """A paddy parcel with one clean approved sample, graded, and a valid certificate for it."""
    parcel = paddies(county.parcels)[0]["properties"]["code"]
    sid = put_sample(app, parcel, county=county.county)
    put_results(app, sid, CLEAN)
    regrade(app, sid)
    assert verdict(client, official, parcel) == "qualified"
    return parcel, sid, issue(client, official, parcel)


# --- API -----------------------------------------------------------------------------------------------------

def test_api_parcel_import_links_held_samples_and_grades_them(app, client, official, graded):
    """A sample pushed before its parcel existed, with approved results, grades when the parcel arrives."""
    template = copy.deepcopy(paddies(graded.parcels)[0])
    code = "EV-NEW-PADDY"
    sid = put_sample(app, code, state="held", county=graded.county)
    put_results(app, sid, CLEAN)
    template["properties"] = {k: v for k, v in template["properties"].items() if k not in ("area_m2",)}
    template["properties"]["code"] = code
    resp = client.post("/api/v1/parcels", json={"type": "FeatureCollection", "features": [template]},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    assert sample_state(app, sid) == "complete"
    assert verdict(client, official, code) == "qualified"
    assert_as_full_regrade(app, graded.county)


def test_api_parcel_delete_regrades_and_revokes(app, client, official, graded):
    parcel, _, cert = certified_paddy(app, client, official, graded)
    assert client.delete(f"/api/v1/parcels/{parcel}", headers=official.headers).status_code in (200, 204)
    assert certificate_status(client, official, cert) == "revoked"
    assert_as_full_regrade(app, graded.county)


def test_api_parcel_edit_regrades(app, client, official, graded):
    parcel, _, _ = certified_paddy(app, client, official, graded)
    resp = client.patch(f"/api/v1/parcels/{parcel}", json={"area_m2": 12345.0}, headers=official.headers)
    assert resp.status_code == 200, resp.get_json()
    assert_as_full_regrade(app, graded.county)


def test_api_lab_approval_of_a_failing_retest_regrades_and_revokes(app, client, official, graded):
    parcel, sid, cert = certified_paddy(app, client, official, graded)
    [cd] = put_results(app, sid, {"Cd": FAIL_CD["Cd"]}, status="pending", version=2)
    resp = client.post(f"/api/v1/lab/results/{cd}/approve", headers=official.headers)
    assert resp.status_code == 200, resp.get_json()
    assert verdict(client, official, parcel) == "not_qualified"
    assert certificate_status(client, official, cert) == "revoked"
    assert_as_full_regrade(app, graded.county)


def test_api_media_upload_completing_a_sample_grades_it(app, client, official, phone, graded):
    photo = os.urandom(3000)
    sha = hashlib.sha256(photo).hexdigest()
    feature = paddies(phone["parcels"])[0]
    media = [{"name": "a.jpg", "sha256": sha, "bytes": len(photo), "mime": "image/jpeg"}]
    rec = record(data_for(feature, "EV-MEDIA-1", media=media))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["state"] == "awaiting_media"
    put_results(app, rec["id"], CLEAN)  # results approved while the photo is still on its way
    assert_as_full_regrade(app, graded.county)
    assert client.put(f"/api/v1/media/{sha}", data=photo, headers=phone["headers"]).status_code == 201
    assert sample_state(app, rec["id"]) == "complete"
    assert verdict(client, official, feature["properties"]["code"]) == "qualified"
    assert_as_full_regrade(app, graded.county)


def test_api_sync_push_edit_moving_a_sample_regrades_both_parcels(app, client, official, phone, graded):
    first, second = paddies(phone["parcels"])[:2]
    rec = record(data_for(first, "EV-MOVE-1"))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["state"] == "complete"
    put_results(app, rec["id"], CLEAN)
    regrade(app, rec["id"])
    assert verdict(client, official, first["properties"]["code"]) == "qualified"
    moved = record(data_for(second, "EV-MOVE-1"), rid=rec["id"], base_version=1)
    [res] = results(push(client, phone["headers"], [moved]))
    assert res["status"] in ("applied", "merged"), res
    assert verdict(client, official, second["properties"]["code"]) == "qualified"
    assert verdict(client, official, first["properties"]["code"]) != "qualified"
    assert_as_full_regrade(app, graded.county)


# --- console -------------------------------------------------------------------------------------------------

@pytest.fixture
def console(app, make_account):
    account = make_account("official")
    c = Console(app)
    assert c.login(account.username, account.password).status_code == 303
    c.get("/console/queues")  # a page with a form: its CSRF token
    return c


def test_console_link_held_sample_regrades_its_parcel(app, client, official, graded, console):
    """The console's "link" used to link the sample and leave its parcel's grade stale."""
    parcel = paddies(graded.parcels)[1]["properties"]["code"]
    sid = put_sample(app, parcel, state="held", county=graded.county)  # held while its parcel already exists
    put_results(app, sid, CLEAN)
    assert verdict(client, official, parcel) == "not_assessed"
    resp = console.post(f"/console/samples/{sid}/link")
    assert resp.status_code == 303, re.sub(r"<[^>]+>", " ", text_of(resp).split("</style>")[-1])[:800]
    assert sample_state(app, sid) == "complete"
    assert verdict(client, official, parcel) == "qualified"
    assert_as_full_regrade(app, graded.county)


def test_console_approval_regrades_and_revokes(app, client, official, graded, console):
    parcel, sid, cert = certified_paddy(app, client, official, graded)
    [cd] = put_results(app, sid, {"Cd": FAIL_CD["Cd"]}, status="pending", version=2)
    assert console.post(f"/console/results/{cd}/approve").status_code == 303
    assert verdict(client, official, parcel) == "not_qualified"
    assert certificate_status(client, official, cert) == "revoked"
    assert_as_full_regrade(app, graded.county)


def test_console_move_held_sample_regrades(app, client, official, graded, console):
    parcel = paddies(graded.parcels)[2]["properties"]["code"]
    sid = put_sample(app, "EV-TYPO", state="held", county=graded.county)
    put_results(app, sid, CLEAN)
    assert console.post(f"/console/samples/{sid}/parcel", {"parcel": parcel}).status_code == 303
    assert verdict(client, official, parcel) == "qualified"
    assert_as_full_regrade(app, graded.county)


# --- OpenRosa ------------------------------------------------------------------------------------------------

def test_openrosa_split_submission_completing_a_sample_grades_it(app, client, official, phone, graded):
    photos = [("1700000001.jpg", os.urandom(5000)), ("1700000002.jpg", os.urandom(5001))]
    feature = paddies(phone["parcels"])[0]
    iid = str(uuid.uuid4())
    xml = instance_xml(iid, feature, "EV-OR-1", [n for n, _ in photos])
    openrosa(submit(client, phone["headers"], xml, photos[:1], incomplete=True), 201)
    assert sample_state(app, iid) == "awaiting_media"
    put_results(app, iid, CLEAN)
    openrosa(submit(client, phone["headers"], xml, photos[1:]), 201)
    got = client.get(f"/api/v1/samples/{iid}", headers=official.headers).get_json()
    assert got["state"] == "complete" and got["media"] == manifest(photos)
    assert verdict(client, official, feature["properties"]["code"]) == "qualified"
    assert_as_full_regrade(app, graded.county)


# --- housekeeping (through the CLI) and the demo -------------------------------------------------------------

def strand(app, parcel: str, county_code: str) -> tuple[str, str]:
    """What a crash between publishing a photo and the commit left behind, before the fix: the
    blob complete, its sample still ``awaiting_media``."""
    from fieldsvc.media.models import MediaBlob, SampleMedia
    from fieldsvc.samples.models import Sample

    sid = put_sample(app, parcel, state="awaiting_media", county=county_code)
    sha = hashlib.sha256(sid.encode()).hexdigest()
    with app.app_context():
        db.session.add(MediaBlob(sha256=sha, total_bytes=10, received_bytes=10, complete=True, created_by="test"))
        db.session.add(SampleMedia(sample_id=sid, sha256=sha))
        db.session.get(Sample, sid).media = [{"name": "a.jpg", "sha256": sha, "bytes": 10, "mime": "image/jpeg"}]
        db.session.commit()
    return sid, sha


def test_cli_housekeeping_completes_samples_whose_media_all_arrived(app, client, official, graded):
    parcel = paddies(graded.parcels)[3]["properties"]["code"]
    sid, _ = strand(app, parcel, graded.county)
    put_results(app, sid, CLEAN)
    result = app.test_cli_runner().invoke(args=["housekeeping"])
    assert result.exit_code == 0, result.output
    assert "media_samples_repaired=1" in result.output
    assert sample_state(app, sid) == "complete"
    assert verdict(client, official, parcel) == "qualified"
    assert_as_full_regrade(app, graded.county)
    again = app.test_cli_runner().invoke(args=["housekeeping"])
    assert "media_samples_repaired=0" in again.output


def test_demo_leaves_grades_and_certificates_as_a_full_regrade_would(app):
    result = app.test_cli_runner().invoke(args=["demo", "--parcels", "400", "--seed", "5"])
    assert result.exit_code == 0, result.output
    from fieldsvc.places.models import Region

    with app.app_context():
        county_code = db.session.scalar(select(Region.code).where(Region.level == "county"))
    assert re.fullmatch(r"\d{6}", county_code)
    assert_as_full_regrade(app, county_code)
