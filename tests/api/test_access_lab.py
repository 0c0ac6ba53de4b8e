"""Issue 19, items 1 and 7, on both engines: a lab or official of county B cannot reach county A's
results through a lab import, nor read A's imports or photos; a sampler's password reaches only what
its devices are assigned."""

from __future__ import annotations

from fieldsvc.extensions import db
from tests.api.test_lab_imports import LONG_HEADER, make_samples, results, upload
from tests.helpers import assert_problem

A, B = "360129", "360130"


def result_rows(app, sample_id):
    from sqlalchemy import select

    from fieldsvc.lab.models import LabResult

    with app.app_context():
        return [(r.analyte, r.value, r.status, r.superseded_by, r.version) for r in db.session.scalars(
            select(LabResult).where(LabResult.sample_id == sample_id).order_by(LabResult.id))]


def test_county_b_lab_naming_county_a_bag_codes_changes_nothing_of_county_a(app, client, make_account):
    ids = make_samples(app, "A-001", "A-002", county=A)
    lab_a, off_a = make_account("lab", county=A), make_account("official", county=A)
    lab_b, off_b = make_account("lab", county=B), make_account("official", county=B)
    # county A: an approved Cd result on A-001 and a pending Pb result on A-002
    first = (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\nA-002,Pb,20,mg/kg,,\n").encode()
    assert upload(client, lab_a, first).status_code == 201
    cd = results(client, off_a, sample=ids["A-001"])[0]
    assert client.post(f"/api/v1/lab/results/{cd['id']}/approve", headers=off_a.headers).status_code == 200
    before = {code: result_rows(app, sid) for code, sid in ids.items()}

    # county B's lab and official name A's bag codes (once as the lab, once as the official)
    for n, account in enumerate((lab_b, off_b)):
        resp = upload(client, account, (LONG_HEADER + f"A-001,Cd,9.{n},mg/kg,,\nA-002,Pb,99{n},mg/kg,,\n").encode())
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        # not county B's samples: held as codes not yet synced there, superseding only B's own
        # held results of the first round (a re-test within B), never A's
        assert (body["accepted"], body["held"], body["superseded"]) == (0, 2, 2 * n)
    assert {code: result_rows(app, sid) for code, sid in ids.items()} == before
    assert [r["status"] for r in results(client, off_a, sample=ids["A-001"])] == ["approved"]
    # ... and A's pending result can still be approved (it was not superseded)
    pb = results(client, off_a, sample=ids["A-002"])[0]
    assert client.post(f"/api/v1/lab/results/{pb['id']}/approve", headers=off_a.headers).status_code == 200
    # B sees its own held results only, never A's
    assert {r["sample_id"] for r in results(client, off_b)} == {None}
    assert_problem(client.get(f"/api/v1/lab/results/{cd['id']}", headers=off_b.headers), 404, "not_found")
    assert_problem(client.post(f"/api/v1/lab/results/{pb['id']}/reject", json={"reason": "x"},
                               headers=off_b.headers), 404, "not_found")


def test_a_retest_supersedes_only_from_a_lab_allowed_to_test_the_sample(app, client, make_account):
    ids = make_samples(app, "A-001", county=A)
    lab_a, lab_p, off_a = make_account("lab", county=A), make_account("lab"), make_account("official", county=A)
    assert upload(client, lab_a, (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\n").encode()).status_code == 201
    # county A's lab re-tests: version 2 supersedes version 1
    body = upload(client, lab_a, (LONG_HEADER + "A-001,Cd,0.25,mg/kg,,\n").encode()).get_json()
    assert body["superseded"] == 1
    # a province-wide lab may test every county's samples: version 3
    body = upload(client, lab_p, (LONG_HEADER + "A-001,Cd,0.27,mg/kg,,\n").encode()).get_json()
    assert body["superseded"] == 1 and body["held"] == 0
    assert [(v, s is None) for _, _, _, s, v in result_rows(app, ids["A-001"])] == [(1, False), (2, False), (3, True)]
    assert [r["version"] for r in results(client, off_a, sample=ids["A-001"], current=1)] == [3]


def test_held_results_link_only_to_a_sample_their_importer_may_see(app, client, make_account):
    from fieldsvc.lab.services import link_held_results
    from fieldsvc.samples.models import Sample

    lab_a, lab_b = make_account("lab", county=A), make_account("lab", county=B)
    off_a = make_account("official", county=A)
    assert upload(client, lab_b, (LONG_HEADER + "NEW-1,Cd,9.9,mg/kg,,\n").encode()).get_json()["held"] == 1
    assert upload(client, lab_a, (LONG_HEADER + "NEW-1,Pb,20,mg/kg,,\n").encode()).get_json()["held"] == 1
    ids = make_samples(app, "NEW-1", county=A)  # the sample arrives in county A
    with app.app_context():
        assert link_held_results(db.session.get(Sample, ids["NEW-1"])) == 1  # A's result, not B's
        db.session.commit()
    assert [(r["analyte"], r["value"]) for r in results(client, off_a, sample=ids["NEW-1"])] == [("Pb", "20")]


def test_lab_imports_are_read_within_the_importers_county(app, client, make_account):
    make_samples(app, "A-001", county=A)
    lab_a, off_a, off_b = make_account("lab", county=A), make_account("official", county=A), \
        make_account("official", county=B)
    province = make_account("official")
    first = upload(client, lab_a, (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\n").encode(), filename="a-results.csv")
    import_id = first.get_json()["import_id"]

    def listed(account):
        resp = client.get("/api/v1/lab/imports", headers=account.headers)
        assert resp.status_code == 200
        return [i["import_id"] for i in resp.get_json()["items"]]

    assert listed(off_a) == [import_id] and listed(province) == [import_id] and listed(off_b) == []
    assert client.get(f"/api/v1/lab/imports/{import_id}", headers=off_a.headers).status_code == 200
    assert_problem(client.get(f"/api/v1/lab/imports/{import_id}", headers=off_b.headers), 404, "not_found")
    # the same bytes from county B: refused without showing A's import
    again = upload(client, off_b, (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\n").encode(), filename="a-results.csv")
    body = assert_problem(again, 409, "already_imported")
    assert "import_id" not in str(body) and "a-results" not in str(body) and "details" not in body
    dry = upload(client, off_b, (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\n").encode(), dry_run=1)
    assert_problem(dry, 409, "already_imported")


def test_a_province_wide_labs_import_is_read_by_the_counties_it_has_results_for(app, client, make_account):
    make_samples(app, "A-001", county=A)
    lab_p, off_a, off_b = make_account("lab"), make_account("official", county=A), make_account("official", county=B)
    import_id = upload(client, lab_p, (LONG_HEADER + "A-001,Cd,0.21,mg/kg,,\n").encode()).get_json()["import_id"]
    assert client.get(f"/api/v1/lab/imports/{import_id}", headers=off_a.headers).status_code == 200
    assert_problem(client.get(f"/api/v1/lab/imports/{import_id}", headers=off_b.headers), 404, "not_found")
    listed = client.get("/api/v1/lab/imports", headers=off_b.headers).get_json()["items"]
    assert listed == []
