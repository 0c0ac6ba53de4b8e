"""Issue 14, decision B: after a change to one sample, the incremental re-grade re-values only the
parcels whose neighbour sets name it or would now take it in, and what it stores equals what a
whole-county run with the same models gives (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select

from fieldsvc.dbtypes import utcnow
from fieldsvc.extensions import db
from fieldsvc.grading import estimated, spatial
from fieldsvc.grading import estimation as es
from fieldsvc.grading.basis import stored_rows
from fieldsvc.grading.models import Grade
from fieldsvc.grading.rules import load_pack
from tests.api.test_grading_api import put_results, put_sample, regrade
from tests.api.test_spatial_county import CLEAN

PACK = "green_food_soil"


def _assert_equals_full_run(app, county_code: str) -> int:
    """Every unsampled parcel's current grade equals the whole-county answer with the run's models;
    returns how many are estimated."""
    with app.app_context():
        pack = load_pack(PACK)
        run = estimated.latest_run(county_code, pack)
        digest = estimated.models_digest(run.estimation["models"])
        _, county = spatial.assess_county_arrays(county_code, pack, estimated.run_models(run))
        want_all, not_assessed = estimated.stored(county, pack, digest)
        stored = {g.subject_code: g for g in db.session.scalars(select(Grade).where(
            Grade.subject_type == "parcel", Grade.rule_pack == PACK, Grade.superseded_by.is_(None)))}
        for code, want in want_all.items():
            g = stored.get(code)
            assert g is not None, code
            assert (g.verdict, g.fingerprint) == (want.verdict, want.fingerprint), code
            assert g.explanation == want.explanation.full(), code
        for code in not_assessed:
            g = stored.get(code)
            assert g is None or (g.explanation or {}).get("basis") != es.ESTIMATED, code
        n = len(want_all)
        db.session.rollback()
    return n


def _grade(app, code: str) -> Grade | None:
    with app.app_context():
        g = db.session.scalar(select(Grade).where(Grade.subject_type == "parcel", Grade.subject_code == code,
                                                  Grade.rule_pack == PACK, Grade.superseded_by.is_(None)))
        db.session.expunge_all()
    return g


def test_incremental_regrade_equals_a_full_county_run(app, client, official, county):
    from tests.api.test_grading_rollup import run_county

    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    sids = {}
    for i, p in enumerate(dry[:10]):
        sids[p["code"]] = put_sample(app, p["code"], county=county.county)
        put_results(app, sids[p["code"]], {**CLEAN, "Cd": f"{0.10 + 0.015 * i:.3f}"})
    run_county(client, official, county)
    n = _assert_equals_full_run(app, county.county)
    assert n > 0

    # a stored grade keeps one neighbour set for all its analytes (the same samples hold them all)
    est = next(g for p in dry[10:] if (g := _grade(app, p["code"])) is not None
               and g.explanation.get("basis") == "estimated")
    assert len(est.explanation["neighbour_sets"]) == 1
    assert all(r["neighbour_set"] == 0 for r in stored_rows(est.explanation))
    assert "value" not in str(est.explanation["neighbour_sets"])

    # 1. a hot re-test on a sample: the parcels naming it follow, with the precaution
    hot = dry[3]["code"]
    put_results(app, sids[hot], {"Cd": "0.9"}, version=2)
    regrade(app, sids[hot])
    _assert_equals_full_run(app, county.county)
    hot_code = f"BAG-{sids[hot][:8]}"
    named = [g for p in dry[10:] if (g := _grade(app, p["code"])) is not None
             and g.explanation.get("basis") == "estimated"
             and hot_code in estimated.neighbour_codes(g.explanation)]
    assert named
    for g in named:
        cd = next(r for r in stored_rows(g.explanation) if r["analyte"] == "Cd")
        assert hot_code in cd.get("exceeding", []) and g.verdict in ("needs_sampling", "not_qualified")

    # 2. a new sample on an unsampled parcel, with Cd and pH only: it joins the Cd and pH sets only
    new_parcel = dry[12]["code"]
    sid = put_sample(app, new_parcel, county=county.county)
    put_results(app, sid, {"pH": "6.1", "Cd": "0.11"})
    regrade(app, sid)
    _assert_equals_full_run(app, county.county)
    split = [g for p in dry[13:] if (g := _grade(app, p["code"])) is not None
             and g.explanation.get("basis") == "estimated" and len(g.explanation["neighbour_sets"]) > 1]
    assert split, "where eligibility differs per analyte, the analytes name different sets"

    # 3. a sample removed: the parcels that named it take their next neighbour (or lose the estimate)
    from fieldsvc.samples.models import Sample

    gone = dry[5]["code"]
    with app.app_context():
        db.session.get(Sample, sids[gone]).deleted_at = utcnow()
        db.session.commit()
    regrade(app, sids[gone])
    _assert_equals_full_run(app, county.county)


def test_regrade_values_only_parcels_that_name_or_take_the_sample(app, client, official, county):
    """The set ``around`` values is the parcels whose neighbour sets hold the changed sample, and
    no others (the far dryland parcels out of its reach are left alone)."""
    from tests.api.test_grading_rollup import run_county

    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    sids = {p["code"]: put_sample(app, p["code"], county=county.county) for p in dry[:10]}
    for sid in sids.values():
        put_results(app, sid, CLEAN)
    run_county(client, official, county)
    changed = dry[0]["code"]
    code = f"BAG-{sids[changed][:8]}"
    with app.app_context():
        pack = load_pack(PACK)
        found, estimates = estimated.around([changed], pack)
        naming = {g.subject_code for g in db.session.scalars(select(Grade).where(
            Grade.subject_type == "parcel", Grade.rule_pack == PACK, Grade.superseded_by.is_(None)))
            if code in estimated.neighbour_codes(g.explanation)}
        db.session.rollback()
    assert naming and naming <= found
    # nothing changed in the data, so every other parcel found would take the sample in anyway: none
    assert found == naming
