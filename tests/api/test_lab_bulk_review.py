"""Bulk review of lab results (DESIGN §4.5): each id judged alone, one transaction, one re-grade."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from tests.api.test_lab_imports import QC_HEADER, make_samples, results, upload
from tests.helpers import assert_problem

APPROVE = "/api/v1/lab/results/approve"
REJECT = "/api/v1/lab/results/reject"


@pytest.fixture
def batch(app, client, make_account):
    """One lab import: S-1/S-2 Pb and Cu (reviewable), Cd held by a failing blank, one held bag, QC rows."""
    make_samples(app, "S-1", "S-2")
    lab = make_account("lab")
    csv = (QC_HEADER + "S-1,Pb,20,mg/kg,0.1,,,\nS-2,Pb,25,mg/kg,0.1,,,\nS-1,Cu,30,mg/kg,0.1,,,\n"
           "S-2,Cu,31,mg/kg,0.1,,,\nS-1,Cd,0.2,mg/kg,0.01,,,\nS-404,Pb,22,mg/kg,0.1,,,\n"
           "BLK-1,Cd,0.05,mg/kg,0.01,blank,,\n").encode()
    resp = upload(client, lab, csv)
    assert resp.status_code == 201, resp.get_json()
    items = results(client, make_account("official"))
    by = {(i["sample_code"], i["analyte"], i["qc_type"]): i["id"] for i in items}
    return lab, by


def codes(body):
    return [(i["id"], i.get("status") or i["code"]) for i in body["items"]]


def test_each_id_judged_alone_in_request_order(app, client, make_account, batch, monkeypatch):
    from fieldsvc.lab import services

    _, by = batch
    regrades = []
    monkeypatch.setattr(services, "on_results_approved", lambda ids: regrades.append(list(ids)))
    reviewer = make_account("official")
    ids = [by[("S-1", "Pb", None)], by[("S-2", "Pb", None)], by[("S-1", "Cd", None)], by[("S-404", "Pb", None)],
           by[("BLK-1", "Cd", "blank")], "999999", "abc", by[("S-1", "Pb", None)], by[("S-1", "Cu", None)]]
    resp = client.post(APPROVE, json={"ids": ids}, headers=reviewer.headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert codes(body) == [(ids[0], "approved"), (ids[1], "approved"), (ids[2], "qc_hold"), (ids[3], "held_result"),
                           (ids[4], "qc_sample"), ("999999", "not_found"), ("abc", "not_found"),
                           (ids[0], "duplicate_id"), (ids[8], "approved")]
    assert (body["done"], body["refused"]) == (3, 6)
    assert all(i["message"] for i in body["items"] if "code" in i)
    # read back: exactly the three are approved; the refused ones are untouched
    stored = {i["id"]: i for i in results(client, reviewer)}
    assert {k for k, v in stored.items() if v["status"] == "approved"} == {ids[0], ids[1], ids[8]}
    assert stored[ids[2]]["status"] == "pending" and stored[ids[0]]["approvals"] == 1
    # one re-grade for the whole batch, naming both samples once
    assert len(regrades) == 1 and len(regrades[0]) == 2
    # the same request again (a retry): nothing more is written
    again = client.post(APPROVE, json={"ids": ids[:2]}, headers=reviewer.headers).get_json()
    assert codes(again) == [(ids[0], "already_approved"), (ids[1], "already_approved")]
    from fieldsvc.audit.services import events_for
    with app.app_context():
        assert [(e.action, e.actor) for e in events_for("lab_result", ids[0])] == [
            ("approve", f"user:{reviewer.username}")]
        from fieldsvc.lab.models import Approval
        assert db.session.scalar(select(func.count()).select_from(Approval)) == 3


def test_four_eyes_and_n_approvals_per_row(app, client, make_account, batch):
    lab, by = batch
    app.config["LAB_APPROVALS_REQUIRED"] = 2
    # lab accounts cannot review at all; an official who imported a file cannot approve its rows
    assert_problem(client.post(APPROVE, json={"ids": [by[("S-1", "Pb", None)]]}, headers=lab.headers), 403,
                   "forbidden")
    importer = make_account("official")
    make_samples(app, "S-9")
    assert upload(client, importer, (QC_HEADER + "S-9,Pb,20,mg/kg,0.1,,,\n").encode(), "o.csv").status_code == 201
    own = next(i["id"] for i in results(client, importer, sample="S-9"))
    first, second = make_account("official"), make_account("official")
    ids = [by[("S-1", "Pb", None)], own]
    assert codes(client.post(APPROVE, json={"ids": ids}, headers=importer.headers).get_json()) == [
        (ids[0], "pending"), (own, "self_approval")]
    assert codes(client.post(APPROVE, json={"ids": ids}, headers=first.headers).get_json()) == [
        (ids[0], "approved"), (own, "pending")]
    assert codes(client.post(APPROVE, json={"ids": ids}, headers=second.headers).get_json()) == [
        (ids[0], "not_pending"), (own, "approved")]
    stored = {i["id"]: i for i in results(client, first)}
    assert (stored[ids[0]]["status"], stored[ids[0]]["approvals"]) == ("approved", 2)
    assert (stored[own]["status"], stored[own]["approvals"]) == ("approved", 2)


def test_bulk_reject_needs_reason_and_skips_decided(app, client, make_account, batch):
    _, by = batch
    reviewer = make_account("official")
    pb1, pb2 = by[("S-1", "Pb", None)], by[("S-2", "Pb", None)]
    assert client.post(APPROVE, json={"ids": [pb1]}, headers=reviewer.headers).status_code == 200
    assert_problem(client.post(REJECT, json={"ids": [pb2]}, headers=reviewer.headers), 422, "validation_failed",
                   field="reason")
    body = client.post(REJECT, json={"ids": [pb1, pb2, by[("S-404", "Pb", None)]], "reason": "digest lost"},
                       headers=reviewer.headers).get_json()
    assert codes(body) == [(pb1, "not_pending"), (pb2, "rejected"), (by[("S-404", "Pb", None)], "rejected")]
    stored = {i["id"]: i for i in results(client, reviewer)}
    assert (stored[pb2]["status"], stored[pb2]["rejected_reason"]) == ("rejected", "digest lost")
    assert stored[pb1]["status"] == "approved"


@pytest.mark.parametrize("body, field", [
    ({}, "ids"), ({"ids": []}, "ids"), ({"ids": "1,2"}, "ids"), ({"ids": [True]}, "ids"),
    ({"ids": [{"id": 1}]}, "ids"), ({"ids": ["1"] * 10_001}, "ids"), ({"ids": ["1"], "reason": "x" * 2001}, "reason"),
])
def test_bad_bodies_name_the_field(client, official, body, field):
    assert_problem(client.post(APPROVE, json=body, headers=official.headers), 422, "validation_failed", field=field)


def test_other_county_results_are_not_found(app, client, make_account):
    make_samples(app, "K-1", county="360100")
    lab = make_account("lab")
    assert upload(client, lab, (QC_HEADER + "K-1,Pb,20,mg/kg,0.1,,,\n").encode()).status_code == 201
    rid = results(client, make_account("official"))[0]["id"]
    outsider = make_account("official", county="360200")
    body = client.post(APPROVE, json={"ids": [rid]}, headers=outsider.headers).get_json()
    assert codes(body) == [(rid, "not_found")]


def test_integer_ids_are_taken(client, make_account, batch):
    _, by = batch
    body = client.post(APPROVE, json={"ids": [int(by[("S-1", "Pb", None)])]},
                       headers=make_account("official").headers).get_json()
    assert codes(body) == [(by[("S-1", "Pb", None)], "approved")]


def test_five_thousand_results_approved_in_one_request(app, client, make_account):
    """The issue's measure: a 5,000-row import approved in one click, in seconds (prints the time)."""
    codes_ = [f"B-{n:05d}" for n in range(1250)]
    make_samples(app, *codes_)
    lab = make_account("lab")
    rows = "".join(f"{c},{a},{v},mg/kg,0.01,,,\n" for c in codes_ for a, v in (("Cd", "0.2"), ("Pb", "20"),
                                                                                 ("Cu", "30"), ("Zn", "80")))
    assert upload(client, lab, (QC_HEADER + rows).encode()).status_code == 201
    official = make_account("official")
    ids = []
    cursor = None
    while True:
        page = client.get("/api/v1/lab/results", query_string={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                          headers=official.headers).get_json()
        ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(ids) == 5000
    started = time.perf_counter()
    resp = client.post(APPROVE, json={"ids": ids}, headers=official.headers)
    elapsed = time.perf_counter() - started
    assert resp.status_code == 200
    assert resp.get_json()["done"] == 5000
    print(f"\nbulk approval of 5,000 results ({app.config['DATABASE_URL'].split(':')[0]}): {elapsed:.2f} s")
    assert elapsed < 20  # target 5 s on an idle machine; this one is shared by ~7 engineers
    with app.app_context():
        from fieldsvc.lab.models import LabResult
        assert db.session.scalar(select(func.count()).where(LabResult.status == "approved")) == 5000
