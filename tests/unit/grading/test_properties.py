"""Properties of the engine and roll-up over random inputs (hypothesis, bounded examples)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.grading.grade import Measurement, SampleInput, classify_gb15618, grade_parcel
from fieldsvc.grading.rollup import ParcelOutcome, RollupSums, grade_from_sums, rollup
from fieldsvc.grading.rules import LAND_USES, load_pack

GREEN = load_pack("green_food_soil")
GB = load_pack("gb15618_2018")
METALS = ("Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn")
TYPICAL = {"Cd": "0.3", "Hg": "0.3", "As": "20", "Pb": "50", "Cr": "120", "Cu": "60", "Ni": "70", "Zn": "200"}
FAST = settings(max_examples=60, deadline=None)

ratio = st.decimals(min_value="0", max_value="3", places=3)
ph = st.one_of(st.none(), st.decimals(min_value="4", max_value="9", places=1))


@st.composite
def measurement(draw, analyte: str) -> Measurement:
    scale = Decimal(TYPICAL[analyte])
    kind = draw(st.sampled_from(["=", "=", "=", "<", "missing", "odd"]))
    if kind == "=":
        return Measurement(analyte, "=", draw(ratio) * scale, None, "mg/kg")
    if kind == "<":
        return Measurement(analyte, "<", None, draw(ratio) * scale + Decimal("0.001"), "mg/kg")
    if kind == "odd":
        return draw(st.sampled_from([
            Measurement(analyte, "=", Decimal("-1"), None, "mg/kg"),
            Measurement(analyte, "=", None, None, "mg/kg"),
            Measurement(analyte, "<", None, None, "mg/kg"),
            Measurement(analyte, "=", Decimal("1"), None, "g/kg"),
            Measurement(analyte, "~", Decimal("1"), None, "mg/kg"),
        ]))
    return None


@st.composite
def sample(draw, sid: str) -> SampleInput:
    ms = {}
    p = draw(ph)
    if p is not None:
        ms["pH"] = Measurement("pH", "=", p, None, "")
    for analyte in METALS:
        m = draw(measurement(analyte))
        if m is not None:
            ms[analyte] = m
    return SampleInput(sid, f"BAG-{sid}", ms)


@st.composite
def parcel(draw, clean: bool = False):
    n = draw(st.integers(min_value=1, max_value=3))
    samples = [draw(sample(f"s{i}")) for i in range(n)]
    if clean:  # every value measured and every sample with a pH
        samples = [SampleInput(s.sample_id, s.sample_code, {
            **{a: Measurement(a, "=", draw(ratio) * Decimal(TYPICAL[a]), None, "mg/kg") for a in METALS},
            "pH": Measurement("pH", "=", draw(st.decimals(min_value="4", max_value="9", places=1)), None, ""),
        }) for s in samples]
    return draw(st.sampled_from(LAND_USES)), samples


VERDICT_RANK = {"qualified": 0, "indeterminate": 1, "not_qualified": 2}
GRADE_RANK = {"clean": 0, "still_clean": 1, "polluted": 2, None: 1}
GB_RANK = {"priority_protection": 0, "safe_use": 1, "strict_control": 2}


def _raise(samples, k: int, analyte: str, factor: Decimal) -> list[SampleInput]:
    s = samples[k]
    m = s.measurements[analyte]
    raised = Measurement(analyte, "=", m.value * factor + Decimal("0.001"), None, "mg/kg")
    return [*samples[:k], SampleInput(s.sample_id, s.sample_code, {**s.measurements, analyte: raised}),
            *samples[k + 1:]]


@FAST
@given(parcel(clean=True), st.data())
def test_raising_any_concentration_never_improves_a_grade(lu_samples, data):
    land_use, samples = lu_samples
    k = data.draw(st.integers(min_value=0, max_value=len(samples) - 1))
    analyte = data.draw(st.sampled_from(METALS))
    factor = data.draw(st.decimals(min_value="1", max_value="5", places=2))
    higher = _raise(samples, k, analyte, factor)
    before, after = grade_parcel(land_use, samples, GREEN), grade_parcel(land_use, higher, GREEN)
    assert VERDICT_RANK[after.verdict] >= VERDICT_RANK[before.verdict]
    if before.verdict == after.verdict == "qualified":
        assert GRADE_RANK[after.grade] >= GRADE_RANK[before.grade]
        assert after.nemerow >= before.nemerow
    gb_before, gb_after = classify_gb15618(land_use, samples, GB), classify_gb15618(land_use, higher, GB)
    assert GB_RANK[gb_after.grade] >= GB_RANK[gb_before.grade]


@FAST
@given(parcel(), st.randoms(use_true_random=False))
def test_results_and_fingerprint_do_not_depend_on_sample_order(lu_samples, rnd):
    land_use, samples = lu_samples
    shuffled = list(samples)
    rnd.shuffle(shuffled)
    for grader, pack in ((grade_parcel, GREEN), (classify_gb15618, GB)):
        assert grader(land_use, samples, pack).to_dict() == grader(land_use, shuffled, pack).to_dict()


@FAST
@given(parcel())
def test_verdict_agrees_with_the_explanation_rules(lu_samples):
    """Each analyte's row is the row its named sample gives graded alone, and that sample is the
    worst: the highest state, then the highest index (the rule judged once per result)."""
    land_use, samples = lu_samples
    result = grade_parcel(land_use, samples, GREEN)
    alone = {s.sample_id: grade_parcel(land_use, [s], GREEN).explanation for s in samples}
    rank = {"pass": 0, "indeterminate": 1, "exceeds": 2}
    for i, r in enumerate(result.explanation):
        assert r == alone[r["sample_id"]][i]
        observed = [rows[i] for rows in alone.values()]
        worst_state = max(rank[o["verdict"]] for o in observed)
        assert rank[r["verdict"]] == worst_state
        if worst_state != 1:
            assert r["index"] is not None
            assert all(Decimal(o["index"]) <= Decimal(r["index"]) for o in observed
                       if rank[o["verdict"]] == worst_state)
    assert (result.verdict == "qualified") == all(r["verdict"] == "pass" for r in result.explanation)
    assert result.limiting == tuple(r["analyte"] for r in result.explanation if r["verdict"] != "pass")


areas = st.decimals(min_value="0", max_value="100000", places=2)
verdicts = st.sampled_from(["qualified", "qualified", "not_qualified", "indeterminate", None])
outcome = st.builds(ParcelOutcome, code=st.sampled_from([f"P{i}" for i in range(12)]), area_m2=areas,
                    verdict=verdicts, strict_control=st.booleans())
change = st.tuples(outcome, st.booleans())  # (the parcel's new outcome, whether it is removed instead)


@FAST
@given(st.lists(st.tuples(areas.filter(lambda a: a > 0), st.text(min_size=1, max_size=4)),
                min_size=1, max_size=30))
def test_rollup_of_all_qualified_parcels_is_a(parcels):
    result = rollup([ParcelOutcome(code, a, "qualified") for a, code in parcels])
    assert (result.grade, result.qualified_share, result.coverage, result.holding_back) == ("A", 1, 1, ())


@FAST
@given(st.lists(change, max_size=40))
def test_incremental_sums_equal_the_full_rollup(changes):
    current: dict[str, ParcelOutcome] = {}
    sums = RollupSums()
    for new, removed in changes:
        old = current.pop(new.code, None)
        if removed:
            new = None
        else:
            current[new.code] = new
        sums = sums.apply(old, new)
    full = rollup(current.values())
    assert grade_from_sums(sums) == full.grade
    assert (sums.total_area, sums.graded_area, sums.qualified_area) == (
        full.total_area_m2, full.graded_area_m2, full.qualified_area_m2)
    assert (sums.parcel_count, sums.qualified_count, sums.strict_count) == (
        full.parcel_count, full.qualified_count, sum(o.strict_control for o in current.values()))
