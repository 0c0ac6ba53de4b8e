"""Green-food parcel grading (NY/T 391 limits, NY/T 1054 Nemerow classes): known answers from the tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.grading.grade import Measurement, SampleInput, evaluate, grade_parcel
from fieldsvc.grading.rules import load_pack

PACK = load_pack("green_food_soil")
CLEAN = {"Cd": "0.1", "Hg": "0.1", "As": "5", "Pb": "10", "Cr": "30", "Cu": "10"}
# dryland pH < 6.5 limits, for building parcels at an exact index
DRY_ACID = {"Cd": "0.30", "Hg": "0.25", "As": "25", "Pb": "50", "Cr": "120", "Cu": "50"}


def sample(sid: str = "s1", ph: str | None = "6.0", base: dict | None = None, **values: str) -> SampleInput:
    """A sample; a value written "<0.2" is censored at detection limit 0.2."""
    ms = {}
    if ph is not None:
        ms["pH"] = Measurement("pH", "=", Decimal(ph), None, "")
    for analyte, v in {**(CLEAN if base is None else base), **values}.items():
        if v.startswith("<"):
            ms[analyte] = Measurement(analyte, "<", None, Decimal(v[1:]), "mg/kg")
        else:
            ms[analyte] = Measurement(analyte, "=", Decimal(v), None, "mg/kg")
    return SampleInput(sid, f"BAG-{sid}", ms)


def row(result, analyte: str) -> dict:
    return next(r for r in result.explanation if r["analyte"] == analyte)


def bumped(limit: str) -> str:
    return str(Decimal(limit) + Decimal("0.0000001"))


LIMITS = [
    # land use, pH, analyte, limit, band
    ("dryland", "6.49", "Hg", "0.25", "dryland pH<6.5"),
    ("dryland", "6.5", "Hg", "0.30", "dryland 6.5<=pH<=7.5"),
    ("dryland", "7.5", "Hg", "0.30", "dryland 6.5<=pH<=7.5"),
    ("dryland", "7.51", "Hg", "0.35", "dryland pH>7.5"),
    ("dryland", "6.49", "Cu", "50", "dryland pH<6.5"),
    ("dryland", "6.5", "Cu", "60", "dryland 6.5<=pH<=7.5"),
    ("dryland", "7.5", "Cd", "0.30", "dryland 6.5<=pH<=7.5"),
    ("dryland", "7.51", "Cd", "0.40", "dryland pH>7.5"),
    ("paddy", "6.49", "Hg", "0.30", "paddy pH<6.5"),
    ("paddy", "6.5", "Hg", "0.40", "paddy 6.5<=pH<=7.5"),
    ("paddy", "7.5", "As", "20", "paddy 6.5<=pH<=7.5"),
    ("paddy", "7.51", "As", "15", "paddy pH>7.5"),
    ("paddy", "6.0", "Pb", "50", "paddy pH<6.5"),
    ("paddy", "8.0", "Cr", "120", "paddy pH>7.5"),
    ("vegetable", "7.5", "Cu", "60", "dryland 6.5<=pH<=7.5"),
    ("tea", "6.0", "As", "25", "dryland pH<6.5"),
    ("grassland", "8.0", "Cd", "0.40", "dryland pH>7.5"),
    ("orchard", "6.49", "Cu", "100", "dryland pH<6.5 x2"),
    ("orchard", "6.5", "Cu", "120", "dryland 6.5<=pH<=7.5 x2"),
    ("orchard", "7.51", "Cu", "120", "dryland pH>7.5 x2"),
    ("orchard", "6.0", "Hg", "0.25", "dryland pH<6.5"),
    ("paddy_dryland_rotation", "6.0", "Hg", "0.25", "dryland pH<6.5 (stricter of dryland, paddy)"),
    ("paddy_dryland_rotation", "6.0", "As", "20", "paddy pH<6.5 (stricter of dryland, paddy)"),
    ("paddy_dryland_rotation", "8.0", "As", "15", "paddy pH>7.5 (stricter of dryland, paddy)"),
    ("paddy_dryland_rotation", "8.0", "Hg", "0.35", "dryland pH>7.5 (stricter of dryland, paddy)"),
    ("sediment", "8.0", "As", "15", "paddy pH>7.5"),
    ("sediment", "6.5", "Hg", "0.40", "paddy 6.5<=pH<=7.5"),
]


@pytest.mark.parametrize(("land_use", "ph", "analyte", "limit", "band"), LIMITS)
def test_value_exactly_at_the_limit_qualifies_and_names_the_band(land_use, ph, analyte, limit, band):
    result = grade_parcel(land_use, [sample(ph=ph, **{analyte: limit})], PACK)
    assert result.verdict == "qualified"
    r = row(result, analyte)
    assert (Decimal(r["limit"]), r["band"], r["index"], r["verdict"]) == (Decimal(limit), band, "1", "pass")


@pytest.mark.parametrize(("land_use", "ph", "analyte", "limit", "band"), LIMITS)
def test_value_a_hair_above_the_limit_does_not_qualify(land_use, ph, analyte, limit, band):
    result = grade_parcel(land_use, [sample(ph=ph, **{analyte: bumped(limit)})], PACK)
    assert (result.verdict, result.grade, result.limiting) == ("not_qualified", "polluted", (analyte,))
    assert row(result, analyte)["verdict"] == "exceeds"
    assert row(result, analyte)["reason"] == "above_limit"


@pytest.mark.parametrize(("value", "verdict"), [("0.30", "qualified"), ("0.3", "qualified"),
                                                ("0.3000001", "not_qualified"), ("0.2999999", "qualified")])
def test_limit_comparison_is_exact_decimal(value, verdict):
    assert grade_parcel("dryland", [sample(Cd=value)], PACK).verdict == verdict


@pytest.mark.parametrize(
    ("cd", "verdict", "state", "reason", "index"),
    [
        ("<0.2", "qualified", "pass", "below_detection_limit", "0.333333333333"),
        ("<0.30", "qualified", "pass", "below_detection_limit", "0.5"),
        ("<0.31", "indeterminate", "indeterminate", "detection_limit_above_limit", "0.516666666667"),
        ("<100", "indeterminate", "indeterminate", "detection_limit_above_limit", "166.666666667"),
    ],
)
def test_censored_value_counts_half_the_detection_limit_and_is_never_an_exceedance(cd, verdict, state, reason,
                                                                                  index):
    result = grade_parcel("dryland", [sample(Cd=cd)], PACK)
    r = row(result, "Cd")
    assert result.verdict == verdict
    assert (r["verdict"], r["reason"], r["index"]) == (state, reason, index)
    assert (r["value"], r["qualifier"]) == (None, "<")
    assert r["detection_limit"] == cd[1:]


def test_censored_detection_limit_above_limit_makes_the_parcel_indeterminate_with_no_grade():
    result = grade_parcel("dryland", [sample(Cd="<0.5")], PACK)
    assert (result.verdict, result.grade, result.nemerow) == ("indeterminate", None, None)
    assert result.limiting == ("Cd",)


def test_exceedance_beats_an_indeterminate_analyte():
    result = grade_parcel("dryland", [sample(Cd="<0.5", Pb="51")], PACK)
    assert (result.verdict, result.grade, result.limiting) == ("not_qualified", "polluted", ("Cd", "Pb"))


@pytest.mark.parametrize(("ph", "reason"), [(None, "no_ph"), ("15", "invalid_ph"), ("-1", "invalid_ph")])
def test_sample_without_usable_ph_cannot_be_judged(ph, reason):
    result = grade_parcel("dryland", [sample(ph=ph)], PACK)
    assert result.verdict == "indeterminate"
    assert set(result.limiting) == set(CLEAN)
    assert {r["reason"] for r in result.explanation} == {reason}
    assert all(r["limit"] is None and r["band"] is None for r in result.explanation)


@pytest.mark.parametrize(
    ("measurement", "reason"),
    [
        (Measurement("Cd", "=", Decimal("0.1"), None, "ug/kg"), "unit_mismatch"),
        (Measurement("Cd", "=", None, None, "mg/kg"), "no_value"),
        (Measurement("Cd", "=", Decimal("-0.1"), None, "mg/kg"), "invalid_value"),
        (Measurement("Cd", "<", None, None, "mg/kg"), "no_detection_limit"),
        (Measurement("Cd", ">", Decimal("0.1"), None, "mg/kg"), "unknown_qualifier"),
    ],
)
def test_unusable_result_is_indeterminate_with_its_reason(measurement, reason):
    s = sample()
    s = SampleInput(s.sample_id, s.sample_code, {**s.measurements, "Cd": measurement})
    result = grade_parcel("dryland", [s], PACK)
    assert (result.verdict, result.limiting) == ("indeterminate", ("Cd",))
    assert row(result, "Cd")["reason"] == reason


def test_missing_analyte_is_not_measured():
    base = {k: v for k, v in CLEAN.items() if k != "Hg"}
    result = grade_parcel("dryland", [sample(base=base)], PACK)
    assert (result.verdict, result.limiting) == ("indeterminate", ("Hg",))
    assert row(result, "Hg")["reason"] == "not_measured"
    assert row(result, "Hg")["sample_code"] == "BAG-s1"


def test_parcel_without_samples_is_indeterminate_on_every_analyte():
    result = grade_parcel("dryland", [], PACK)
    assert (result.verdict, result.grade, result.limiting) == ("indeterminate", None, tuple(CLEAN))
    assert {r["reason"] for r in result.explanation} == {"not_measured"}


def test_each_sample_is_judged_in_its_own_ph_band():
    acid = sample("a", ph="6.0", Cd="0.1")
    alkaline = sample("b", ph="8.0", Cd="0.35")  # fails at pH 6 (0.30), passes at pH 8 (0.40)
    result = grade_parcel("dryland", [acid, alkaline], PACK)
    assert result.verdict == "qualified"
    assert (row(result, "Cd")["sample_id"], row(result, "Cd")["band"]) == ("b", "dryland pH>7.5")


@pytest.mark.parametrize(
    ("samples", "named", "verdict"),
    [
        ([("a", "6.0", "0.20"), ("b", "8.0", "0.35"), ("c", "7.0", "0.25")], "b", "pass"),
        ([("a", "6.0", "0.31"), ("b", "8.0", "0.39"), ("c", "7.0", "0.25")], "a", "exceeds"),
        ([("a", "6.0", "0.20"), ("b", None, "0.01")], "b", "indeterminate"),
        ([("a", "6.0", "0.90"), ("b", None, "0.01")], "a", "exceeds"),
        ([("b", "6.0", "0.15"), ("a", "6.0", "0.15")], "a", "pass"),
    ],
)
def test_analyte_is_judged_on_its_worst_sample_and_the_explanation_names_it(samples, named, verdict):
    result = grade_parcel("dryland", [sample(sid, ph=ph, Cd=cd) for sid, ph, cd in samples], PACK)
    r = row(result, "Cd")
    assert (r["sample_id"], r["sample_code"], r["verdict"]) == (named, f"BAG-{named}", verdict)


def _at_index(x: str, **override: str) -> SampleInput:
    values = {a: str(Decimal(limit) * Decimal(x)) for a, limit in DRY_ACID.items()}
    return sample(base=values, **override)


@pytest.mark.parametrize(
    ("parcel", "grade", "nemerow"),
    [
        (_at_index("0.5"), "clean", "0.5"),
        (_at_index("0.7"), "clean", "0.7"),
        (_at_index("0.7", Cd="0.2100003"), "still_clean", "0.700000583333"),
        (_at_index("0.1", Cd="0.27"), "clean", "0.657436097444"),  # max 0.9 but P ≤ 0.7
        (_at_index("0.9"), "still_clean", "0.9"),
        (_at_index("1"), "still_clean", "1"),
    ],
)
def test_nemerow_class_edges_belong_to_the_cleaner_class(parcel, grade, nemerow):
    result = grade_parcel("dryland", [parcel], PACK)
    assert (result.verdict, result.grade, str(result.nemerow)) == ("qualified", grade, nemerow)


def test_not_qualified_parcel_is_polluted_even_when_nemerow_is_below_one():
    result = grade_parcel("dryland", [_at_index("0.1", Cd="0.33")], PACK)
    assert result.nemerow < 1
    assert (result.verdict, result.grade) == ("not_qualified", "polluted")


def test_result_carries_pack_reference_and_serialises():
    result = grade_parcel("dryland", [sample()], PACK)
    body = result.to_dict()
    assert body["pack"] == {"code": "green_food_soil", "version": PACK.version, "verified": False}
    assert body["qualified"] is True
    assert len(body["fingerprint"]) == 64
    assert [r["analyte"] for r in body["explanation"]] == list(CLEAN)
    assert set(body["explanation"][0]) == {"analyte", "value", "qualifier", "detection_limit", "unit",
                                           "limit", "band", "index", "verdict", "reason", "sample_id",
                                           "sample_code"}


def test_fingerprint_changes_with_any_used_input_but_not_with_an_ignored_analyte():
    base = grade_parcel("dryland", [sample()], PACK).fingerprint
    assert grade_parcel("dryland", [sample(Cd="0.11")], PACK).fingerprint != base
    assert grade_parcel("paddy", [sample()], PACK).fingerprint != base
    assert grade_parcel("dryland", [sample(ph="6.1")], PACK).fingerprint != base
    extra = sample()
    extra = SampleInput(extra.sample_id, extra.sample_code,
                        {**extra.measurements, "Zn": Measurement("Zn", "=", Decimal(80), None, "mg/kg")})
    assert grade_parcel("dryland", [extra], PACK).fingerprint == base


def test_unknown_land_use_is_a_422_problem():
    with pytest.raises(Problem) as exc:
        grade_parcel("moon", [sample()], PACK)
    assert (exc.value.status, exc.value.code) == (422, "unknown_land_use")


def test_grade_parcel_refuses_a_pack_of_another_kind():
    with pytest.raises(Problem) as exc:
        grade_parcel("dryland", [sample()], load_pack("gb15618_2018"))
    assert exc.value.code == "rule_pack_kind_mismatch"


def test_non_finite_value_is_a_422_problem_not_a_crash():
    with pytest.raises(Problem) as exc:
        grade_parcel("dryland", [sample(ph="NaN")], PACK)
    assert exc.value.code == "invalid_measurement"


def test_evaluate_dispatches_the_green_food_pack_to_grade_parcel():
    direct = grade_parcel("dryland", [sample()], PACK).to_dict()
    assert evaluate(PACK, "dryland", [sample()]).to_dict() == direct


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), 0.5])
def test_a_metal_value_that_cannot_be_compared_is_a_422_when_graded_not_when_read(value):
    """A measurement's fault is decided when it is made; a value that cannot be compared leaves it to
    the comparison with the limit, so reading such a row never raises, grading it answers 422."""
    m = Measurement("Cd", "=", value, None, "mg/kg")
    assert m.fault is None
    with pytest.raises(Problem) as exc:
        grade_parcel("dryland", [SampleInput("s1", "B1", {**sample().measurements, "Cd": m})], PACK)
    assert exc.value.code == "invalid_measurement"


@pytest.mark.parametrize(("qualifier", "value", "dl", "reason"), [
    ("=", None, None, "no_value"), ("=", "-0.1", None, "invalid_value"), ("<", None, None, "no_detection_limit"),
    ("<", None, "0", "no_detection_limit"), ("~", "0.1", None, "unknown_qualifier"), ("=", "0", None, None)])
def test_a_measurements_fault_names_why_it_cannot_be_used(qualifier, value, dl, reason):
    m = Measurement("Cd", qualifier, None if value is None else Decimal(value), None if dl is None else Decimal(dl),
                    "mg/kg")
    assert m.fault == reason
    row = next(r for r in grade_parcel("dryland", [SampleInput("s1", "B1", {**sample().measurements, "Cd": m})],
                                       PACK).explanation if r["analyte"] == "Cd")
    assert row["reason"] == (reason or "within_limit")
