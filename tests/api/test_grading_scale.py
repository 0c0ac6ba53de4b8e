"""What the fast county run must still do: tell certificates past its listed changes, count every member."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from fieldsvc.extensions import db
from tests.api.test_grading_api import CLEAN, FAIL_CD, grade, parcels_by, put_results, put_sample
from tests.api.test_grading_rollup import assert_maintained_equals_full_recompute, run_county


def test_run_past_its_listed_changes_still_tells_certificates(app, client, official, county, monkeypatch):
    from fieldsvc.certificates import services as certificates
    from fieldsvc.grading import services

    village = county.regions[-1]["code"]
    in_village = parcels_by(county, village=village)[:3]
    assert len(in_village) == 3
    sids = [put_sample(app, p["code"]) for p in in_village]
    for sid in sids:
        put_results(app, sid, CLEAN)
    monkeypatch.setattr(services, "CHANGED_CAP", 1)
    first = run_county(client, official, county)
    assert len(first["changed"]) == 1 and first["counts"]["changed"] == 3  # listed: capped; counted: all
    calls = []
    monkeypatch.setattr(certificates, "on_grade_changed", lambda *a: calls.append(a) or [])
    for sid in sids:
        put_results(app, sid, FAIL_CD, version=2)
    second = run_county(client, official, county)
    assert second["counts"]["changed"] == 3 and second["counts"]["not_qualified"] == 3
    assert len(second["changed"]) == 1
    told = {c[1] for c in calls if c[0] == "parcel"}
    assert told == {p["code"] for p in in_village}  # the two past the cap too
    for p in in_village:  # each superseded row points at the new one: one current grade, not qualified
        body = grade(client, official, "parcel", p["code"]).get_json()
        assert body["verdict"] == "not_qualified" and body["explanation"]["reproduced"] is True
    assert_maintained_equals_full_recompute(app, county)
    third = run_county(client, official, county)
    assert third["counts"]["changed"] == 0 and third["counts"]["areas_changed"] == 0


def test_county_run_counts_members_it_did_not_grade(app, client, official, county):
    """A member row of the county whose parcel the run did not see still counts (the sums are of members)."""
    from fieldsvc.grading import services
    from fieldsvc.grading.models import RollupMember

    p = parcels_by(county, village=county.regions[-1]["code"])[0]
    put_results(app, put_sample(app, p["code"]), CLEAN)
    run_county(client, official, county)
    with app.app_context():
        before = services.maintained_sums("county", county.county, "green_food_soil")
        db.session.add(RollupMember(rule_pack="green_food_soil", parcel_code="GHOST-1", village_code=p["village"],
                                    farm_park_code=None, county_code=county.county, area_m2=1234.5,
                                    verdict="qualified", qualified=True, strict_control=False))
        db.session.commit()
    run_county(client, official, county)
    with app.app_context():
        after = services.maintained_sums("county", county.county, "green_food_soil")
        members = db.session.scalar(select(func.count()).select_from(RollupMember).where(
            RollupMember.county_code == county.county))
    assert after.parcel_count == before.parcel_count + 1 == members
    assert after.total_area - before.total_area == Decimal("1234.5")
    assert after.qualified_area - before.qualified_area == Decimal("1234.5")
