"""Rule-pack estimation parameters as validated data, and the STANDARDS.md §8 fixes."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.grading import rules
from fieldsvc.grading.estimation import EstimationParams
from fieldsvc.grading.grade import Measurement, SampleInput, classify_fertility, grade_parcel
from fieldsvc.grading.rules import RulePack, RulePackError, load_pack, validate_pack

GREEN = load_pack("green_food_soil")
CLEAN = {"Cd": "0.1", "Hg": "0.1", "As": "5", "Pb": "10", "Cr": "30", "Cu": "10"}


def _sample(ph="6.0", unit="mg/kg", **values):
    ms = {"pH": Measurement("pH", "=", Decimal(ph), None, "")}
    for a, v in values.items():
        ms[a] = Measurement(a, "=", Decimal(v), None, "cmol(+)/kg" if a == "CEC" else unit)
    return SampleInput("s1", "BAG-s1", ms)


def _data(pack=GREEN):
    return copy.deepcopy(dict(pack.data))


def test_the_default_pack_states_its_estimation_parameters():
    p = GREEN.estimation
    assert (p.search_radius_m, p.min_neighbours, p.z, p.min_coverage, p.min_samples_for_kriging) == \
        (1500.0, 3, 1.645, 0.6, 30)
    assert p.group("vegetable") == p.group("orchard") == "dryland" and p.group("paddy_dryland_rotation") == "paddy"
    assert "Cd" in p.log_normal and p.samples_per_ha == 0.05 and p.density_verified is False
    assert EstimationParams.from_data(None) == EstimationParams()


@pytest.mark.parametrize("patch, problem", [
    ({"search_radius_m": 0}, "estimation.search_radius_m"),
    ({"min_neighbours": 1}, "estimation.min_neighbours"),
    ({"min_neighbours": 9, "max_neighbours": 4}, "must not exceed max_neighbours"),
    ({"z": "high"}, "estimation.z"),
    ({"min_coverage": 1.5}, "estimation.min_coverage"),
    ({"min_samples_for_kriging": 2.5}, "estimation.min_samples_for_kriging"),
    ({"land_use_groups": {"a": ["paddy"], "b": ["paddy"]}}, "'paddy' is in both"),
    ({"variogram_model": "cubic"}, "estimation.variogram_model"),
    ({"sample_density": {"samples_per_ha": 0.05}}, "estimation.sample_density.verified"),
    ({"radius": 5}, "estimation.radius: unknown parameter"),
])
def test_bad_estimation_parameters_are_refused_naming_the_field(patch, problem):
    data = _data()
    data["estimation"] = {**data["estimation"], **patch}
    problems = validate_pack(data)
    assert any(problem in p for p in problems), problems
    with pytest.raises(RulePackError):
        RulePack.from_data(data)


@pytest.mark.parametrize("cec, cls", [("15", "II"), ("18", "II"), ("20", "II"), ("20.1", "I"), ("14.9", "III")])
def test_orchard_cec_grade_one_is_above_20(cec, cls):
    got = classify_fertility("orchard", [_sample(CEC=cec)], load_pack("nyt391_fertility"))
    cec_row = next(r for r in got.explanation if r["analyte"] == "CEC")
    assert cec_row["class"] == cls and cec_row["band"].startswith("garden")


def test_orchard_cec_class_from_the_table():
    pack = load_pack("nyt391_fertility")
    table = pack.data["indicators"]["CEC"]["columns"]["garden"]
    assert table == {">20": "I", ">=15,<=20": "II", "<15": "III"}


def test_the_disputed_paddy_cu_cell_is_noted_when_it_decides():
    decides = grade_parcel("paddy", [_sample(ph="6.0", **{**CLEAN, "Cu": "55"})], GREEN)
    assert decides.verdict == "not_qualified"
    cu = next(r for r in decides.explanation if r["analyte"] == "Cu")
    assert cu["limit"] == "50" and "60" in cu["disputed"] and "STANDARDS.md 8.2" in cu["disputed"]
    clear = grade_parcel("paddy", [_sample(ph="6.0", **{**CLEAN, "Cu": "65"})], GREEN)
    assert "disputed" not in next(r for r in clear.explanation if r["analyte"] == "Cu")  # fails under either
    below = grade_parcel("paddy", [_sample(ph="6.0", **{**CLEAN, "Cu": "45"})], GREEN)
    assert "disputed" not in next(r for r in below.explanation if r["analyte"] == "Cu")
    dry = grade_parcel("dryland", [_sample(ph="6.0", **{**CLEAN, "Cu": "55"})], GREEN)
    assert "disputed" not in next(r for r in dry.explanation if r["analyte"] == "Cu")  # not that cell


def test_a_disputed_cell_must_name_a_real_cell_with_its_value():
    data = _data()
    data["disputed_cells"] = [{**data["disputed_cells"][0], "value": 60}]
    assert any("is not the pack's 50" in p for p in validate_pack(data))
    data["disputed_cells"] = [{**data["disputed_cells"][0], "value": 50, "band": "<6.0"}]
    assert any("name no cell" in p for p in validate_pack(data))


def test_nemerow_rounding_is_stated_and_applied():
    data = _data()
    del data["nemerow_round_to"]
    assert any(p.startswith("nemerow_round_to: state") for p in validate_pack(data))
    # Cd at index 0.97167, others tiny: P = 0.97167·sqrt(37/72) = 0.6966, just below 0.7 unrounded
    values = {**CLEAN, "Cd": "0.2915", "Hg": "0.0001", "As": "0.0001", "Pb": "0.0001", "Cr": "0.0001", "Cu": "0.0001"}
    exact = grade_parcel("dryland", [_sample(**values)], GREEN)
    assert exact.grade == "clean" and Decimal(exact.to_dict()["nemerow"]) < Decimal("0.7")
    study = _data()
    study["nemerow_round_to"] = 2
    study["nemerow_classes"] = {"<0.7": "clean", ">=0.7,<=1.0": "still_clean", ">1.0": "polluted"}
    study["version"] = "test.1"
    rounded = grade_parcel("dryland", [_sample(**values)], RulePack.from_data(study))
    assert rounded.grade == "still_clean" and rounded.to_dict()["nemerow"] == "0.70"


def test_nyt_1054_2021_is_named():
    assert "NY/T 1054-2021" in GREEN.edition


def test_rule_packs_add_validates_versions_and_never_replaces(tmp_path, monkeypatch):
    monkeypatch.setattr(rules, "_ADDED_DIRS", [])
    store = tmp_path / "rule_packs"
    rev = _data()
    rev["version"] = "2021.9"
    rev["estimation"] = {**rev["estimation"], "search_radius_m": 800}
    src = tmp_path / "rev.json"
    src.write_text(json.dumps(rev, default=float), encoding="utf-8")
    added = rules.add_pack(src, store)
    assert (added.code, added.version) == ("green_food_soil", "2021.9")
    assert load_pack("green_food_soil", "2021.9").estimation.search_radius_m == 800
    assert load_pack("green_food_soil", "2021.1").estimation.search_radius_m == 1500  # kept
    with pytest.raises(Problem) as again:
        rules.add_pack(src, store)
    assert again.value.code == "rule_pack_version_exists"
    stored = _data()  # the built-in version: refused too
    src2 = tmp_path / "same.json"
    src2.write_text(json.dumps(stored, default=float), encoding="utf-8")
    with pytest.raises(Problem):
        rules.add_pack(src2, store)
    bad = dict(rev, version="2021.10", estimation={"min_neighbours": 1})
    src3 = tmp_path / "bad.json"
    src3.write_text(json.dumps(bad, default=float), encoding="utf-8")
    with pytest.raises(RulePackError) as err:
        rules.add_pack(src3, store)
    assert any("estimation.min_neighbours" in p for p in err.value.problems)
    assert sorted(p.name for p in store.iterdir()) == ["green_food_soil-2021.9.json"]
