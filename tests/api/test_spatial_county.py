"""A county's spatial estimation from stored samples and approved results (grading/spatial.py)."""

from __future__ import annotations

import math

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
        assert len(cd["neighbours"]) >= 3
        assert all(n["distance_m"] <= 1500 for n in cd["neighbours"])
        assert {n["sample"] for n in cd["neighbours"]} <= {s.code for s in data.samples}
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
                and any(n["exceeds"] for n in a.analytes["Cd"]["neighbours"])]
    assert near_hot
    assert all(a.verdict in ("needs_sampling", "not_qualified") for a in near_hot)
