"""Area roll-up: A/B/C by qualifying share of area, coverage, holding-back list, incremental sums."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.grading.rollup import AreaGrade, ParcelOutcome, RollupSums, clear_of_thresholds, grade_from_sums, rollup
from fieldsvc.grading.rules import load_pack

D = Decimal
THRESHOLDS = {"A": "0.95", "B": "0.80"}


def area(qualified: str, other: str, other_verdict: str | None = "not_qualified") -> list[ParcelOutcome]:
    return [ParcelOutcome("Q", Decimal(qualified), "qualified"),
            ParcelOutcome("X", Decimal(other), other_verdict)]


@pytest.mark.parametrize(
    ("qualified", "other", "grade"),
    [
        ("95", "5", "A"),  # exactly 95 %
        ("94.99", "5.01", "B"),
        ("80", "20", "B"),  # exactly 80 %
        ("79.99", "20.01", "C"),
        ("100", "0", "A"),
        ("0", "100", "C"),
    ],
)
def test_grade_thresholds_are_inclusive_and_exact(qualified, other, grade):
    assert rollup(area(qualified, other), THRESHOLDS).grade == grade


@pytest.mark.parametrize("verdict", ["indeterminate", "not_qualified"])
def test_indeterminate_and_failing_parcels_count_as_not_qualified(verdict):
    result = rollup(area("90", "10", verdict), THRESHOLDS)
    assert (result.grade, result.qualified_share) == ("B", Decimal("0.9"))
    assert result.holding_back == ("X",)


@pytest.mark.parametrize("verdict", [None, "needs_sampling", "not_assessed"])
def test_unassessed_parcels_never_count_as_failing(verdict):
    result = rollup(area("90", "10", verdict), THRESHOLDS)
    assert (result.grade, result.qualified_share, result.coverage) == ("A", Decimal(1), Decimal("0.9"))
    assert result.holding_back == () and result.to_dict()["rule"] == "area share, fieldsvc design"


@pytest.mark.parametrize(("assessed", "grade"), [("59.99", "not_assessed"), ("60", "A")])
def test_below_min_coverage_the_grade_is_not_assessed_never_c(assessed, grade):
    other = str(100 - Decimal(assessed))
    result = rollup(area(assessed, other, None), THRESHOLDS)
    assert result.grade == grade
    failing = rollup([ParcelOutcome("F", Decimal(assessed), "not_qualified"), ParcelOutcome("U", Decimal(other), None)],
                     THRESHOLDS)
    assert failing.grade == ("not_assessed" if grade == "not_assessed" else "C")
    if grade == "not_assessed":
        body = failing.to_dict()
        assert "Not assessed" in body["message"] and body["assessed_area_needed_m2"] == "0.01"


def test_coverage_is_graded_area_over_total_area():
    result = rollup(area("60", "40", None) + [ParcelOutcome("Y", 100, "indeterminate")], THRESHOLDS)
    assert (result.total_area_m2, result.graded_area_m2, result.coverage) == (200, 160, Decimal("0.8"))
    assert (result.parcel_count, result.graded_count, result.qualified_count) == (3, 2, 1)


def test_any_strict_control_parcel_caps_the_grade_at_c():
    outcomes = [ParcelOutcome("Q", 1000, "qualified"),
                ParcelOutcome("S", 1, "not_qualified", strict_control=True)]
    assert rollup(outcomes, THRESHOLDS).grade == "C"
    assert rollup(outcomes[:1], THRESHOLDS).grade == "A"


def test_empty_area_is_not_assessed_with_zero_coverage():
    result = rollup([], THRESHOLDS)
    assert (result.grade, result.coverage, result.qualified_share, result.parcel_count) == ("not_assessed", 0, 0, 0)


def test_holding_back_lists_largest_first_capped_at_fifty_with_the_total_count():
    outcomes = [ParcelOutcome(f"P{i:03d}", i, "not_qualified") for i in range(1, 121)]
    outcomes.append(ParcelOutcome("TIE", 120, "indeterminate"))
    outcomes.append(ParcelOutcome("UNGRADED", 500, None))  # not assessed: not holding the area back
    result = rollup(outcomes, THRESHOLDS)
    assert result.holding_back[:3] == ("P120", "TIE", "P119")
    assert (len(result.holding_back), result.holding_back_count) == (50, 121)


def test_float_areas_are_taken_at_their_printed_value():
    result = rollup([ParcelOutcome("A", 0.1, "qualified"), ParcelOutcome("B", 0.2, "qualified")], THRESHOLDS)
    assert result.total_area_m2 == Decimal("0.3")


@pytest.mark.parametrize("bad", [-1, "lots", float("nan")])
def test_bad_area_is_a_422_problem_naming_the_parcel(bad):
    with pytest.raises(Problem) as exc:
        rollup([ParcelOutcome("BAD1", bad, "qualified")], THRESHOLDS)
    assert (exc.value.status, exc.value.code) == (422, "validation_failed")
    assert "BAD1" in exc.value.details["fields"]["area_m2"][0]


def test_thresholds_can_come_from_a_rule_pack_or_defaults():
    outcomes = area("96", "4")
    assert rollup(outcomes, load_pack("green_food_soil")).grade == "A"
    assert rollup(outcomes).grade == "A"
    assert rollup(outcomes, {"A": "0.99", "B": "0.5"}).grade == "B"


def test_incremental_apply_adds_changes_and_removes_a_parcel():
    old = ParcelOutcome("P", 100, None)
    new = ParcelOutcome("P", 100, "qualified")
    sums = RollupSums().apply(None, ParcelOutcome("Q", 5, "not_qualified")).apply(None, old)
    assert grade_from_sums(sums, THRESHOLDS) == "not_assessed"  # 5 of 105 m² assessed: never C
    sums = sums.apply(old, new)
    assert (sums.graded_area, sums.qualified_area, sums.qualified_count) == (105, 100, 1)
    assert grade_from_sums(sums, THRESHOLDS) == "A"
    sums = sums.apply(new, None)
    assert (sums.total_area, sums.parcel_count, sums.qualified_count) == (5, 1, 0)


def test_area_grade_from_sums_matches_rollup():
    outcomes = area("90", "10")
    sums = RollupSums()
    for o in outcomes:
        sums = sums.apply(None, o)
    full = rollup(outcomes, THRESHOLDS).to_dict()
    from_sums = AreaGrade.from_sums(sums, THRESHOLDS, holding_back=("X",)).to_dict()
    assert from_sums == full
    assert full["qualified"] is False and full["thresholds"] == {"A": "0.95", "B": "0.80"}


# --- sums carrying float error (the console's grouped live roll-up) ---------------------------------

def test_clear_of_thresholds_sends_knife_edges_to_the_exact_path():

    tol = 1e-6
    on_a = RollupSums(total_area=D("1000"), graded_area=D("1000"), qualified_area=D("950"),
                      parcel_count=10, graded_count=10, qualified_count=9)
    assert grade_from_sums(on_a) == "A"  # exactly 95 %: A, but a float sum a hair short would say B
    assert not clear_of_thresholds(on_a, None, tol)
    assert clear_of_thresholds(replace(on_a, qualified_area=D("950.01")), None, tol)
    assert not clear_of_thresholds(replace(on_a, qualified_area=D("949.9999")), None, tol)  # within 1e-6 × total
    assert not clear_of_thresholds(replace(on_a, qualified_area=D("800")), None, tol)  # exactly B's 80 %
    on_coverage = replace(on_a, graded_area=D("600"), qualified_area=D("300"))  # exactly the 60 % needed
    assert not clear_of_thresholds(on_coverage, None, tol)
    assert clear_of_thresholds(replace(on_coverage, graded_area=D("601")), None, tol)
    nothing = RollupSums(total_area=D("1000"), parcel_count=10)
    assert clear_of_thresholds(nothing, None, tol) and grade_from_sums(nothing) == "not_assessed"


def test_float_sums_clear_of_thresholds_grade_as_the_exact_sums():
    """Random areas: wherever float sums clear the thresholds, their grade is the exact Decimals' grade."""
    import random

    from fieldsvc.grading.rules import to_decimal

    rng = random.Random(16)
    checked = 0
    for _ in range(300):
        areas = [rng.choice((0.1, 0.2, 0.3, 1 / 3, rng.uniform(1, 5000))) for _ in range(rng.randint(1, 400))]
        verdicts = [rng.choice(("qualified", "qualified", "qualified", "not_qualified", None)) for _ in areas]
        exact = RollupSums(
            total_area=sum((to_decimal(a) for a in areas), D(0)),
            graded_area=sum((to_decimal(a) for a, v in zip(areas, verdicts, strict=True) if v), D(0)),
            qualified_area=sum((to_decimal(a) for a, v in zip(areas, verdicts, strict=True) if v == "qualified"),
                               D(0)),
            parcel_count=len(areas), graded_count=sum(1 for v in verdicts if v),
            qualified_count=sum(1 for v in verdicts if v == "qualified"))
        floats = replace(exact, total_area=to_decimal(sum(areas)),
                         graded_area=to_decimal(sum(a for a, v in zip(areas, verdicts, strict=True) if v)),
                         qualified_area=to_decimal(sum(a for a, v in zip(areas, verdicts, strict=True)
                                                       if v == "qualified")))
        if clear_of_thresholds(floats, None, 1e-6):
            checked += 1
            assert grade_from_sums(floats) == grade_from_sums(exact)
    assert checked > 250
