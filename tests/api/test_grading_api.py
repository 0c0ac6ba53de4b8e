"""Grading over HTTP: known answers, what counts as an input, idempotent re-grades, roles and bad input."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from tests.helpers import assert_problem

# Paddy, pH 6.0 (< 6.5): limits Cd 0.3 Hg 0.3 As 20 Pb 50 Cr 120 Cu 50 → max index 0.5 → clean.
CLEAN = {"pH": "6.0", "Cd": "0.10", "Hg": "0.10", "As": "10", "Pb": "20", "Cr": "50", "Cu": "20"}
FAIL_CD = {**CLEAN, "Cd": "0.45"}  # 0.45 / 0.3 = 1.5 > 1


# --- factories (sync and lab build these for real; here they are inserted directly) -------------

def put_sample(app, parcel: str, *, state: str = "complete", county: str | None = None) -> str:
    from fieldsvc.samples.models import Sample
    from fieldsvc.sequence import allocate

    sid = str(uuid.uuid4())
    with app.app_context():
        db.session.add(Sample(id=sid, code=f"BAG-{sid[:8]}", parcel_code=parcel, county_code=county, state=state,
                              flags=[], media=[], content_hash="0" * 64, version=1, seq=allocate()[0],
                              created_by="test"))
        db.session.commit()
    return sid


def put_results(app, sid: str, values: dict[str, str], *, status: str = "approved", version: int = 1) -> list[int]:
    """One lab result per analyte; ``"<0.05"`` is a censored value with that detection limit."""
    from fieldsvc.lab.models import LabImport, LabResult

    with app.app_context():
        imp = LabImport(sha256=uuid.uuid4().hex * 2, filename="t.csv", lab="lab", created_by="test", layout="long",
                        file_kind="csv", rows=len(values), accepted=len(values), held=0, qc_rows=0, qc_held=0,
                        superseded=0, outcomes={})
        db.session.add(imp)
        db.session.flush()
        ids = []
        for i, (analyte, raw) in enumerate(values.items()):
            censored = raw.startswith("<")
            r = LabResult(import_id=imp.id, line=i + 2, sample_id=sid, sample_code=f"BAG-{sid[:8]}",
                          sample_code_key=f"BAG-{sid[:8]}", series=f"{sid}", analyte=analyte,
                          qualifier="<" if censored else "=", value=None if censored else raw,
                          detection_limit=raw[1:] if censored else None, unit="" if analyte == "pH" else "mg/kg",
                          raw_value=raw, raw_unit="mg/kg", qc_flags=[], status=status,
                          approvals=1 if status == "approved" else 0, version=version, created_by="test")
            db.session.add(r)
            db.session.flush()
            ids.append(r.id)
        db.session.commit()
    return ids


def regrade(app, *sample_ids: str) -> list[dict]:
    """What the lead wires into lab approval, sample edits and conflict resolution."""
    from fieldsvc.grading.regrade import regrade_for_samples

    with app.app_context():
        changes = regrade_for_samples(sample_ids)
        db.session.commit()
    return changes


def parcels_by(county, **props) -> list[dict]:
    return [f["properties"] for f in county.parcels
            if all(f["properties"].get(k) == v for k, v in props.items())]


def paddy(county, index: int = 0) -> dict:
    return parcels_by(county, land_use="paddy")[index]


def grade(client, account, kind: str, code: str, **query):
    return client.get(f"/api/v1/grades/{kind}/{code}", headers=account.headers, query_string=query)


def history(client, account, kind: str, code: str) -> list[dict]:
    resp = client.get(f"/api/v1/grades/{kind}/{code}/history", headers=account.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def count_grades(app) -> int:
    from fieldsvc.grading.models import Grade

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Grade))


# --- known answers ---------------------------------------------------------------------------

def test_clean_paddy_parcel_grades_as_the_tables_say(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    result_ids = put_results(app, sid, CLEAN)
    changes = regrade(app, sid)
    assert [(c["subject_type"], c["code"], c["verdict"]) for c in changes] == [("parcel", parcel, "qualified")]
    body = grade(client, official, "parcel", parcel).get_json()
    assert (body["verdict"], body["grade"], body["qualified"], body["limiting"]) == ("qualified", "clean", True, [])
    rows = {r["analyte"]: r for r in body["explanation"]["analytes"]}
    assert rows["Cd"]["limit"] == "0.30" and rows["Cd"]["index"] == "0.333333333333"
    assert rows["As"]["index"] == "0.5" and rows["As"]["verdict"] == "pass"
    assert body["explanation"]["nemerow"] is not None and body["explanation"]["strict_control"] is False
    assert body["explanation"]["reproduced"] is True  # rebuilt from the stored result ids: same fingerprint
    assert body["inputs"]["samples"] == [sid]
    assert sorted(body["inputs"]["results"]) == sorted(str(i) for i in result_ids)
    assert body["rule_pack"]["code"] == "green_food_soil" and body["rule_pack"]["verified"] is False
    assert "not yet been checked" in body["rule_pack"]["note"]
    assert body["computed_at"].endswith("Z") and body["tested_on"] == date.today().isoformat()
    assert body["subject"]["land_use"] == "paddy"


def test_exceedance_fails_parcel_and_names_the_analyte(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, FAIL_CD)
    regrade(app, sid)
    body = grade(client, official, "parcel", parcel).get_json()
    assert (body["verdict"], body["grade"], body["qualified"], body["limiting"]) == (
        "not_qualified", "polluted", False, ["Cd"])
    cd = next(r for r in body["explanation"]["analytes"] if r["analyte"] == "Cd")
    assert (cd["verdict"], cd["index"], cd["sample_id"]) == ("exceeds", "1.5", sid)
    # GB 15618 paddy 5.5 < pH ≤ 6.5: Cd screening 0.4, intervention 2.0 → safe use, not strict control
    assert body["explanation"]["gb15618_class"] == "safe_use"
    assert body["explanation"]["reproduced"] is True
    assert body["strict_control"] is False


def test_censored_value_above_limit_is_indeterminate(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, {**CLEAN, "Hg": "<0.5"})  # DL 0.5 > limit 0.3: could still exceed
    regrade(app, sid)
    body = grade(client, official, "parcel", parcel).get_json()
    assert (body["verdict"], body["grade"], body["limiting"]) == ("indeterminate", None, ["Hg"])


def test_pending_and_rejected_results_are_ignored(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, CLEAN)
    regrade(app, sid)
    put_results(app, sid, {"Cd": "0.9"}, status="pending", version=2)
    put_results(app, sid, {"Hg": "0.9"}, status="rejected", version=2)
    assert regrade(app, sid) == []
    body = grade(client, official, "parcel", parcel).get_json()
    assert body["verdict"] == "qualified" and len(history(client, official, "parcel", parcel)) == 1


def test_incomplete_samples_and_open_conflicts_keep_their_results_out(app, client, official, county):
    from fieldsvc.grading.qualification import qualification
    from fieldsvc.samples.models import SyncConflict

    parcel = paddy(county)["code"]
    good = put_sample(app, parcel)
    put_results(app, good, CLEAN)
    waiting = put_sample(app, parcel, state="awaiting_media")
    put_results(app, waiting, FAIL_CD)
    clashing = put_sample(app, parcel)
    put_results(app, clashing, FAIL_CD)
    with app.app_context():
        db.session.add(SyncConflict(record_id=clashing, kind="hard", code="edit_conflict", incoming_body={},
                                    incoming_hash="1" * 64, created_by="test"))
        db.session.commit()
    regrade(app, good, waiting, clashing)
    body = grade(client, official, "parcel", parcel).get_json()
    assert body["verdict"] == "qualified" and body["inputs"]["samples"] == [good]
    excluded = {e["sample_id"]: e["reason"] for e in body["explanation"]["excluded_samples"]}
    assert excluded == {waiting: "incomplete:awaiting_media", clashing: "unresolved_conflict"}
    with app.app_context():
        q = qualification("parcel", parcel)
    assert q.qualified is False and q.reasons == ["unresolved_conflicts", "incomplete_samples"]
    assert q.verdict == "qualified" and q.grade == "clean"

    with app.app_context():  # the conflict is resolved and the media arrive: both samples count, the parcel fails
        from fieldsvc.samples.models import Sample

        db.session.scalar(select(SyncConflict)).status = "resolved"
        db.session.get(Sample, waiting).state = "complete"
        db.session.commit()
    regrade(app, waiting, clashing)
    body = grade(client, official, "parcel", parcel).get_json()
    assert body["verdict"] == "not_qualified" and sorted(body["inputs"]["samples"]) == sorted([good, waiting,
                                                                                            clashing])


def test_regrade_with_same_inputs_adds_no_row(app, client, official, county):
    from fieldsvc.audit.services import events_for

    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, CLEAN)
    assert len(regrade(app, sid)) == 1
    rows = count_grades(app)
    assert regrade(app, sid) == [] and regrade(app, sid) == []
    assert count_grades(app) == rows
    (item,) = history(client, official, "parcel", parcel)
    assert item["current"] is True and item["verdict"] == "qualified"
    with app.app_context():
        assert [e.action for e in events_for("grade", f"parcel:{parcel}")] == ["regrade"]


def test_parcel_without_results_is_not_assessed_and_parcel_read_shows_grade(app, client, official, county):
    parcel = paddy(county)["code"]
    body = grade(client, official, "parcel", parcel).get_json()
    assert (body["verdict"], body["basis"], body["grade"], body["qualified"], body["computed_at"]) == (
        "not_assessed", "not_assessed", None, False, None)
    assert client.get(f"/api/v1/parcels/{parcel}", headers=official.headers).get_json()["properties"]["grade"] is None
    sid = put_sample(app, parcel)
    put_results(app, sid, CLEAN)
    regrade(app, sid)
    feature = client.get(f"/api/v1/parcels/{parcel}", headers=official.headers).get_json()
    assert feature["properties"]["grade"]["verdict"] == "qualified"
    assert feature["properties"]["grade"]["grade"] == "clean"
    listed = client.get("/api/v1/parcels", headers=official.headers, query_string={"limit": 1000}).get_json()
    graded = {f["id"]: f["properties"]["grade"] for f in listed["items"] if f["properties"]["grade"]}
    assert list(graded) == [parcel]


def test_sample_deleted_makes_parcel_not_assessed_again(app, client, official, county):
    from fieldsvc.dbtypes import utcnow
    from fieldsvc.samples.models import Sample

    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, CLEAN)
    regrade(app, sid)
    with app.app_context():
        db.session.get(Sample, sid).deleted_at = utcnow()
        db.session.commit()
    regrade(app, sid)
    body = grade(client, official, "parcel", parcel).get_json()
    assert (body["verdict"], body["basis"]) == ("not_assessed", "not_assessed") and body["id"] is not None
    assert [h["verdict"] for h in history(client, official, "parcel", parcel)] == ["qualified", "not_assessed"]


# --- runs, roles and bad input -------------------------------------------------------------------

def test_run_needs_official_and_counts_what_it_did(app, client, official, make_account, county):
    parcel = paddy(county)["code"]
    sid = put_sample(app, parcel)
    put_results(app, sid, CLEAN)
    url = "/api/v1/grading/runs"
    scope = {"scope": {"county": county.county}}
    for role in ("lab", "sampler", "admin"):
        assert_problem(client.post(url, json=scope, headers=make_account(role).headers), 403, "forbidden")
    assert_problem(client.post(url, json=scope), 401, "unauthorized")
    resp = client.post(url, json=scope, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    run = resp.get_json()
    assert run["counts"]["parcels"] == len(county.parcels) and run["counts"]["qualified"] == 1
    assert run["counts"]["changed"] == 1 and run["rule_pack"]["code"] == "green_food_soil"
    assert client.get(f"/api/v1/grading/runs/{run['id']}", headers=official.headers).get_json()["counts"] == \
        run["counts"]
    again = client.post(url, json=scope, headers=official.headers).get_json()
    assert again["counts"]["changed"] == 0 and again["counts"].get("areas_changed", 0) == 0


@pytest.mark.parametrize("body, field", [
    ({}, "scope"),
    ({"scope": {}}, "scope"),
    ({"scope": {"county": "360129", "village": "360129001001"}}, "scope"),
    ({"scope": {"county": "360129"}, "rule_pack": "no_such_pack"}, "rule_pack"),
    ({"scope": {"county": "360129"}, "rule_pack": "Bad Pack!"}, "rule_pack"),
    ({"scope": {"province": "36"}}, "scope"),
])
def test_run_bad_input_names_the_field(client, official, county, body, field):
    assert_problem(client.post("/api/v1/grading/runs", json=body, headers=official.headers), 422,
                   "validation_failed", field=field)


def test_unknown_subjects_types_and_packs(client, official, make_account, county):
    assert_problem(grade(client, official, "parcel", "NOPE"), 404, "not_found")
    assert_problem(grade(client, official, "village", "360129999999"), 404, "not_found")
    assert_problem(grade(client, official, "province", "36"), 404, "not_found")
    assert_problem(grade(client, official, "farm_park", county.farm_parks[0]["code"]), 404, "not_found")
    assert_problem(grade(client, official, "county", county.county, rule_pack="nope"), 422, "validation_failed",
                   field="rule_pack")
    assert_problem(client.post("/api/v1/grading/runs", json={"scope": {"village": "360129999999"}},
                               headers=official.headers), 404, "not_found")
    assert_problem(client.get(f"/api/v1/grades/county/{county.county}"), 401, "unauthorized")
    other = make_account("official", county="360130")
    assert_problem(grade(client, other, "county", county.county), 404, "not_found")
    assert grade(client, make_account("lab"), "county", county.county).status_code == 200


def test_rule_packs_list_and_verify_by_an_admin(app, client, official, admin):
    items = client.get("/api/v1/rule-packs", headers=official.headers).get_json()["items"]
    green = next(i for i in items if i["code"] == "green_food_soil")
    assert green["default"] is True and green["verified"] is False and green["standard"] == "NY/T 391-2021"
    assert "note" in green
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["rule-packs", "verify", "green_food_soil", "--by", official.username])
    assert refused.exit_code != 0 and "not an admin" in refused.output
    ok = runner.invoke(args=["rule-packs", "verify", "green_food_soil", "--by", admin.username, "--note", "p. 3"])
    assert ok.exit_code == 0, ok.output
    items = client.get("/api/v1/rule-packs", headers=official.headers).get_json()["items"]
    green = next(i for i in items if i["code"] == "green_food_soil")
    assert green["verified"] is True and green["verified_by"] == admin.username and "note" not in green
    listed = runner.invoke(args=["rule-packs", "list"])
    assert f"green_food_soil 2021.1 (default): NY/T 391-2021 [green_food_soil] verified by {admin.username}" in \
        listed.output


def test_cli_grade_county(app, client, official, county):
    sid = put_sample(app, paddy(county)["code"])
    put_results(app, sid, CLEAN)
    result = app.test_cli_runner().invoke(args=["grade", "--county", county.county])
    assert result.exit_code == 0, result.output
    assert f"parcels={len(county.parcels)}" in result.output and "qualified=1" in result.output
    body = grade(client, official, "county", county.county).get_json()
    assert body["inputs"]["maintained"] is True and body["explanation"]["qualified_count"] == 1
    bad = app.test_cli_runner().invoke(args=["grade", "--county", "999999"])
    assert bad.exit_code != 0 and "not_found" in bad.output


def test_grade_demo_county_builds_maintained_grades(app, client, official, county):
    from fieldsvc.grading.runs import grade_demo_county

    put_results(app, put_sample(app, paddy(county)["code"]), CLEAN)
    with app.app_context():
        summary = grade_demo_county(county.county)
        db.session.commit()
    assert summary["counts"]["parcels"] == len(county.parcels) and summary["counts"]["qualified"] == 1
    body = grade(client, official, "county", county.county).get_json()
    assert body["inputs"]["maintained"] is True and body["id"] is not None
    assert body["explanation"]["graded_count"] == 1 and body["explanation"]["parcel_count"] == len(county.parcels)


CLEAN_RESULTS = {"pH": "6.0", "Cd": "0.12", "Hg": "0.05", "As": "8", "Pb": "25", "Cr": "60", "Cu": "20"}


def graded_village(app, client, official, county) -> list[dict]:
    """Ten dryland parcels sampled (at their centre, ± 15 m) and a county run over them: measured parcels, their
    neighbours estimated, the rest not assessed. Returns the ten parcels' features."""
    from sqlalchemy import update

    from fieldsvc.extensions import db
    from fieldsvc.samples.models import Sample
    from tests.api.test_console_pages import centre

    dry = [f for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")][:10]
    for i, feature in enumerate(dry):
        sid = put_sample(app, feature["properties"]["code"], county=county.county)
        put_results(app, sid, {**CLEAN_RESULTS, "Cd": f"{0.08 + 0.03 * i:.2f}", "pH": f"{5.6 + 0.2 * i:.1f}"})
        lat, lon = centre(feature)
        with app.app_context():
            db.session.execute(update(Sample).where(Sample.id == sid).values(lat=lat, lon=lon, accuracy_m=15.0))
            db.session.commit()
    run = client.post("/api/v1/grading/runs", json={"scope": {"county": county.county}}, headers=official.headers)
    assert run.status_code == 201, run.get_json()
    return dry
