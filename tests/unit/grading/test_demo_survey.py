"""The demo county samples like a real survey and shows a believable picture (issue 14).

Pure: the demo's survey design and lab values go straight into the estimation the county run uses
(``estimation.assess``, as ``spatial.assess_county`` calls it), without a database.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict

import pytest

from fieldsvc.demo import DemoSample, element_trend, survey_design
from fieldsvc.grading import estimation as es
from fieldsvc.grading.rules import load_pack
from fieldsvc.grading.spatial import limit_fn
from fieldsvc.lab.demo import make_demo_results
from fieldsvc.places.demo_data import SURVEY_GAPS, generate_county, local_xy, parcel_centre
from fieldsvc.places.geometry import areas_m2


@pytest.fixture(scope="module")
def demo():
    county = generate_county()
    by_code = {f["properties"]["code"]: f for f in county.parcels}
    xy = {code: local_xy(county, *parcel_centre(f)) for code, f in by_code.items()}
    area = dict(zip(by_code, areas_m2([f["geometry"] for f in county.parcels]), strict=True))
    return county, by_code, xy, area, survey_design(county)


def test_survey_samples_about_one_per_several_hectares_across_the_county(demo):
    county, by_code, xy, area, sampled = demo
    assert len(sampled) == len(set(sampled))
    hectares = sum(area.values()) / 10_000
    assert 8 <= hectares / len(sampled) <= 25  # ~14 ha per sample: a survey's density, not one per parcel
    townships = Counter(by_code[c]["properties"]["village"][:9] for c in sampled)
    assert len(townships) == sum(r["level"] == "township" for r in county.regions)  # spread over the county
    for gx, gy, r in SURVEY_GAPS:  # the areas the survey did not reach have no sample of the grid
        inside = [c for c in sampled if math.hypot(xy[c][0] - gx * 1000, xy[c][1] - gy * 1000) < r * 1000 - 400]
        assert inside == []
    park = county.farm_parks[0]["code"]
    assert {c for c, f in by_code.items() if f["properties"].get("farm_park") == park} <= set(sampled)


@pytest.mark.slow
def test_the_demo_county_shows_a_believable_picture(demo):
    """Most villages assessed, a few not, most parcels estimated, the Cd hot spot not qualified."""
    county, by_code, xy, area, sampled = demo
    samples = [DemoSample(f"id{n}", f"QH{n + 1:05d}", by_code[c]["properties"]["land_use"], c,
                          element_trend(*xy[c])) for n, c in enumerate(sampled)]
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for row in csv.DictReader(io.StringIO(make_demo_results(samples, 391).decode())):
        if not row["qc_type"]:
            try:
                values[row["sample_code"]][row["analyte"]] = float(row["value"])
            except ValueError:  # censored: half the detection limit, as grading counts it
                values[row["sample_code"]][row["analyte"]] = float(row["detection_limit"]) / 2
    pack = load_pack("green_food_soil")
    obs = [es.Sample(s.code, s.parcel, s.land_use, *xy[s.parcel], values[s.code]) for s in samples]
    targets = [es.Target(c, *xy[c], f["properties"]["land_use"]) for c, f in by_code.items()]
    res, models = es.assess(obs, targets, pack.data["analytes"], limit_fn(pack), pack.estimation)

    basis = Counter(a.basis for a in res.values())
    assert basis["measured"] == len(sampled)
    assert basis["estimated"] >= 0.8 * len(res)  # most parcels valued from their neighbours
    assert 0.01 * len(res) <= basis["not_assessed"] <= 0.1 * len(res)  # the survey's gaps
    assert all(m.method == "kriging" for m in models.values())  # spatial structure: the variograms fit
    verdicts = Counter(a.verdict for a in res.values())
    assert verdicts["qualified"] >= 0.7 * len(res) and verdicts["not_qualified"] > 0

    total: dict[str, float] = defaultdict(float)
    assessed: dict[str, float] = defaultdict(float)
    for code, a in res.items():
        village = by_code[code]["properties"]["village"]
        total[village] += area[code]
        if a.verdict in ("qualified", "not_qualified", "indeterminate"):
            assessed[village] += area[code]
    low = [v for v in total if assessed[v] / total[v] < pack.estimation.min_coverage]
    assert 0.03 * len(total) <= len(low) <= 0.2 * len(total), len(low)  # most villages assessed, a few not

    hot = [a for c, a in res.items() if math.hypot(xy[c][0] - 12_500, xy[c][1] - 11_000) < 500]
    assert hot and sum(a.verdict in ("not_qualified", "needs_sampling") for a in hot) >= 0.8 * len(hot)
