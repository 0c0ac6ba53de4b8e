"""Land labels: a soil passport for any graded parcel, village or farm park, pass or fail (real grading)."""

from __future__ import annotations

import subprocess

from sqlalchemy import select

from fieldsvc.certificates.models import Certificate
from fieldsvc.extensions import db
from tests.api.test_grading_api import CLEAN, FAIL_CD, paddy, put_results, put_sample, regrade
from tests.helpers import assert_problem


def label(client, official, subject_type, code):
    return client.post("/api/v1/land-labels", json={"subject_type": subject_type, "code": code},
                       headers=official.headers)


def graded(app, parcel: str, values: dict[str, str]) -> str:
    sid = put_sample(app, parcel)
    put_results(app, sid, values)
    regrade(app, sid)
    return sid


def retest(app, sid: str, values: dict[str, str]) -> None:
    """A re-test: the sample's results get a second, approved version that supersedes the first."""
    from fieldsvc.lab.models import LabResult

    with app.app_context():
        for r in db.session.scalars(select(LabResult).where(LabResult.sample_id == sid)):
            if r.analyte in values:
                r.status = "rejected"
        db.session.commit()
    put_results(app, sid, values, version=2)
    regrade(app, sid)


def test_failing_parcel_gets_a_label_that_says_it_does_not_meet_nyt391(app, client, official, county, tmp_path):
    parcel = paddy(county)["code"]
    graded(app, parcel, FAIL_CD)
    # a certificate is refused, a land label is not
    cert = client.post("/api/v1/certificates", json={"subject_type": "parcel", "code": parcel},
                       headers=official.headers)
    assert_problem(cert, 409, "not_qualified")
    resp = label(client, official, "parcel", parcel)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["kind"] == "land_label" and body["verify_url"].endswith(f"/C/{body['code']}")
    head = body["conclusion"]
    assert head["standard"].startswith("NY/T 391") and head["verdict"] == "does_not_meet"
    assert head["failing"] == ["Cd"] and head["basis"] == "measured"
    cd = next(e for e in body["elements"] if e["analyte"] == "Cd")
    assert cd["value"] == "0.45" and cd["limit"] == "0.30" and cd["unit"] == "mg/kg"
    # the same subject again: its one live label, not a second
    again = label(client, official, "parcel", parcel)
    assert again.status_code == 200 and again.get_json()["code"] == body["code"]
    verify = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert verify["genuine"] and verify["kind"] == "land_label" and verify["claims"]["kind"] == "land_label"
    assert verify["conclusions"][0]["failing"] == ["Cd"] and {"analyte", "value", "unit", "limit"} <= set(
        verify["elements"][0])
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：不符合绿色食品产地环境质量（NY/T 391）标准，超标元素：镉。" in zh
    en = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert "does not meet the green-food production soil standard (NY/T 391)" in en and "Cadmium" in en
    assert 'data-analyte="Cd"' in en and "over" in en
    pdf = client.get(f"/api/v1/certificates/{body['code']}.pdf", headers=official.headers)
    path = tmp_path / "label.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "不符合 Does not meet" in text and "Cd" in text and "Land label" in text
    sheet = client.get(f"/api/v1/labels.pdf?codes={body['code']}", headers=official.headers)
    path.write_bytes(sheet.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "结论：不符合NY/T 391" in text


def test_a_retest_flips_the_page_on_the_next_scan_and_the_code_stays(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = graded(app, parcel, FAIL_CD)
    body = label(client, official, "parcel", parcel).get_json()
    retest(app, sid, {"Cd": "0.10"})
    verify = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert verify["conclusion"]["verdict"] == "meets" and verify["conclusion"]["failing"] == []
    assert [h["verdict"] for h in verify["history"]] == ["meets", "does_not_meet"]
    assert verify["since"] == verify["history"][0]["at"]
    html = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：符合绿色食品产地环境质量（NY/T 391）标准。" in html and "历次结论" in html
    # the label stays valid (a land label says pass or fail), a certificate would have been revoked
    with app.app_context():
        row = db.session.scalar(select(Certificate).where(Certificate.code == body["code"]))
        assert row.status == "valid" and row.kind == "land_label"


def test_village_label_uses_its_worst_parcel_and_names_no_parcel(app, client, official, county):
    first, second = paddy(county, 0), paddy(county, 1)
    assert first["village"] == second["village"]
    graded(app, first["code"], CLEAN)
    graded(app, second["code"], {**CLEAN, "Pb": "45"})
    resp = label(client, official, "village", first["village"])
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    pb = next(e for e in body["elements"] if e["analyte"] == "Pb")
    assert pb["value"] == "45"  # the worst parcel's value, not the first one's
    html = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert first["code"] not in html and second["code"] not in html


def test_selenium_rich_only_where_the_pack_says_the_values_qualify(app, client, official, county):
    from fieldsvc.grading.passport import soil_passport

    parcel = paddy(county)["code"]
    graded(app, parcel, {**CLEAN, "Se": "0.10"})
    with app.app_context():
        packs = [c["pack"] for c in soil_passport("parcel", parcel)["conclusions"]]
    assert "dzt0380_se_rich" not in packs


def test_ungraded_subject_and_bad_input(client, official, county, make_account):
    parcel = paddy(county)["code"]
    assert_problem(label(client, official, "parcel", parcel), 409, "not_graded")
    assert_problem(label(client, official, "house", parcel), 422, "validation_failed", "subject_type")
    assert_problem(label(client, official, "parcel", "NOPE-1"), 404, "not_found")
    lab = make_account("lab")
    resp = client.post("/api/v1/land-labels", json={"subject_type": "parcel", "code": parcel}, headers=lab.headers)
    assert resp.status_code == 403
