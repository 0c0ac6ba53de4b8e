"""Review of lab results: four-eyes approval, N approvals, rejection, re-test versions, the grading hook."""

from __future__ import annotations

import pytest

from fieldsvc.extensions import db
from tests.api.test_lab_imports import LONG_HEADER, make_samples, results, upload
from tests.helpers import assert_problem


def approve(client, account, result_id):
    return client.post(f"/api/v1/lab/results/{result_id}/approve", headers=account.headers)


def audit_actions(app, result_id) -> list[tuple[str, str]]:
    from fieldsvc.audit.services import events_for

    with app.app_context():
        return [(e.action, e.actor) for e in events_for("lab_result", str(result_id))]


@pytest.fixture
def imported(app, client, make_account):
    """An official who imported one Cd result (officials may upload a lab's file), and that result."""
    make_samples(app, "S-001")
    importer = make_account("official")
    assert upload(client, importer, (LONG_HEADER + "S-001,Cd,0.2,mg/kg,,\n").encode()).status_code == 201
    (item,) = results(client, importer, sample="S-001")
    return importer, item


def test_four_eyes_importer_refused_other_official_approves_once(app, client, make_account, imported):
    importer, item = imported
    assert_problem(approve(client, importer, item["id"]), 403, "self_approval")
    second = make_account("official")
    resp = approve(client, second, item["id"])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "approved" and resp.get_json()["approvals"] == 1
    assert_problem(approve(client, second, item["id"]), 409, "already_approved")
    assert_problem(approve(client, make_account("official"), item["id"]), 409, "not_pending")
    (stored,) = results(client, importer, sample="S-001", status="approved")
    assert stored["id"] == item["id"] and stored["reviewed_at"]
    assert audit_actions(app, item["id"]) == [("approve", f"user:{second.username}")]


def test_configured_number_of_approvals(app, client, make_account, imported):
    app.config["LAB_APPROVALS_REQUIRED"] = 2
    _, item = imported
    first, second = make_account("official"), make_account("official")
    one = approve(client, first, item["id"]).get_json()
    assert (one["status"], one["approvals"], one["approvals_required"]) == ("pending", 1, 2)
    assert_problem(approve(client, first, item["id"]), 409, "already_approved")
    two = approve(client, second, item["id"]).get_json()
    assert (two["status"], two["approvals"]) == ("approved", 2)
    assert [a for a, _ in audit_actions(app, item["id"])] == ["approve", "approve"]


def test_reject_needs_a_reason_and_is_final(app, client, make_account, imported):
    importer, item = imported
    reviewer = make_account("official")
    url = f"/api/v1/lab/results/{item['id']}/reject"
    assert_problem(client.post(url, json={}, headers=reviewer.headers), 422, "validation_failed", field="reason")
    assert_problem(client.post(url, json={"reason": "x"}, headers=make_account("lab").headers), 403, "forbidden")
    resp = client.post(url, json={"reason": "digest incomplete; re-test"}, headers=reviewer.headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "rejected"
    (stored,) = results(client, importer, sample="S-001")
    assert (stored["status"], stored["rejected_reason"]) == ("rejected", "digest incomplete; re-test")
    assert_problem(approve(client, reviewer, item["id"]), 409, "not_pending")
    assert_problem(client.post(url, json={"reason": "again"}, headers=reviewer.headers), 409, "not_pending")
    assert audit_actions(app, item["id"]) == [("reject", f"user:{reviewer.username}")]


def test_unknown_result_is_404(client, official):
    assert_problem(approve(client, official, 999999), 404, "not_found")
    assert_problem(client.get("/api/v1/lab/results/999999", headers=official.headers), 404, "not_found")


def test_retest_supersedes_and_latest_approved_wins(app, client, make_account, monkeypatch):
    from fieldsvc.lab import services

    calls: list[list[str]] = []
    monkeypatch.setattr(services, "on_results_approved", lambda ids: calls.append(list(ids)))
    ids = make_samples(app, "S-001")
    lab, reviewer = make_account("lab"), make_account("official")
    assert upload(client, lab, (LONG_HEADER + "S-001,Cd,0.45,mg/kg,,\nS-001,Pb,20,mg/kg,,\n").encode()
                  ).status_code == 201
    v1 = next(i for i in results(client, lab, sample="S-001") if i["analyte"] == "Cd")
    assert approve(client, reviewer, v1["id"]).status_code == 200
    assert calls == [[ids["S-001"]]]

    retest = upload(client, lab, (LONG_HEADER + "S-001,Cd,0.31,mg/kg,,\n").encode(), filename="retest.csv")
    assert retest.status_code == 201 and retest.get_json()["superseded"] == 1
    cds = [i for i in results(client, lab, sample="S-001") if i["analyte"] == "Cd"]
    assert [(i["version"], i["value"], i["status"]) for i in cds] == [(1, "0.45", "approved"), (2, "0.31", "pending")]
    assert cds[1]["supersedes"] == v1["id"] and cds[0]["superseded_by"] == cds[1]["id"]
    assert [i["version"] for i in results(client, lab, sample="S-001", analyte="Cd", current=1)] == [2]

    def latest() -> dict[str, tuple[int, str]]:
        with app.app_context():
            found = services.latest_approved_results([ids["S-001"], "no-such-sample"])
            return {a: (r.version, r.value) for a, r in found[ids["S-001"]].items()}

    assert latest() == {"Cd": (1, "0.45")}  # the pending re-test does not count yet
    assert_problem(approve(client, reviewer, v1["id"]), 409, "already_approved")
    assert_problem(approve(client, make_account("official"), v1["id"]), 409, "superseded")
    assert approve(client, reviewer, cds[1]["id"]).status_code == 200
    assert latest() == {"Cd": (2, "0.31")}
    assert calls == [[ids["S-001"]], [ids["S-001"]]]
    assert ("supersede", f"user:{lab.username}") in audit_actions(app, v1["id"])

    third = upload(client, lab, (LONG_HEADER + "S-001,Cd,0.33,mg/kg,,\n").encode(), filename="third.csv")
    assert third.status_code == 201
    v3 = results(client, lab, sample="S-001", analyte="Cd", current=1)[0]
    assert (v3["version"], v3["supersedes"]) == (3, cds[1]["id"])
    client.post(f"/api/v1/lab/results/{v3['id']}/reject", json={"reason": "outlier"}, headers=reviewer.headers)
    assert latest() == {"Cd": (2, "0.31")}  # a rejected re-test leaves the approved one in force
    with app.app_context():
        assert db.session.get(services.LabResult, int(v1["id"])).superseded_by == int(cds[1]["id"])
