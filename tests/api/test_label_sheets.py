"""Label sheets: printing is made once (POST, Idempotency-Key) and its PDF fetched again with the same serials.

Before sheets, ``GET /api/v1/labels.pdf?serials=N`` created serials and counted them against the
quota, so a retried or re-opened request counted again. These tests fail if any GET creates or
counts anything, or if a retry makes a second sheet.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from sqlalchemy import func, select

from fieldsvc.audit.models import AuditEvent
from fieldsvc.certificates.models import LabelSerial, LabelSheet
from fieldsvc.extensions import db
from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issue, issued, parcel_of
from tests.api.test_certificates_labels import decode_pdf
from tests.api.test_label_serials import printed_serials
from tests.helpers import assert_problem

grading = _grading


def make_sheet(client, official, body, key=None):
    headers = {**official.headers, **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/v1/label-sheets", json=body, headers=headers)


def printed(client, official, code):
    return client.get(f"/api/v1/certificates/{code}", headers=official.headers).get_json()["labels"]


def counts(app):
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(LabelSerial)),
                db.session.scalar(select(func.count()).select_from(LabelSheet)))


def test_a_retried_post_returns_the_same_sheet_and_counts_once(app, client, official, county, grading):
    cert = issue(client, official, county=county, area_m2=100, crop="水稻").get_json()  # quota 12
    body = {"codes": [cert["code"]], "serials": 4, "template": "a4_3x7", "start_slot": 2}
    first = make_sheet(client, official, body, key="print-1")
    assert first.status_code == 201, first.get_json()
    sheet = first.get_json()
    assert sheet["labels"] == 4 and sheet["quotas"][cert["code"]] == {"printed": 4, "quota": 12}
    serials = [i["serial"] for i in sheet["items"]]
    assert len(set(serials)) == 4 and serials == printed_serials(app, cert["code"])
    again = make_sheet(client, official, body, key="print-1")
    assert again.status_code == 200 and again.get_json()["id"] == sheet["id"]
    assert [i["serial"] for i in again.get_json()["items"]] == serials
    assert printed(client, official, cert["code"]) == {"printed": 4, "quota": 12}
    # the same key for another request is refused, never a second sheet
    other = make_sheet(client, official, {**body, "serials": 5}, key="print-1")
    assert_problem(other, 409, "idempotency_key_reused")
    assert counts(app) == (4, 1)
    with app.app_context():
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "label_sheet")).all()
        assert [(a.entity_key, a.action) for a in audit] == [(str(sheet["id"]), "create")]


def test_the_sheet_pdf_prints_the_same_serials_every_time_and_counts_nothing(app, client, official, county,
                                                                             grading):
    cert = issue(client, official, county=county, area_m2=100, crop="水稻").get_json()
    sheet = make_sheet(client, official, {"codes": [cert["code"]], "serials": 3}).get_json()
    urls = sorted(i["url"] for i in sheet["items"])
    assert urls == sorted(f"{cert['verify_url']}/{s}" for s in printed_serials(app, cert["code"]))
    before = counts(app)
    for _ in range(3):  # a re-opened tab, a retried download, a jammed printer
        pdf = client.get(sheet["pdf_url"], headers=official.headers)
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert sorted(decode_pdf(pdf.data)) == urls
    moved = client.get(sheet["pdf_url"], query_string={"start_slot": 19, "template": "a4_3x7"},
                       headers=official.headers)
    assert moved.status_code == 200 and moved.data != pdf.data and sorted(decode_pdf(moved.data)) == urls
    assert counts(app) == before and printed(client, official, cert["code"]) == {"printed": 3, "quota": 12}
    read = client.get(f"/api/v1/label-sheets/{sheet['id']}", headers=official.headers).get_json()
    assert read["items"] == sheet["items"] and read["created_by"].endswith(official.username)
    # a revoked certificate's sheet is not reprinted (its serials' pages say revoked)
    client.post(f"/api/v1/certificates/{cert['code']}/revoke", json={"reason": "re-test failed"},
                headers=official.headers)
    assert_problem(client.get(sheet["pdf_url"], headers=official.headers), 409, "certificate_not_valid")


def test_a_get_with_serials_is_the_contract_and_counts_once_per_key(app, client, official, county, grading):
    """DESIGN §4.7: ``GET labels.pdf?serials=N`` prints N serial labels per code. It is made as a label
    sheet, so the labels count once; a retry with the same Idempotency-Key gets the same sheet."""
    cert = issued(client, official, county)
    before = counts(app)
    query = {"codes": cert["code"], "serials": 3}
    headers = {**official.headers, "Idempotency-Key": "print-run-1"}
    first = client.get("/api/v1/labels.pdf", query_string=query, headers=headers)
    again = client.get("/api/v1/labels.pdf", query_string=query, headers=headers)
    assert first.status_code == again.status_code == 200 and first.mimetype == "application/pdf"
    assert first.headers["Location"] == again.headers["Location"]
    urls = sorted(decode_pdf(first.data))
    assert len(urls) == 3 and all(f"/C/{cert['code']}/" in u for u in urls) and sorted(decode_pdf(again.data)) == urls
    assert printed(client, official, cert["code"])["printed"] == 3
    other = client.get("/api/v1/labels.pdf", query_string=query, headers=official.headers)  # no key: a new sheet
    assert other.headers["Location"] != first.headers["Location"] and set(decode_pdf(other.data)).isdisjoint(urls)
    assert printed(client, official, cert["code"])["printed"] == 6
    plain = client.get("/api/v1/labels.pdf", query_string={"codes": cert["code"]}, headers=official.headers)
    assert plain.status_code == 200  # plain labels (the certificate's own /C/<CODE>) print with a GET, uncounted
    assert printed(client, official, cert["code"])["printed"] == 6 and counts(app) != before
    assert_problem(client.get("/api/v1/labels.pdf", query_string={**query, "serials": 1000}, headers=official.headers),
                   409, "quota_exceeded")
    assert_problem(client.get("/api/v1/label-sheets/999999", headers=official.headers), 404, "not_found")
    assert_problem(client.get("/api/v1/label-sheets/999999.pdf", headers=official.headers), 404, "not_found")


def test_sheet_input_is_checked(app, client, official, county, grading, make_account):
    cert = issued(client, official, county)
    assert_problem(make_sheet(client, official, {"serials": 2}), 422, "validation_failed", "codes")
    assert_problem(make_sheet(client, official, {"codes": 5}), 422, "validation_failed", "codes")
    assert_problem(make_sheet(client, official, {"codes": ["NOT A CODE"]}), 422, "validation_failed", "codes")
    for serials in (0, 1001):
        assert_problem(make_sheet(client, official, {"codes": [cert["code"]], "serials": serials}), 422,
                       "validation_failed", "serials")
    assert_problem(make_sheet(client, official, {"codes": [cert["code"]], "template": "nope"}), 422,
                   "unknown_template")
    assert_problem(make_sheet(client, official, {"codes": [cert["code"]]}, key="k" * 81), 422,
                   "validation_failed", "Idempotency-Key")
    lab = make_account("lab")
    assert client.post("/api/v1/label-sheets", json={"codes": [cert["code"]]}, headers=lab.headers).status_code == 403
    assert counts(app) == (0, 0)


def test_concurrent_retries_with_one_key_make_one_sheet(app, client, official, county, grading, live):
    code = issue(client, official, county=county, code=parcel_of(county, 1)["code"], area_m2=100,
                 crop="水稻").get_json()["code"]
    n = 8
    barrier = threading.Barrier(n)
    answers: list[tuple[int, int]] = [(0, 0)] * n

    def post(i: int) -> None:
        request = urllib.request.Request(
            f"{live}/api/v1/label-sheets", data=json.dumps({"codes": [code], "serials": 5}).encode(),
            headers={**official.headers, "Content-Type": "application/json", "Idempotency-Key": "same-print"},
            method="POST")
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                answers[i] = (resp.status, json.loads(resp.read())["id"])
        except urllib.error.HTTPError as exc:
            answers[i] = (exc.code, 0)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert sorted(s for s, _ in answers) == [200] * (n - 1) + [201], answers
    assert len({sheet for _, sheet in answers}) == 1
    assert counts(app) == (5, 1) and printed(client, official, code) == {"printed": 5, "quota": 12}
