"""Area roll-ups: maintained sums follow every change incrementally and always equal a full recompute."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from sqlalchemy import select

from fieldsvc.extensions import db
from fieldsvc.grading.rules import load_pack
from tests.api.test_grading_api import (
    CLEAN,
    grade,
    history,
    paddy,
    parcels_by,
    put_results,
    put_sample,
    regrade,
)


def run_county(client, official, county) -> dict:
    resp = client.post("/api/v1/grading/runs", json={"scope": {"county": county.county}}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def areas_of(county) -> list[tuple[str, str]]:
    return ([("county", county.county)] + [("village", r["code"]) for r in county.regions if r["level"] == "village"]
            + [("farm_park", p["code"]) for p in county.farm_parks])


def assert_maintained_equals_full_recompute(app, county, pack_code: str = "green_food_soil") -> None:
    from fieldsvc.grading import queries
    from fieldsvc.grading.rollup import AreaGrade
    from fieldsvc.grading.sums import _sums_values, area_dict

    pack = load_pack(pack_code)
    with app.app_context():
        for kind, code in areas_of(county):
            sums = queries.maintained_sums(kind, code, pack.code)
            assert sums is not None, (kind, code)
            live = queries.live_area_grade(kind, code, pack)
            holding, _ = queries._holding_back(kind, code, pack.code)
            maintained = AreaGrade.from_sums(sums, pack, holding)
            assert area_dict(maintained) == area_dict(live), (kind, code)
            current = queries.current_grade(kind, code, pack.code)  # the stored area grade row is current too
            assert current is not None and current.grade == live.grade, (kind, code)
            assert current.inputs == _sums_values(sums)


def test_green_food_limits_sit_below_gb15618_intervention_values():
    """Why a parcel that qualifies can never be strict control (so GB 15618 runs only for the others)."""
    green, gb = load_pack("green_food_soil"), load_pack("gb15618_2018")
    for land_use in green.land_uses:
        if land_use not in gb.land_uses:
            continue
        gt, bt = green.ph_table(land_use), gb.ph_table(land_use)
        for ph in [Decimal(x) / 10 for x in range(0, 141)]:
            g_row, b_row = gt.row_for(ph), bt.row_for(ph)
            for i, analyte in enumerate(gt.analytes):
                if analyte in bt.analytes and b_row[bt.analytes.index(analyte)][2] is not None:
                    assert g_row[i][0] <= b_row[bt.analytes.index(analyte)][2], (land_use, ph, analyte)


def test_retest_that_fails_a_parcel_moves_village_park_and_county_incrementally(app, client, official, county):
    park_parcels = [p for p in county.parcels if p["properties"].get("farm_park")]
    target = park_parcels[0]["properties"]
    village = target["village"]
    in_village = parcels_by(county, village=village)
    samples = {}
    for p in in_village:
        samples[p["code"]] = put_sample(app, p["code"])
        put_results(app, samples[p["code"]], CLEAN)
    run_county(client, official, county)
    assert grade(client, official, "village", village).get_json()["grade"] == "A"
    before_park = grade(client, official, "farm-park", target["farm_park"]).get_json()
    before_county = grade(client, official, "county", county.county).get_json()

    sid = samples[target["code"]]
    put_results(app, sid, {"Cd": "0.45"}, version=2)  # the re-test, approved
    changes = regrade(app, sid)
    kinds = {(c["subject_type"], c["code"]) for c in changes}
    assert {("parcel", target["code"]), ("village", village), ("farm_park", target["farm_park"]),
            ("county", county.county)} <= kinds
    parcel = grade(client, official, "parcel", target["code"]).get_json()
    assert (parcel["verdict"], parcel["limiting"]) == ("not_qualified", ["Cd"])
    v = grade(client, official, "village", village).get_json()
    assert v["grade"] != "A" and v["qualified"] is False and target["code"] in v["limiting"]
    assert v["explanation"]["qualified_count"] == len(in_village) - 1
    assert Decimal(v["explanation"]["coverage"]) == 1
    # the failed parcel, and the estimated parcels next to it (its exceedance keeps them from
    # "qualified (estimated)") leave the qualified count
    estimated_near = [c["code"] for c in changes if c["subject_type"] == "parcel" and c["code"] != target["code"]]
    assert all(c["verdict"] in ("needs_sampling", "not_qualified") for c in changes
               if c["subject_type"] == "parcel" and c["code"] in estimated_near)
    park = grade(client, official, "farm-park", target["farm_park"]).get_json()
    assert park["explanation"]["qualified_count"] <= before_park["explanation"]["qualified_count"] - 1
    c = grade(client, official, "county", county.county).get_json()
    assert c["explanation"]["qualified_count"] == \
        before_county["explanation"]["qualified_count"] - 1 - len(estimated_near)
    assert Decimal(c["explanation"]["qualified_area_m2"]) < Decimal(before_county["explanation"]["qualified_area_m2"])
    assert [h["grade"] for h in history(client, official, "village", village)][-2:] == ["A", v["grade"]]
    assert_maintained_equals_full_recompute(app, county)
    again = run_county(client, official, county)  # a full run finds nothing to repair among measured parcels
    # (it refits the variograms with the re-test, so estimated parcels may move: recorded with the run)
    assert all(c["code"] not in samples for c in again["changed"] if c["subject_type"] == "parcel")
    assert again["estimation"]["models"]["Cd"]["n_samples"] == len(in_village)


def test_village_qualification_and_certificate_hook(app, client, official, county, monkeypatch):
    from fieldsvc.certificates import services as certificates
    from fieldsvc.grading.qualification import qualification

    calls = []
    monkeypatch.setattr(certificates, "on_grade_changed", lambda *a: calls.append(a) or [])
    # every subject counts as certified, so the hook is offered every change (``certified_subjects``
    # passes on only the subjects holding a certificate or land label)
    monkeypatch.setattr(certificates, "certified_subjects", lambda subjects: set(subjects))
    village = county.regions[-1]["code"]
    in_village = parcels_by(county, village=village)
    sids = [put_sample(app, p["code"]) for p in in_village]
    for sid in sids:
        put_results(app, sid, CLEAN)
    with app.app_context():
        # not graded yet: live, nothing assessed: not assessed (never C)
        assert qualification("village", village).reasons == ["not_assessed: 0.0% < 60%"]
    run_county(client, official, county)
    with app.app_context():
        q = qualification("village", village)
        assert (q.qualified, q.grade, q.verdict, q.reasons) == (True, "A", "qualified", [])
        assert q.rule_pack["code"] == "green_food_soil" and q.tested_on is not None and q.grade_id is not None
        assert q.explanation["coverage"] == "1"
    assert calls == []  # first grades: nothing was certified before
    put_results(app, sids[0], {"Cd": "0.45"}, version=2)
    regrade(app, sids[0])
    assert ("parcel", in_village[0]["code"], False, "regraded: not_qualified (polluted)") in calls
    assert any(c[0] == "village" and c[1] == village and c[2] is False for c in calls)
    with app.app_context():
        q = qualification("village", village)
        assert q.qualified is False and q.reasons[0].startswith("grade_below_A")
        p = qualification("parcel", in_village[0]["code"])
        assert p.reasons == ["not_qualified: Cd exceeds"] and p.verdict == "not_qualified"


def test_without_a_county_run_areas_are_graded_live_and_hook_still_fires(app, client, official, county,
                                                                           monkeypatch):
    from fieldsvc.certificates import services as certificates

    calls = []
    monkeypatch.setattr(certificates, "on_grade_changed", lambda *a: calls.append(a) or [])
    # every subject counts as certified, so the hook is offered every change (``certified_subjects``
    # passes on only the subjects holding a certificate or land label)
    monkeypatch.setattr(certificates, "certified_subjects", lambda subjects: set(subjects))
    p = paddy(county)
    sid = put_sample(app, p["code"])
    put_results(app, sid, CLEAN)
    regrade(app, sid)
    body = grade(client, official, "village", p["village"]).get_json()
    assert body["inputs"]["maintained"] is False and body["explanation"]["graded_count"] == 1
    put_results(app, sid, {"Cd": "0.45"}, version=2)
    regrade(app, sid)
    assert ("village", p["village"], False, f"regraded: grade {body['grade']}") in calls


def test_strict_control_parcel_caps_its_village_at_c(app, client, official, county):
    p = paddy(county)
    sid = put_sample(app, p["code"])
    put_results(app, sid, {**CLEAN, "Cd": "5.0"})  # above the GB 15618 intervention value (2.0 at pH 6.0)
    for other in parcels_by(county, village=p["village"]):  # the rest clean: the village is fully assessed
        if other["code"] != p["code"]:
            put_results(app, put_sample(app, other["code"]), CLEAN)
    run_county(client, official, county)
    parcel = grade(client, official, "parcel", p["code"]).get_json()
    assert parcel["strict_control"] is True and parcel["explanation"]["gb15618_class"] == "strict_control"
    village = grade(client, official, "village", p["village"]).get_json()
    assert village["grade"] == "C" and village["explanation"]["strict_control_count"] == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_maintained_sums_equal_full_recompute_after_random_changes(app, client, official, county, seed):
    """A property: whatever sequence of approvals, re-tests, deletions and parcel edits, sums stay exact."""
    from fieldsvc.dbtypes import utcnow
    from fieldsvc.grading.regrade import regrade_parcels
    from fieldsvc.samples.models import Sample

    rng = random.Random(seed)
    codes = [f["properties"]["code"] for f in county.parcels]
    villages = [r["code"] for r in county.regions if r["level"] == "village"]
    values = ("0.10", "0.28", "0.45", "<0.05", "<0.5", "5.0")
    samples: list[tuple[str, str]] = []
    for code in rng.sample(codes, 8):
        sid = put_sample(app, code)
        put_results(app, sid, {**CLEAN, "Cd": rng.choice(values)})
        samples.append((sid, code))
    run_county(client, official, county)
    assert_maintained_equals_full_recompute(app, county)
    deleted: set[str] = set()
    for step in range(14):
        op = rng.choice(("sample", "retest", "pending", "delete_sample", "area", "move", "delete_parcel"))
        live = [c for c in codes if c not in deleted]
        if op == "sample":
            code = rng.choice(live)
            sid = put_sample(app, code)
            put_results(app, sid, {**CLEAN, "Cd": rng.choice(values), "pH": rng.choice(("5.0", "7.0", "8.0"))})
            samples.append((sid, code))
            regrade(app, sid)
        elif op in ("retest", "pending") and samples:
            sid, _ = rng.choice(samples)
            put_results(app, sid, {"Cd": rng.choice(values)}, version=100 + step,
                        status="approved" if op == "retest" else "pending")
            regrade(app, sid)
        elif op == "delete_sample" and samples:
            sid, _ = samples.pop(rng.randrange(len(samples)))
            with app.app_context():
                db.session.get(Sample, sid).deleted_at = utcnow()
                db.session.commit()
            regrade(app, sid)
        elif op in ("area", "move", "delete_parcel"):
            code = rng.choice(live)
            if op == "area":
                resp = client.patch(f"/api/v1/parcels/{code}", json={"area_m2": round(rng.uniform(100, 9000), 2)},
                                    headers=official.headers)
            elif op == "move":
                resp = client.patch(f"/api/v1/parcels/{code}", json={"village": rng.choice(villages)},
                                    headers=official.headers)
            else:
                resp = client.delete(f"/api/v1/parcels/{code}", headers=official.headers)
                deleted.add(code)
            assert resp.status_code == 200, resp.get_json()
            with app.app_context():  # the lead wires parcel edits to this call
                regrade_parcels([code])
                db.session.commit()
        assert_maintained_equals_full_recompute(app, county)


def test_village_run_repairs_tampered_sums(app, client, official, county):
    from fieldsvc.grading.models import RollupSum

    p = paddy(county)
    sid = put_sample(app, p["code"])
    put_results(app, sid, CLEAN)
    run_county(client, official, county)
    with app.app_context():
        row = db.session.scalar(select(RollupSum).where(RollupSum.subject_type == "village",
                                                        RollupSum.subject_code == p["village"]))
        row.qualified_area, row.qualified_count = "0", 0
        db.session.commit()
    resp = client.post("/api/v1/grading/runs", json={"scope": {"village": p["village"]}}, headers=official.headers)
    assert resp.status_code == 201 and resp.get_json()["counts"]["repaired"] == 1
    assert_maintained_equals_full_recompute(app, county)
    body = json.loads(json.dumps(grade(client, official, "village", p["village"]).get_json()))
    assert body["explanation"]["qualified_count"] == 1
