"""Area grades on assessed area (fieldsvc.grading.area)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.grading.area import (
    RULE,
    AreaParcel,
    AreaSums,
    area_certifiable,
    assess_area,
    parcel_certifiable,
)
from fieldsvc.grading.estimation import EstimationParams

PARAMS = EstimationParams(min_coverage=0.6, samples_per_ha=0.05)


def _p(code, area, basis, verdict, samples=0, strict=False):
    return AreaParcel(code, Decimal(area), basis, verdict, samples, strict)


def test_an_unsampled_village_is_not_assessed_and_says_what_would_lift_it():
    parcels = [_p(f"P{i}", 1000 + i, "not_assessed", "not_assessed") for i in range(10)]
    a = assess_area(parcels, PARAMS)
    body = a.to_dict()
    assert a.grade == "not_assessed" and body["coverage"] == "0" and body["rule"] == RULE
    assert body["lift"]["samples_at_most"] == 6  # 60 % of the area, largest parcels first
    assert body["lift"]["parcels"][:2] == ["P9", "P8"]
    assert "would lift it" in body["message"]


def test_below_min_coverage_is_never_c_even_if_every_assessed_parcel_fails():
    parcels = [_p("F1", 100, "measured", "not_qualified", 1)] + \
        [_p(f"U{i}", 100, "not_assessed", "not_assessed") for i in range(9)]
    assert assess_area(parcels, PARAMS).grade == "not_assessed"
    # at 60 % coverage the failing area grades C
    parcels = [_p(f"F{i}", 100, "measured", "not_qualified", 1) for i in range(6)] + \
        [_p(f"U{i}", 100, "not_assessed", None) for i in range(4)]
    assert assess_area(parcels, PARAMS).grade == "C"


def test_needs_sampling_and_not_assessed_never_count_as_failing():
    parcels = [_p(f"Q{i}", 100, "estimated", "qualified") for i in range(7)] + \
        [_p(f"N{i}", 100, "estimated", "needs_sampling") for i in range(3)]
    a = assess_area(parcels, PARAMS)
    assert a.grade == "A" and a.to_dict()["coverage"] == "0.7" and a.to_dict()["needs_sampling_area_m2"] == "300"
    assert a.to_dict()["estimated_area_m2"] == "700"


def test_strict_control_caps_at_c_and_b_between_thresholds():
    parcels = [_p(f"Q{i}", 100, "measured", "qualified", 1) for i in range(9)] + [_p("X", 100, "measured",
                                                                                   "not_qualified", 1)]
    assert assess_area(parcels, PARAMS).grade == "B"  # 90 %
    parcels[0] = _p("Q0", 100, "measured", "qualified", 1, strict=True)
    assert assess_area(parcels, PARAMS).grade == "C"


def test_certificates_need_grade_a_density_and_measured_parcels():
    ha = 10_000
    parcels = [_p(f"Q{i}", 2 * ha, "measured", "qualified", 1) for i in range(10)]  # 0.5 samples/ha
    ok, reasons = area_certifiable(assess_area(parcels, PARAMS), PARAMS)
    assert ok and not reasons
    sparse = [_p(f"Q{i}", 100 * ha, "estimated", "qualified") for i in range(10)]
    sparse.append(_p("M", ha, "measured", "qualified", 1))
    ok, reasons = area_certifiable(assess_area(sparse, PARAMS), PARAMS)
    assert not ok and reasons == ["sample_density_below:0.05"]
    ok, reasons = area_certifiable(assess_area([_p("U", ha, "not_assessed", None)], PARAMS), PARAMS)
    assert not ok and "not_assessed" in reasons
    assert parcel_certifiable("measured", "qualified") == (True, [])
    assert parcel_certifiable("estimated", "qualified") == (False, ["basis_estimated"])


_parcel = st.builds(_p, st.sampled_from([f"P{i}" for i in range(8)]), st.integers(0, 10_000),
                    st.sampled_from(["measured", "estimated", "not_assessed"]),
                    st.sampled_from(["qualified", "not_qualified", "needs_sampling", "indeterminate", "not_assessed",
                                     None]),
                    st.integers(0, 3), st.booleans())


@settings(max_examples=100, deadline=None)
@given(st.lists(_parcel, max_size=8, unique_by=lambda p: p.code), st.lists(_parcel, max_size=8))
def test_maintained_sums_equal_a_full_roll_up(start, changes):
    current = {p.code: p for p in start}
    sums = AreaSums()
    for p in start:
        sums = sums.apply(None, p)
    for new in changes:
        sums = sums.apply(current.get(new.code), new)
        current[new.code] = new
    full = assess_area(current.values(), PARAMS)
    assert sums == full.sums


@settings(max_examples=100, deadline=None)
@given(st.lists(_parcel, min_size=1, max_size=8, unique_by=lambda p: p.code), st.data())
def test_turning_a_parcel_not_assessed_never_makes_an_area_a_from_not_assessed(parcels, data):
    before = assess_area(parcels, PARAMS).grade
    k = data.draw(st.integers(0, len(parcels) - 1))
    p = parcels[k]
    fewer = [*parcels[:k], _p(p.code, p.area_m2, "not_assessed", "not_assessed", 0, p.strict_control), *parcels[k + 1:]]
    after = assess_area(fewer, PARAMS).grade
    if before == "not_assessed":
        assert after == "not_assessed"
