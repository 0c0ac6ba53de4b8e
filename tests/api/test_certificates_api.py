"""Certificates for signed-in users: issue, 409 not_qualified, supersede, revoke, re-test revocation, expiry.

These tests stand ``fieldsvc.grading.qualification.qualification`` in with ``monkeypatch``
(the ``grading`` fixture): a table of answers per subject, qualified by default. The shape is
the one agreed with grading: ``qualified, reasons, grade, verdict, rule_pack {code, version,
verified}, tested_on, grade_id, explanation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from fieldsvc.audit.services import events_for
from fieldsvc.certificates import codes, services
from fieldsvc.certificates.models import Certificate
from fieldsvc.dbtypes import utcnow
from fieldsvc.extensions import db
from tests.helpers import assert_problem


@dataclass
class FakeQualification:
    qualified: bool = True
    reasons: list[str] = field(default_factory=list)
    grade: str = "clean"
    verdict: str = "qualified"
    rule_pack: dict[str, Any] = field(
        default_factory=lambda: {"code": "green_food_soil", "version": "2021.1", "verified": False})
    tested_on: date | None = date(2026, 9, 14)
    grade_id: int | None = 1
    explanation: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def grading(monkeypatch) -> dict[tuple[str, str], FakeQualification]:
    """Answers of the stand-in ``qualification()``, keyed by (subject_type, code); qualified otherwise."""
    import fieldsvc.grading.qualification as module

    answers: dict[tuple[str, str], FakeQualification] = {}

    def qualification(subject_type: str, code: str, rule_pack: str | None = None) -> FakeQualification:
        return answers.get((subject_type, code), FakeQualification())

    monkeypatch.setattr(module, "qualification", qualification, raising=False)
    return answers


def parcel_of(county, index: int = 0) -> dict[str, Any]:
    return county.parcels[index]["properties"]


def issue(client, official, subject_type="parcel", code=None, county=None, headers=None, **extra):
    code = code or parcel_of(county)["code"]
    return client.post("/api/v1/certificates", json={"subject_type": subject_type, "code": code, **extra},
                       headers={**official.headers, **(headers or {})})


def issued(client, official, county, index=0, **extra) -> dict[str, Any]:
    resp = issue(client, official, code=parcel_of(county, index)["code"], **extra)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_issue_parcel_returns_code_and_verify_url_and_reads_back(app, client, official, county, grading):
    parcel = parcel_of(county)
    body = issued(client, official, county, valid_days=30)
    assert codes.normalise_code(body["code"]) == body["code"] and body["status"] == "valid"
    assert body["verify_url"] == f"{app.config['PUBLIC_BASE_URL']}/C/{body['code']}".upper()
    assert body["subject"] == {"type": "parcel", "code": parcel["code"], "name": parcel["code"]}
    village = next(r for r in county.regions if r["code"] == parcel["village"])
    township = next(r for r in county.regions if r["code"] == village["parent"])
    assert body["place"]["village"] == village["name"] and body["place"]["township"] == township["name"]
    assert body["grade"]["grade"] == "clean" and body["grade"]["tested_on"] == "2026-09-14"
    assert body["grade"]["rule_pack"] == {"code": "green_food_soil", "version": "2021.1", "verified": False}
    assert body["grade"]["standard"].startswith("NY/T 391")
    days = (date.fromisoformat(body["valid_until"][:10]) - date.fromisoformat(body["issued_at"][:10])).days
    assert days == 30
    again = client.get(f"/api/v1/certificates/{body['code']}", headers=official.headers)
    assert again.status_code == 200 and again.get_json()["code"] == body["code"]
    assert again.get_json()["scans"]["count"] == 0
    with app.app_context():
        actions = [e.action for e in events_for("certificate", body["code"])]
    assert actions == ["issue"]


def test_not_qualified_is_409_with_reasons_and_stores_nothing(client, official, county, grading):
    code = parcel_of(county)["code"]
    grading[("parcel", code)] = FakeQualification(qualified=False, verdict="not_qualified", grade="polluted",
                                                  reasons=["Cd 0.45 mg/kg > limit 0.30 (sample S-1)"])
    body = assert_problem(issue(client, official, code=code), 409, "not_qualified")
    assert body["details"]["reasons"] == ["Cd 0.45 mg/kg > limit 0.30 (sample S-1)"]
    listed = client.get("/api/v1/certificates", query_string={"subject": code}, headers=official.headers)
    assert listed.get_json()["items"] == []


def test_qualified_without_a_test_date_is_refused(client, official, county, grading):
    code = parcel_of(county)["code"]
    grading[("parcel", code)] = FakeQualification(tested_on=None)
    body = assert_problem(issue(client, official, code=code), 409, "not_qualified")
    assert "test date" in body["details"]["reasons"][0]


@pytest.mark.parametrize(("body", "field"), [
    ({"subject_type": "county", "code": "X"}, "subject_type"),
    ({"subject_type": "parcel"}, "code"),
    ({"subject_type": "parcel", "code": "P", "valid_days": 0}, "valid_days"),
    ({"subject_type": "parcel", "code": "P", "valid_days": "many"}, "valid_days"),
    ({"subject_type": "parcel", "code": "<b>"}, "code"),
])
def test_bad_issue_input_names_the_field(client, official, body, field):
    assert_problem(client.post("/api/v1/certificates", json=body, headers=official.headers), 422,
                   "validation_failed", field)


def test_unknown_subject_is_404_and_village_must_be_a_village(client, official, county, grading):
    assert_problem(issue(client, official, code="NO-SUCH-PARCEL"), 404, "not_found")
    township = next(r["code"] for r in county.regions if r["level"] == "township")
    assert_problem(issue(client, official, "village", township), 422, "validation_failed", "code")


def test_roles(client, make_account, official, county, grading):
    lab = make_account("lab")
    assert_problem(issue(client, lab, county=county), 403, "forbidden")
    assert_problem(client.post("/api/v1/certificates", json={}), 401, "unauthorized")
    body = issued(client, official, county)
    assert client.get(f"/api/v1/certificates/{body['code']}", headers=lab.headers).status_code == 200
    assert_problem(client.post(f"/api/v1/certificates/{body['code']}/revoke", json={"reason": "test"},
                               headers=lab.headers), 403, "forbidden")


def test_county_scoped_official_sees_other_counties_as_absent(client, make_account, official, county, grading):
    body = issued(client, official, county)
    other = make_account("official", county="999999")
    assert_problem(client.get(f"/api/v1/certificates/{body['code']}", headers=other.headers), 404, "not_found")
    assert client.get("/api/v1/certificates", headers=other.headers).get_json()["items"] == []


def test_village_and_farm_park_certificates_name_places_not_coordinates(client, official, county, grading):
    village = next(r for r in county.regions if r["level"] == "village")
    body = issue(client, official, "village", village["code"]).get_json()
    assert body["subject"]["name"] == village["name"] and body["place"]["village"] == village["name"]
    park = county.farm_parks[0]
    body = issue(client, official, "farm_park", park["code"]).get_json()
    assert body["subject"]["name"] == park["name"] and body["place"]["farm_park"] == park["name"]
    assert "geometry" not in str(body) and "coordinates" not in str(body)


def test_new_certificate_supersedes_the_valid_one(client, official, county, grading):
    first = issued(client, official, county)
    second = issued(client, official, county)
    old = client.get(f"/api/v1/certificates/{first['code']}", headers=official.headers).get_json()
    assert old["status"] == "superseded" and old["replaced_by"] == second["code"]
    listed = client.get("/api/v1/certificates", query_string={"subject": parcel_of(county)["code"]},
                        headers=official.headers).get_json()["items"]
    assert [(c["code"], c["status"]) for c in listed] == [(first["code"], "superseded"), (second["code"], "valid")]
    valid = client.get("/api/v1/certificates", query_string={"status": "valid"}, headers=official.headers)
    assert [c["code"] for c in valid.get_json()["items"]] == [second["code"]]


def test_retry_with_the_same_idempotency_key_returns_the_first(app, client, official, county, grading):
    key = {"headers": {"Idempotency-Key": "7d1c0b5e-4a70-4f5f-9d0c-3c2b1a0f9e88"}}
    first = issue(client, official, code=parcel_of(county)["code"], **key)
    again = issue(client, official, code=parcel_of(county)["code"], **key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["code"] == first.get_json()["code"] and again.get_json()["status"] == "valid"
    other = issue(client, official, code=parcel_of(county, 1)["code"], **key)
    assert_problem(other, 409, "idempotency_key_reused")
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Certificate)) == 1


def test_revoke_needs_a_reason_then_shows_it(app, client, official, county, grading):
    body = issued(client, official, county)
    url = f"/api/v1/certificates/{body['code']}/revoke"
    assert_problem(client.post(url, json={}, headers=official.headers), 422, "validation_failed", "reason")
    assert_problem(client.post(url, json={"reason": "   "}, headers=official.headers), 422, "validation_failed",
                   "reason")
    resp = client.post(url, json={"reason": "label misprinted"}, headers=official.headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "revoked"
    read = client.get(f"/api/v1/certificates/{body['code']}", headers=official.headers).get_json()
    assert read["reason"] == "label misprinted" and read["revoked_by"] == f"user:{official.username}"
    assert read["revoked_at"] is not None
    assert client.post(url, json={"reason": "label misprinted"}, headers=official.headers).status_code == 200
    assert_problem(client.post(url, json={"reason": "another"}, headers=official.headers), 409,
                   "certificate_revoked")
    with app.app_context():
        assert [e.action for e in events_for("certificate", body["code"])] == ["issue", "revoke"]


def test_lowercase_hyphenated_code_finds_the_certificate(client, official, county, grading):
    body = issued(client, official, county)
    typed = codes.format_code(body["code"]).lower()
    assert client.get(f"/api/v1/certificates/{typed}", headers=official.headers).get_json()["code"] == body["code"]
    assert_problem(client.get("/api/v1/certificates/not-a-code", headers=official.headers), 404, "not_found")


def test_failed_retest_revokes_at_once_and_the_next_scan_shows_it(app, client, official, county, grading):
    body = issued(client, official, county)
    parcel = parcel_of(county)["code"]
    other = parcel_of(county, 1)["code"]
    with app.app_context():
        # the re-grade hook offers on_grade_changed only the subjects holding a valid certificate
        assert services.certified_subjects([("parcel", parcel), ("parcel", other)]) == {("parcel", parcel)}
        assert services.on_grade_changed("parcel", parcel, True, "still fine") == []
        revoked = services.on_grade_changed("parcel", parcel, False, "re-test: Cd 0.41 > 0.30")
        db.session.commit()
        assert services.certified_subjects([("parcel", parcel)]) == set()  # revoked: nothing left to revoke
    assert revoked == [body["code"]]
    scan = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert scan["status"] == "revoked" and scan["reason"] == "re-test: Cd 0.41 > 0.30" and scan["genuine"]
    read = client.get(f"/api/v1/certificates/{body['code']}", headers=official.headers).get_json()
    assert read["revoked_by"] == "system: re-test"


def test_expiry_is_judged_by_the_server_clock_when_read(app, client, official, county, grading):
    body = issued(client, official, county)
    with app.app_context():
        db.session.execute(update(Certificate).values(valid_until=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    read = client.get(f"/api/v1/certificates/{body['code']}", headers=official.headers).get_json()
    assert read["status"] == "expired"
    listed = client.get("/api/v1/certificates", query_string={"status": "expired"}, headers=official.headers)
    assert [c["code"] for c in listed.get_json()["items"]] == [body["code"]]
    assert client.get(f"/api/v1/verify/{body['code']}").get_json()["status"] == "expired"
    # a new certificate does not "supersede" an expired one: it stays expired
    issued(client, official, county)
    assert client.get(f"/api/v1/verify/{body['code']}").get_json()["status"] == "expired"


def test_injectable_clock_expires_without_touching_the_row(client, official, county, grading, monkeypatch):
    body = issued(client, official, county, valid_days=10)
    monkeypatch.setattr(services, "now", lambda: utcnow() + timedelta(days=11))
    assert client.get(f"/api/v1/verify/{body['code']}").get_json()["status"] == "expired"


def test_certificate_pdf_and_watermark_once_revoked(client, official, county, grading):
    from tests.api.test_certificates_labels import pdf_text

    body = issued(client, official, county)
    resp = client.get(f"/api/v1/certificates/{body['code']}.pdf", headers=official.headers)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    text = pdf_text(resp.data)
    assert codes.format_code(body["code"]) in text and "有效 Valid" in text and "Revoked" not in text
    client.post(f"/api/v1/certificates/{body['code']}/revoke", json={"reason": "re-test failed"},
                headers=official.headers)
    again = pdf_text(client.get(f"/api/v1/certificates/{body['code']}.pdf", headers=official.headers).data)
    assert "已撤销 Revoked — re-test failed" in again  # the status row; the diagonal watermark too:
    assert all(ch in again for ch in "REVOKED")  # (rotated, pdftotext reads it a letter per line)


def test_end_to_end_through_real_grading_and_a_failed_retest(app, client, official, county):
    """No stand-in: approved results grade the parcel, it is certified, a failing re-test revokes it."""
    from tests.api.test_grading_api import CLEAN, FAIL_CD, paddy, put_results, put_sample, regrade

    parcel = paddy(county)["code"]
    assert_problem(issue(client, official, code=parcel), 409, "not_qualified")  # not graded yet
    first = put_sample(app, parcel)
    put_results(app, first, CLEAN)
    regrade(app, first)
    resp = issue(client, official, code=parcel)
    assert resp.status_code == 201, resp.get_json()
    cert = resp.get_json()
    assert cert["grade"]["grade"] == "clean" and cert["grade"]["verdict"] == "qualified"
    assert cert["grade"]["tested_on"] == date.today().isoformat()
    retest = put_sample(app, parcel)
    put_results(app, retest, FAIL_CD)
    regrade(app, retest)
    scan = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert scan["status"] == "revoked" and "not_qualified" in scan["reason"]
    body = assert_problem(issue(client, official, code=parcel), 409, "not_qualified")
    assert any(r.startswith("not_qualified: Cd") for r in body["details"]["reasons"])
