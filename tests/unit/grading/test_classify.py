"""Known answers: GB 15618 classes, NY/T 391 fertility, DZ/T 0295 micronutrients, DZ/T 0380 Se-rich land."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.grading.grade import (
    ClassGrade,
    Measurement,
    ParcelGrade,
    SampleInput,
    classify_fertility,
    classify_gb15618,
    classify_micronutrients,
    classify_se,
    evaluate,
)
from fieldsvc.grading.rules import load_pack

GB = load_pack("gb15618_2018")
FERT = load_pack("nyt391_fertility")
MICRO = load_pack("dzt0295_micronutrients")
SE = load_pack("dzt0380_se_rich")
METALS = {"Cd": "0.1", "Hg": "0.1", "As": "5", "Pb": "10", "Cr": "30", "Cu": "10", "Ni": "10", "Zn": "50"}
UNITS = {"OM": "g/kg", "TN": "g/kg", "CEC": "cmol(+)/kg"}


def sample(sid: str = "s1", ph: str | None = "6.0", base: dict | None = None, **values: str) -> SampleInput:
    ms = {}
    if ph is not None:
        ms["pH"] = Measurement("pH", "=", Decimal(ph), None, "")
    for analyte, v in {**(METALS if base is None else base), **values}.items():
        unit = UNITS.get(analyte, "mg/kg")
        if v.startswith("<"):
            ms[analyte] = Measurement(analyte, "<", None, Decimal(v[1:]), unit)
        else:
            ms[analyte] = Measurement(analyte, "=", Decimal(v), None, unit)
    return SampleInput(sid, f"BAG-{sid}", ms)


def row(result, analyte: str) -> dict:
    return next(r for r in result.explanation if r["analyte"] == analyte)


# --- GB 15618-2018 -------------------------------------------------------------------------

SCREENING = [
    ("paddy", "5.5", "Cd", "0.3", "paddy pH<=5.5"),
    ("paddy", "5.51", "Cd", "0.4", "paddy 5.5<pH<=6.5"),
    ("paddy", "6.5", "Cd", "0.4", "paddy 5.5<pH<=6.5"),
    ("paddy", "6.51", "Cd", "0.6", "paddy 6.5<pH<=7.5"),
    ("paddy", "7.5", "Cd", "0.6", "paddy 6.5<pH<=7.5"),
    ("paddy", "7.51", "Cd", "0.8", "paddy pH>7.5"),
    ("dryland", "5.5", "Cd", "0.3", "other pH<=5.5"),
    ("dryland", "7.5", "Cd", "0.3", "other 6.5<pH<=7.5"),
    ("dryland", "7.51", "Cd", "0.6", "other pH>7.5"),
    ("vegetable", "6.5", "Hg", "1.8", "other 5.5<pH<=6.5"),
    ("tea", "6.51", "As", "30", "other 6.5<pH<=7.5"),
    ("grassland", "7.51", "Pb", "170", "other pH>7.5"),
    ("paddy", "5.5", "As", "30", "paddy pH<=5.5"),
    ("paddy", "7.51", "Cr", "350", "paddy pH>7.5"),
    ("orchard", "6.5", "Cu", "150", "orchard 5.5<pH<=6.5"),
    ("orchard", "6.51", "Cu", "200", "orchard 6.5<pH<=7.5"),
    ("orchard", "6.0", "Cd", "0.3", "other 5.5<pH<=6.5"),
    ("paddy", "6.0", "Cu", "50", "other 5.5<pH<=6.5"),
    ("dryland", "7.51", "Cu", "100", "other pH>7.5"),
    ("paddy", "5.5", "Ni", "60", "all pH<=5.5"),
    ("orchard", "5.51", "Ni", "70", "all 5.5<pH<=6.5"),
    ("dryland", "7.5", "Zn", "250", "all 6.5<pH<=7.5"),
    ("paddy", "7.51", "Zn", "300", "all pH>7.5"),
    ("paddy_dryland_rotation", "6.0", "Cd", "0.3", "other 5.5<pH<=6.5 (stricter of paddy, other)"),
    ("paddy_dryland_rotation", "6.0", "Hg", "0.5", "paddy 5.5<pH<=6.5 (stricter of paddy, other)"),
]


@pytest.mark.parametrize(("land_use", "ph", "analyte", "limit", "band"), SCREENING)
def test_value_exactly_at_screening_is_priority_protection(land_use, ph, analyte, limit, band):
    result = classify_gb15618(land_use, [sample(ph=ph, **{analyte: limit})], GB)
    assert (result.grade, result.verdict) == ("priority_protection", "qualified")
    assert (row(result, analyte)["limit"], row(result, analyte)["band"]) == (limit, band)


@pytest.mark.parametrize(("land_use", "ph", "analyte", "limit", "band"), SCREENING)
def test_value_above_screening_is_safe_use(land_use, ph, analyte, limit, band):
    value = str(Decimal(limit) + Decimal("0.0001"))
    result = classify_gb15618(land_use, [sample(ph=ph, **{analyte: value})], GB)
    assert (result.grade, result.verdict, result.limiting) == ("safe_use", "not_qualified", (analyte,))
    assert row(result, analyte)["verdict"] == "exceeds"


@pytest.mark.parametrize(
    ("ph", "analyte", "intervention"),
    [("5.5", "Cd", "1.5"), ("5.51", "Cd", "2.0"), ("6.5", "Hg", "2.5"), ("6.51", "Hg", "4.0"),
     ("7.5", "Pb", "700"), ("7.51", "Cr", "1300"), ("5.5", "As", "200"), ("7.51", "As", "100")],
)
def test_intervention_edges_exactly_at_is_safe_use_above_is_strict_control(ph, analyte, intervention):
    at = classify_gb15618("dryland", [sample(ph=ph, **{analyte: intervention})], GB)
    above = classify_gb15618("dryland", [sample(ph=ph, **{analyte: str(Decimal(intervention) + 1)})], GB)
    assert (at.grade, at.strict_control) == ("safe_use", False)
    assert row(at, analyte)["intervention"] == intervention
    assert (above.grade, above.strict_control, above.verdict) == ("strict_control", True, "not_qualified")
    assert row(above, analyte)["reason"] == "above_intervention"


@pytest.mark.parametrize("analyte", ["Cu", "Ni", "Zn"])
def test_elements_without_intervention_value_can_never_be_strict_control(analyte):
    result = classify_gb15618("dryland", [sample(**{analyte: "100000"})], GB)
    assert result.grade == "safe_use"
    assert row(result, analyte)["intervention"] is None


@pytest.mark.parametrize(
    ("values", "grade", "verdict"),
    [
        ({"Cd": "<0.3"}, "priority_protection", "qualified"),
        ({"Cd": "<0.5"}, None, "indeterminate"),  # could be ≤ or > screening 0.3
        ({"Cd": "<3"}, None, "indeterminate"),  # could even pass intervention 2.0
        ({"Cd": "0.5", "Hg": "<3"}, None, "not_qualified"),  # safe use at least; strict unknown
        ({"Cd": "2.5", "Hg": "<3"}, "strict_control", "not_qualified"),
        ({"Cu": "<60"}, None, "indeterminate"),
    ],
)
def test_censored_values_narrow_the_class_instead_of_guessing(values, grade, verdict):
    result = classify_gb15618("dryland", [sample(**values)], GB)
    assert (result.grade, result.verdict) == (grade, verdict)


def test_gb_missing_ph_or_analyte_is_indeterminate_and_named():
    result = classify_gb15618("dryland", [sample(ph=None)], GB)
    assert result.verdict == "indeterminate"
    assert {r["reason"] for r in result.explanation} == {"no_ph"}
    partial = classify_gb15618("dryland", [sample(base={"Cd": "0.1"})], GB)
    assert row(partial, "Ni")["reason"] == "not_measured"


def test_gb_worst_sample_is_named():
    samples = [sample("a", ph="5.0", Cd="0.35"), sample("b", ph="8.0", Cd="0.5")]
    result = classify_gb15618("paddy", samples, GB)
    assert (result.grade, row(result, "Cd")["sample_id"]) == ("safe_use", "a")


# --- NY/T 391 fertility ----------------------------------------------------------------------

FERTILE = {"OM": "35", "TN": "2", "AP": "50", "AK": "200", "CEC": "25"}


@pytest.mark.parametrize(
    ("land_use", "analyte", "value", "cls"),
    [
        ("dryland", "OM", "15.01", "I"),
        ("dryland", "OM", "15", "II"),
        ("dryland", "OM", "10", "II"),
        ("dryland", "OM", "9.99", "III"),
        ("paddy", "OM", "25", "II"),
        ("vegetable", "AP", "40", "II"),
        ("vegetable", "AP", "40.1", "I"),
        ("orchard", "AK", "50", "II"),
        ("tea", "AK", "49", "III"),
        ("dryland", "TN", "0.8", "II"),
        ("paddy", "TN", "0.99", "III"),
        ("grassland", "AP", "10.5", "I"),
        ("dryland", "CEC", "20", "II"),
        ("paddy_dryland_rotation", "OM", "22", "II"),  # paddy II, dryland I: the worse class
    ],
)
def test_fertility_class_edges(land_use, analyte, value, cls):
    result = classify_fertility(land_use, [sample(base=FERTILE, **{analyte: value})], FERT)
    assert row(result, analyte)["class"] == cls
    assert result.grade == cls  # the other indicators are all class I


def test_pasture_has_no_tn_ak_or_cec_class():
    result = classify_fertility("grassland", [sample(base={"OM": "25", "AP": "12"})], FERT)
    assert result.grade == "I"
    not_graded = {r["analyte"] for r in result.explanation if r["verdict"] == "not_applicable"}
    assert not_graded == {"TN", "AK", "CEC"}


@pytest.mark.parametrize(("ap", "cls", "verdict"),
                         [("<4", "III", "classified"), ("<12", None, "indeterminate")])
def test_censored_fertility_value_is_classified_only_when_its_range_fits_one_class(ap, cls, verdict):
    result = classify_fertility("dryland", [sample(base=FERTILE, AP=ap)], FERT)
    assert (row(result, "AP")["class"], row(result, "AP")["verdict"]) == (cls, verdict)


def test_fertility_of_a_sediment_is_not_graded():
    with pytest.raises(Problem) as exc:
        classify_fertility("sediment", [sample(base=FERTILE)], FERT)
    assert exc.value.code == "unknown_land_use"


# --- DZ/T 0295 micronutrients ------------------------------------------------------------------

RICH = {"B": "70", "Mo": "1", "Mn": "800", "Zn": "90", "Cu": "30"}


@pytest.mark.parametrize(
    ("analyte", "value", "cls"),
    [
        ("B", "65.01", "rich"), ("B", "65", "fairly_rich"), ("B", "45", "fairly_deficient"),
        ("B", "30", "deficient"), ("B", "30.01", "fairly_deficient"), ("Mo", "0.85", "fairly_rich"),
        ("Mo", "0.45", "deficient"),
        ("Mn", "500", "fairly_deficient"), ("Mn", "500.1", "medium"), ("Zn", "84", "fairly_rich"),
        ("Cu", "16", "deficient"), ("Cu", "29.5", "rich"),
    ],
)
def test_micronutrient_edges_belong_to_the_poorer_class(analyte, value, cls):
    result = classify_micronutrients("paddy", [sample(base=RICH, **{analyte: value})], MICRO)
    assert row(result, analyte)["class"] == cls
    assert result.grade == cls


# --- DZ/T 0380 selenium-rich land --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ph", "se", "grade", "verdict"),
    [
        ("7.5", "0.40", "green_se_rich", "qualified"),
        ("7.5", "0.39", "not_se_rich", "not_qualified"),
        ("7.51", "0.30", "green_se_rich", "qualified"),
        ("7.51", "0.29", "not_se_rich", "not_qualified"),
        ("6.0", "3.0", "green_se_rich", "qualified"),
        ("6.0", "3.01", "se_excess", "not_qualified"),
        ("6.0", "<0.2", "not_se_rich", "not_qualified"),
        ("6.0", "<0.5", None, "indeterminate"),
    ],
)
def test_se_thresholds_depend_on_ph(ph, se, grade, verdict):
    result = classify_se("dryland", [sample(ph=ph, Se=se)], SE)
    assert (result.grade, result.verdict) == (grade, verdict)


def test_se_rich_land_failing_a_heavy_metal_limit_is_not_green():
    result = classify_se("dryland", [sample(ph="7.0", Se="0.5", Cd="0.35")], SE)
    assert (result.grade, result.verdict) == ("se_rich", "not_qualified")
    assert "Cd" in result.limiting
    assert {r.get("pack") for r in result.explanation[1:]} == {"gb15618_2018", "green_food_soil"}
    assert result.details["requirements"]["green_food_soil"]["verdict"] == "not_qualified"


def test_every_sample_must_be_se_rich_and_the_stopping_sample_is_named():
    result = classify_se("dryland", [sample("a", Se="0.5"), sample("b", Se="0.2")], SE)
    assert (result.grade, row(result, "Se")["sample_id"]) == ("not_se_rich", "b")


@pytest.mark.parametrize(
    ("pack", "kind"),
    [(GB, ClassGrade), (FERT, ClassGrade), (MICRO, ClassGrade), (SE, ClassGrade),
     (load_pack("green_food_soil"), ParcelGrade)],
)
def test_evaluate_dispatches_on_the_pack_kind(pack, kind):
    result = evaluate(pack, "dryland", [sample(base={**METALS, **FERTILE, **RICH, "Se": "0.5"})])
    assert isinstance(result, kind)
    assert result.to_dict()["pack"]["code"] == pack.code
