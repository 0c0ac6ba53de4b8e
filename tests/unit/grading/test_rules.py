"""Rule packs: every shipped pack loads, and a broken pack is refused with a message naming where."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.grading.rules import (
    PACKS_DIR,
    RulePack,
    RulePackError,
    coverage_problems,
    list_packs,
    load_pack,
    parse_band,
    read_pack_file,
    validate_pack,
)

PACK_CODES = [
    "green_food_soil", "gb15618_2018", "nyt391_fertility", "dzt0295_micronutrients", "dzt0380_se_rich",
]


def raw(code: str) -> dict:
    return json.loads((PACKS_DIR / f"{code}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("code", PACK_CODES)
def test_every_shipped_pack_is_valid_and_loads(code):
    assert validate_pack(raw(code)) == []
    pack = load_pack(code)
    assert pack.code == code
    assert pack.source and all(url.startswith("http") for url in pack.source)


@pytest.mark.parametrize(
    ("code", "verified", "confidence"),
    [
        ("green_food_soil", False, "UNCONFIRMED"),
        ("gb15618_2018", True, "A"),
        ("nyt391_fertility", False, "UNCONFIRMED"),
        ("dzt0295_micronutrients", False, "C"),
        ("dzt0380_se_rich", False, "C"),
    ],
)
def test_only_values_marked_a_in_standards_are_verified(code, verified, confidence):
    pack = load_pack(code)
    assert (pack.verified, pack.confidence) == (verified, confidence)
    assert pack.to_summary()["verified"] is verified


def test_list_packs_returns_each_pack_with_a_summary_for_the_api():
    summaries = [p.to_summary() for p in list_packs()]
    assert sorted(s["code"] for s in summaries) == sorted(PACK_CODES)
    assert [s["code"] for s in summaries if s["default"]] == ["green_food_soil"]
    assert {"code", "version", "standard", "edition", "source", "verified", "kind"} <= set(summaries[0])


def test_loading_is_cached_and_version_can_be_named():
    pack = load_pack("green_food_soil")
    assert load_pack("green_food_soil", pack.version) is pack


@pytest.mark.parametrize(("code", "version"), [("no_such_pack", None), ("green_food_soil", "1999.9")])
def test_unknown_pack_or_version_is_a_404_problem(code, version):
    with pytest.raises(Problem) as exc:
        load_pack(code, version)
    assert (exc.value.status, exc.value.code) == (404, "not_found")


@pytest.mark.parametrize(
    ("expr", "inside", "outside"),
    [
        ("<6.5", ["6.49", "-3"], ["6.5", "7"]),
        ("<=5.5", ["5.5"], ["5.51"]),
        (">=6.5,<=7.5", ["6.5", "7.5"], ["6.49", "7.51"]),
        (">5.5,<=6.5", ["5.51", "6.5"], ["5.5", "6.51"]),
        (">7.5", ["7.51"], ["7.5"]),
        ("*", ["-100", "0", "100"], []),
    ],
)
def test_band_expressions_state_which_side_of_each_edge_is_included(expr, inside, outside):
    band = parse_band(expr)
    assert all(band.contains(Decimal(x)) for x in inside)
    assert not any(band.contains(Decimal(x)) for x in outside)


@pytest.mark.parametrize("expr", ["", "6.5", "=<6.5", "<a", ">7,>8", "<5,<6", ">7.5,<6.5", ">1,<1"])
def test_malformed_band_expression_is_refused(expr):
    with pytest.raises(ValueError):
        parse_band(expr)


@pytest.mark.parametrize(
    ("exprs", "message"),
    [
        (["<6.5", ">=6.5,<=7.5", ">7.5"], None),
        (["<=5.5", ">5.5,<=6.5", ">6.5,<=7.5", ">7.5"], None),
        (["<6.5", ">6.5,<=7.5", ">7.5"], "gap at pH 6.5"),
        (["<=6.5", ">=6.5,<=7.5", ">7.5"], "overlap at pH 6.5"),
        (["<6", ">=6.5"], "gap between"),
        (["<7", ">=6.5"], "overlap"),
        ([">=6.5"], "nothing covers pH below 6.5"),
        (["<6.5"], "nothing covers pH above 6.5"),
    ],
)
def test_coverage_finds_gaps_and_overlaps_at_boundaries(exprs, message):
    problems = coverage_problems([parse_band(e) for e in exprs])
    if message is None:
        assert problems == []
    else:
        assert any(message in p for p in problems), problems


def _break(data: dict, path: list, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("code", "path", "value", "where"),
    [
        ("green_food_soil", ["limits", "Cd", "dryland"], {"<6.5": 0.3, ">6.5,<=7.5": 0.3, ">7.5": 0.4},
         "limits.Cd.dryland: gap at pH 6.5"),
        ("green_food_soil", ["limits", "Hg", "paddy"], {"<=6.5": 0.3, ">=6.5,<=7.5": 0.4, ">7.5": 0.4},
         "limits.Hg.paddy: '<=6.5' and '>=6.5,<=7.5' overlap at pH 6.5"),
        ("green_food_soil", ["limits", "As", "paddy"], _DELETE,
         "limits.As: missing column 'paddy' (needed by land use paddy, paddy_dryland_rotation, sediment)"),
        ("green_food_soil", ["limits", "Pb", "dryland", "<6.5"], -50, "limits.Pb.dryland['<6.5']"),
        ("green_food_soil", ["limits", "Pb", "dryland", "<6.5"], "lots", "limits.Pb.dryland['<6.5']"),
        ("green_food_soil", ["nemerow_classes"],
         {"<=0.7": "still_clean", ">0.7,<=1.0": "clean", ">1.0": "polluted"},
         "nemerow_classes: classes are out of order"),
        ("green_food_soil", ["rollup"], {"A": 0.7, "B": 0.8}, "rollup: need 0 <= B"),
        ("green_food_soil", ["land_uses", "tea"], _DELETE, "land_uses: no entry for 'tea'"),
        ("green_food_soil", ["verified"], True, "verified: only values checked"),
        ("green_food_soil", ["source"], [], "source:"),
        ("gb15618_2018", ["screening", "Ni", "all"], {"<=5.5": 60, ">5.5,<=6.5": 70, ">6.5,<=7.5": 100},
         "screening.Ni.all: nothing covers pH above 7.5"),
        ("gb15618_2018", ["intervention", "Cd", "all", ">7.5"], 0.5, "intervention.Cd.all: below screening"),
        ("nyt391_fertility", ["indicators", "OM", "columns", "garden"],
         {">15": "I", ">=15,<=20": "II", "<15": "III"},
         "indicators.OM.columns.garden: '>=15,<=20' and '>15' overlap"),
        ("nyt391_fertility", ["indicators", "AP", "columns", "dryland"],
         {">10": "I", ">=5,<=10": "III", "<5": "II"},
         "indicators.AP.columns.dryland: classes are out of order"),
        ("dzt0380_se_rich", ["se_max"], 0.2, "se_max: must be above every se_min"),
    ],
)
def test_broken_pack_is_refused_with_a_message_naming_where(code, path, value, where):
    broken = _break(raw(code), path, value)
    problems = validate_pack(broken)
    assert any(where in p for p in problems), problems
    with pytest.raises(RulePackError) as exc:
        RulePack.from_data(broken)
    assert (exc.value.status, exc.value.code) == (500, "invalid_rule_pack")
    assert any(where in p for p in exc.value.details["problems"])


def test_every_problem_is_listed_not_only_the_first():
    broken = _break(raw("green_food_soil"), ["limits", "Cd", "dryland"], {"<6.5": 0.3, ">7.5": 0.4})
    broken = _break(broken, ["limits", "Cu", "paddy"], _DELETE)
    problems = validate_pack(broken)
    assert any("limits.Cd.dryland" in p for p in problems)
    assert any("limits.Cu: missing column 'paddy'" in p for p in problems)


def test_pack_file_with_duplicate_keys_is_refused(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"code": "x", "code": "y"}', encoding="utf-8")
    with pytest.raises(RulePackError, match="duplicate keys"):
        read_pack_file(path)


@pytest.mark.parametrize(
    ("land_use", "ph", "cd_limit", "cu_limit"),
    [
        ("dryland", "6.49", "0.30", "50"),
        ("dryland", "6.5", "0.30", "60"),
        ("dryland", "7.5", "0.30", "60"),
        ("dryland", "7.51", "0.40", "60"),
        ("orchard", "6.49", "0.30", "100"),
        ("orchard", "7.51", "0.40", "120"),
        ("sediment", "7.51", "0.40", "60"),
    ],
)
def test_compiled_ph_table_matches_the_pack_at_every_edge(land_use, ph, cd_limit, cu_limit):
    table = load_pack("green_food_soil").ph_table(land_use)
    row = table.row_for(Decimal(ph))
    cd, cu = row[table.analytes.index("Cd")], row[table.analytes.index("Cu")]
    assert (cd[0], cu[0]) == (Decimal(cd_limit), Decimal(cu_limit))
