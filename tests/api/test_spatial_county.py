"""A county's spatial estimation from stored samples and approved results (grading/spatial.py)."""

from __future__ import annotations

import math

import pytest

from fieldsvc.extensions import db
from fieldsvc.grading.rules import load_pack
from tests.api.test_grading_api import put_results, put_sample

CLEAN = {"pH": "6.0", "Cd": "0.12", "Hg": "0.05", "As": "8", "Pb": "25", "Cr": "60", "Cu": "20"}


def _assess(app, county_code):
    from fieldsvc.grading.spatial import assess_county

    with app.app_context():
        data, res, models = assess_county(county_code, load_pack("green_food_soil"))
        db.session.rollback()
    return data, res, models


def test_unsampled_parcels_are_estimated_from_their_group_or_not_assessed(app, county):
    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    sampled = dry[:8]
    for i, p in enumerate(sampled):
        put_results(app, put_sample(app, p["code"], county=county.county),
                    {**CLEAN, "Cd": f"{0.10 + 0.01 * i:.2f}"})
    data, res, models = _assess(app, county.county)
    assert len(res) == len(county.parcels)
    for p in sampled:
        assert res[p["code"]].basis == "measured" and res[p["code"]].verdict == "qualified"
    estimated = [a for a in res.values() if a.basis == "estimated"]
    assert estimated, "parcels near the samples are valued from them"
    for a in estimated:
        cd = a.analytes["Cd"]
        assert cd["method"] == "idw"  # 8 samples < min_samples_for_kriging (30): the model says why
        nb = cd["neighbours"]  # one neighbour set: codes and whole metres, nearest first
        assert len(nb["samples"]) == len(nb["distance_m"]) >= 3
        assert nb["distance_m"] == sorted(nb["distance_m"]) and all(d <= 1500 for d in nb["distance_m"])
        assert set(nb["samples"]) <= {s.code for s in data.samples}
        assert all(r["neighbours"] is nb for r in a.analytes.values())  # every analyte shares it here
        assert math.isfinite(cd["sigma"]) and cd["lower"] <= cd["value"] <= cd["upper"]
    assert models["Cd"].reason == "too_few_samples"
    paddy = [a for c, a in res.items() if next(f for f in county.parcels
                                               if f["properties"]["code"] == c)["properties"]["land_use"] == "paddy"]
    assert paddy and all(a.basis == "not_assessed" for a in paddy)  # no paddy sample: never from dryland ones


def test_a_hot_sample_keeps_its_neighbours_from_qualified(app, county):
    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    sids = []
    for i, p in enumerate(dry[:8]):
        values = {**CLEAN, "Cd": "0.9"} if i == 0 else CLEAN
        sids.append(put_results(app, put_sample(app, p["code"], county=county.county), values))
    _, res, _ = _assess(app, county.county)
    hot_code = None
    for a in res.values():
        if a.basis == "measured" and a.verdict == "not_qualified":
            hot_code = a.parcel
    assert hot_code == dry[0]["code"]
    near_hot = [a for a in res.values() if a.basis == "estimated"
                and a.analytes["Cd"].get("exceeding")]
    assert near_hot
    assert all(a.verdict in ("needs_sampling", "not_qualified") for a in near_hot)


def test_county_run_estimates_unsampled_parcels_with_basis_in_the_api(app, client, official, county):
    from fieldsvc.grading.qualification import qualification
    from tests.api.test_grading_api import grade, regrade
    from tests.api.test_grading_rollup import run_county

    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    sids = {}
    for p in dry[:8]:
        sids[p["code"]] = put_sample(app, p["code"], county=county.county)
        put_results(app, sids[p["code"]], CLEAN)
    run = run_county(client, official, county)
    cd = run["estimation"]["models"]["Cd"]
    assert (cd["method"], cd["reason"], cd["n_samples"]) == ("idw", "too_few_samples", 8)
    assert run["estimation"]["epsg"] // 100 in (326, 327) and run["estimation"]["estimated"] > 0

    measured = grade(client, official, "parcel", dry[0]["code"]).get_json()
    assert measured["basis"] == "measured"
    assert all(r["basis"] == "measured" for r in measured["explanation"]["analytes"])
    bodies = {p["code"]: grade(client, official, "parcel", p["code"]).get_json() for p in dry[8:]}
    est = {c: b for c, b in bodies.items() if b["basis"] == "estimated"}
    assert est
    code, body = next(iter(sorted(est.items())))
    assert body["verdict"] in ("qualified", "needs_sampling") and body["grade"] is None
    rows = body["explanation"]["analytes"]
    assert {r["analyte"] for r in rows} == {"Cd", "Hg", "As", "Pb", "Cr", "Cu"}
    for r in rows:
        assert r["basis"] == "estimated" and r["method"] == "idw" and r["sigma"] >= 0
        assert r["neighbours"] and all(set(n) >= {"sample", "distance_m", "value"} for n in r["neighbours"])
    paddy = next(f["properties"]["code"] for f in county.parcels if f["properties"]["land_use"] == "paddy")
    assert grade(client, official, "parcel", paddy).get_json()["basis"] == "not_assessed"
    with app.app_context():
        q = qualification("parcel", code)
        assert not q.qualified and q.reasons[0].startswith("basis_estimated")

    # incremental: a hot re-test on a neighbour re-estimates the parcels around it with the run's models
    neighbour_codes = {n["sample"] for r in rows for n in r["neighbours"]}
    with app.app_context():
        from fieldsvc.samples.models import Sample

        by_code = {s.code: s.parcel_code for s in db.session.query(Sample).all()}
    hot_parcel = next(by_code[c] for c in sorted(neighbour_codes))
    put_results(app, sids[hot_parcel], {"Cd": "0.9"}, version=2)
    changes = regrade(app, sids[hot_parcel])
    assert any(c["code"] == code for c in changes if c["subject_type"] == "parcel")
    after = grade(client, official, "parcel", code).get_json()
    assert after["basis"] == "estimated" and after["verdict"] in ("needs_sampling", "not_qualified")
    cd_row = next(r for r in after["explanation"]["analytes"] if r["analyte"] == "Cd")
    assert any(n["exceeds"] for n in cd_row["neighbours"])
    assert after["explanation"]["models"]["Cd"] == cd  # the run's model, not a refit


def test_sampling_next_ranks_unsettled_parcels_with_a_point_inside(app, client, official, county):
    from shapely.geometry import Point, shape

    from tests.api.test_grading_rollup import run_county
    from tests.helpers import assert_problem

    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    for i, p in enumerate(dry[:8]):
        put_results(app, put_sample(app, p["code"], county=county.county),
                    {**CLEAN, "Cd": "0.9"} if i == 0 else CLEAN)
    run_county(client, official, county)
    resp = client.get("/api/v1/sampling/next", query_string={"county": county.county, "limit": 500},
                      headers=official.headers)
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    sampled = {p["code"] for p in dry[:8]}
    assert items and not {i["parcel"] for i in items} & sampled
    assert {i["reason"] for i in items} <= {"needs_sampling", "not_assessed"}
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    geoms = {f["properties"]["code"]: shape(f["geometry"]) for f in county.parcels}
    for i in items[:10]:
        assert geoms[i["parcel"]].contains(Point(i["point"]["lon"], i["point"]["lat"]))
    ns = [i for i in items if i["reason"] == "needs_sampling"]
    assert all(i["sigma"]["value"] > 0 and i["nearest_sample_m"] <= 3000 for i in ns)
    village = dry[0]["village"]
    in_village = client.get("/api/v1/sampling/next", query_string={"village": village},
                            headers=official.headers).get_json()["items"]
    assert all(i["village"] == village for i in in_village)
    assert_problem(client.get("/api/v1/sampling/next", headers=official.headers), 422, "validation_failed", "county")
    assert_problem(client.get("/api/v1/sampling/next", query_string={"county": "999999"}, headers=official.headers),
                   404, "not_found")


def test_has_unsampled_follows_the_samples_estimation_would_use(app, county):
    """A county run skips the estimation only when every parcel has a usable sample (complete, live,
    an approved result); a parcel whose only sample is pending still counts as unsampled."""
    from fieldsvc.grading.spatial import has_unsampled

    codes = [f["properties"]["code"] for f in county.parcels]
    for code in codes[:-1]:
        put_results(app, put_sample(app, code, county=county.county), CLEAN)
    with app.app_context():
        assert has_unsampled(county.county)  # the last parcel has nothing
    put_sample(app, codes[-1], county=county.county)  # a sample, but no approved result yet
    with app.app_context():
        assert has_unsampled(county.county)
    put_results(app, put_sample(app, codes[-1], county=county.county), CLEAN)
    with app.app_context():
        assert not has_unsampled(county.county)
        data, res, _ = _assess_all(county.county)
        assert all(a.basis == "measured" for a in res.values())  # what the skip assumes


def _assess_all(county_code):
    from fieldsvc.grading.spatial import assess_county

    return assess_county(county_code, load_pack("green_food_soil"))


def test_a_county_run_estimates_when_its_pass_meets_the_first_unsampled_parcel(app, client, official, county,
                                                                                monkeypatch):
    """A county run fits and estimates at the first chunk holding a parcel without a usable sample,
    whichever chunk that is (here the last), and stores what a run that estimated up front stores;
    a county whose parcels all have one never fits (nor looks for such a parcel beforehand)."""
    from fieldsvc.grading import estimated, runs
    from tests.api.test_grading_rollup import run_county

    codes = sorted(f["properties"]["code"] for f in county.parcels)
    for code in codes[:-1]:
        put_results(app, put_sample(app, code, county=county.county), CLEAN)
    fits = []
    real = estimated.county_basis
    monkeypatch.setattr(estimated, "county_basis", lambda *a: fits.append(a) or real(*a))
    monkeypatch.setattr(runs, "CHUNK", 7)  # the unsampled parcel comes in the run's last chunk
    first = run_county(client, official, county)
    assert len(fits) == 1 and first["estimation"]["models"]
    assert first["estimation"]["estimated"] + first["estimation"]["not_assessed"] == 1
    monkeypatch.setattr(runs, "CHUNK", 2000)  # one chunk: the estimation comes before any grade is written
    again = run_county(client, official, county)
    assert len(fits) == 2 and again["counts"]["changed"] == 0  # the same rows: nothing to supersede
    assert again["estimation"] == first["estimation"]

    put_results(app, put_sample(app, codes[-1], county=county.county), CLEAN)
    monkeypatch.setattr(estimated, "county_basis", lambda *a: pytest.fail("a county with every parcel sampled fits"))
    full = run_county(client, official, county)
    assert full["estimation"] == estimated.nothing_to_estimate() and full["counts"]["not_assessed"] == 0
