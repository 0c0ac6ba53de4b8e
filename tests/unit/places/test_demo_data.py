from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely

from fieldsvc.places import demo_data, geometry
from fieldsvc.places.demo_data import CROP_NAMES_EN, CROPS, LAND_USE_WEIGHTS, generate_county, sample_points
from fieldsvc.places.geometry import area_m2, centroid, check_geometries, check_geometry, point_in_geometry


@pytest.fixture(scope="module")
def timed_county() -> tuple[demo_data.DemoCounty, float]:
    start = time.perf_counter()
    county = generate_county()
    return county, time.perf_counter() - start


@pytest.fixture(scope="module")
def county(timed_county) -> demo_data.DemoCounty:
    return timed_county[0]


def by_level(county: demo_data.DemoCounty, level: str) -> list[dict]:
    return [r for r in county.regions if r["level"] == level]


def shapes(features: list[dict]) -> np.ndarray:
    return np.array([geometry.to_shape(f["geometry"]) for f in features])


# --- the full-size county -----------------------------------------------------------------------


def test_full_county_is_generated_in_under_five_seconds(timed_county) -> None:
    assert timed_county[1] < 5.0


def test_full_county_has_the_size_of_a_real_pilot(county) -> None:
    assert county.summary() | {"land_use": None} == {
        "county": "360129", "townships": 12, "villages": 391, "farm_parks": 5, "parcels": 20_000,
        "parcels_in_farm_parks": county.summary()["parcels_in_farm_parks"],
        "parcels_with_area": county.summary()["parcels_with_area"], "land_use": None,
    }
    assert len(by_level(county, "county")) == 1


def test_region_codes_follow_the_division_code_pattern(county) -> None:
    codes = {r["code"]: r for r in county.regions}
    assert len(codes) == len(county.regions)
    (root,) = by_level(county, "county")
    assert re.fullmatch(r"\d{6}", root["code"]) and root["parent"] is None
    for town in by_level(county, "township"):
        assert re.fullmatch(rf"{root['code']}[12]\d\d", town["code"])
        assert town["parent"] == root["code"]
        assert town["name"][-1] == ("镇" if town["code"][6] == "1" else "乡")
        assert town["name_en"].endswith(" Town" if town["code"][6] == "1" else " Township")
    for village in by_level(county, "village"):
        assert re.fullmatch(rf"{village['parent']}2\d\d", village["code"])
        assert codes[village["parent"]]["level"] == "township"
        assert village["name"].endswith("村") and village["name_en"].endswith(" Village")


def test_townships_are_numbered_from_100_for_towns_and_200_for_rural_townships(county) -> None:
    suffixes = sorted(int(t["code"][6:]) for t in by_level(county, "township"))
    towns = [s for s in suffixes if s < 200]
    rural = [s for s in suffixes if s >= 200]
    assert towns == list(range(100, 100 + len(towns)))
    assert rural == list(range(200, 200 + len(rural)))
    assert towns and rural


def test_names_are_chinese_with_toneless_pinyin(county) -> None:
    for region in county.regions:
        assert re.fullmatch(r"[\u4e00-\u9fff]{3,}", region["name"])
        assert re.fullmatch(r"[A-Z][a-z']+( [A-Z][a-z]+)+", region["name_en"])
    village_names = [v["name"] for v in by_level(county, "village")]
    assert len(set(village_names)) == len(village_names)


def test_pinyin_separates_syllables_that_start_with_a_vowel() -> None:
    assert demo_data._pinyin(["shi", "ao"]) == "Shi'ao"
    assert demo_data._pinyin(["shang", "li"]) == "Shangli"


def test_parcel_codes_are_unique_and_derived_from_their_village(county) -> None:
    codes = [f["properties"]["code"] for f in county.parcels]
    assert len(set(codes)) == len(codes)
    for feature in county.parcels:
        props = feature["properties"]
        assert re.fullmatch(rf"{props['village']}-\d{{4}}", props["code"])


def test_every_village_has_parcels_and_every_parcel_a_village(county) -> None:
    villages = {v["code"] for v in by_level(county, "village")}
    used = Counter(f["properties"]["village"] for f in county.parcels)
    assert set(used) == villages
    assert min(used.values()) >= 10


def test_every_parcel_geometry_passes_the_batch_checker(county) -> None:
    results = check_geometries([f["geometry"] for f in county.parcels])
    assert [errors for _, errors in results if errors] == []


def test_parcels_do_not_overlap(county) -> None:
    polys = shapes(county.parcels)
    left, right = shapely.STRtree(polys).query(polys, predicate="intersects")
    assert np.array_equal(left, right)  # each parcel meets only itself


def test_parcels_are_between_a_tenth_of_a_hectare_and_two_hectares(county) -> None:
    areas = geometry.areas_m2([f["geometry"] for f in county.parcels])
    assert 1_000.0 <= min(areas) and max(areas) <= 20_000.0
    assert 3_000.0 <= sum(areas) / len(areas) <= 9_000.0


def test_about_seventy_percent_of_parcels_carry_their_true_area(county) -> None:
    with_area = [f for f in county.parcels if "area_m2" in f["properties"]]
    assert 0.67 <= len(with_area) / len(county.parcels) <= 0.73
    for feature in with_area[:500]:
        assert feature["properties"]["area_m2"] == pytest.approx(area_m2(feature["geometry"]), abs=0.006)


def test_parcels_lie_in_southern_china(county) -> None:
    lons, lats = zip(*(centroid(f["geometry"]) for f in county.parcels[::50]), strict=True)
    assert 115.0 < min(lons) and max(lons) < 116.5
    assert 28.0 < min(lats) and max(lats) < 29.0


@pytest.mark.parametrize(("land_use", "share"), [(u, w / 100) for u, w in LAND_USE_WEIGHTS.items()])
def test_land_uses_are_weighted_like_a_southern_county(county, land_use: str, share: float) -> None:
    counts = Counter(f["properties"]["land_use"] for f in county.parcels)
    assert counts[land_use] / len(county.parcels) == pytest.approx(share, abs=0.03)


def test_crops_fit_the_land_use(county) -> None:
    for feature in county.parcels:
        props = feature["properties"]
        assert props["crop"] in {c for c, _ in CROPS[props["land_use"]]}
    assert set(CROP_NAMES_EN) == {c for crops in CROPS.values() for c, _ in crops}


def test_parcel_properties_are_the_import_contract(county) -> None:
    allowed = {"code", "village", "land_use", "farm_park", "crop", "area_m2"}
    for feature in county.parcels:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
        assert {"code", "village", "land_use", "crop"} <= set(feature["properties"]) <= allowed


# --- farm parks -----------------------------------------------------------------------------------


def test_five_farm_parks_with_valid_polygons(county) -> None:
    parks = county.farm_parks
    assert len({p["code"] for p in parks}) == 5
    for park in parks:
        assert park["county"] == county.county
        assert park["name"].startswith("青禾县") and park["name_en"].startswith("Qinghe ")
        assert check_geometry(park["geometry"]) == (park["geometry"], [])


def test_parks_contain_their_parcels_whole_and_no_others(county) -> None:
    parcels = shapes(county.parcels)
    members = np.array([f["properties"].get("farm_park") for f in county.parcels])
    for park in county.farm_parks:
        outline = geometry.to_shape(park["geometry"])
        mine = members == park["code"]
        assert mine.any()
        assert shapely.covers(outline, parcels[mine]).all()
        assert not shapely.covers(outline, shapely.centroid(parcels[~mine])).any()
        for feature in np.array(county.parcels)[mine][::5]:
            assert point_in_geometry(*centroid(feature["geometry"]), park["geometry"])


def test_each_park_spans_two_villages_and_favours_its_specialty(county) -> None:
    for park, (_, _, specialty) in zip(county.farm_parks, demo_data.PARKS, strict=True):
        props = (f["properties"] for f in county.parcels)
        members = [p for p in props if p.get("farm_park") == park["code"]]
        assert len({m["village"] for m in members}) == 2
        assert sum(m["land_use"] == specialty for m in members) / len(members) > 0.6


# --- determinism and smaller counties -------------------------------------------------------------


def test_same_seed_gives_identical_output() -> None:
    assert generate_county(7, 1_500) == generate_county(7, 1_500)


def test_full_county_is_identical_when_generated_again(county) -> None:
    assert generate_county() == county


DIGEST = (
    "import hashlib, json; from fieldsvc.places.demo_data import generate_county, sample_points; "
    "c = generate_county(3, 1000); "
    "print(hashlib.sha256(json.dumps([c.regions, c.farm_parks, c.parcels, [p.__dict__ for p in "
    "sample_points(c, 30)]], ensure_ascii=False).encode()).hexdigest())"
)


def test_output_does_not_depend_on_the_process_hash_seed() -> None:
    root = Path(__file__).resolve().parents[3]
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        run = subprocess.run([sys.executable, "-c", DIGEST], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    county = generate_county(3, 1000)
    points = [p.__dict__ for p in sample_points(county, 30)]
    here = json.dumps([county.regions, county.farm_parks, county.parcels, points], ensure_ascii=False)
    assert digests == {hashlib.sha256(here.encode()).hexdigest()}


def test_different_seeds_give_different_counties() -> None:
    a, b = generate_county(7, 1_500), generate_county(8, 1_500)
    assert a.parcels != b.parcels
    assert a.regions != b.regions


@pytest.mark.parametrize(("seed", "parcels"), [(1, 391), (2, 400), (3, 2_000), (4, 5_000)])
def test_smaller_counties_keep_every_invariant(seed: int, parcels: int) -> None:
    county = generate_county(seed, parcels)
    assert county.summary()["parcels"] == parcels
    assert len({f["properties"]["village"] for f in county.parcels}) == 391
    assert all(not errors for _, errors in check_geometries([f["geometry"] for f in county.parcels]))
    members = Counter(f["properties"].get("farm_park") for f in county.parcels)
    assert all(members[p["code"]] >= 1 for p in county.farm_parks)


@pytest.mark.parametrize(("parcels", "villages", "townships"), [(390, 391, 12), (100, 9, 3), (500, 50, 0)])
def test_impossible_sizes_are_refused(parcels: int, villages: int, townships: int) -> None:
    with pytest.raises(ValueError):
        generate_county(1, parcels, villages=villages, townships=townships)


def test_township_and_village_counts_can_be_chosen() -> None:
    summary = generate_county(5, 600, townships=4, villages=40).summary()
    assert (summary["townships"], summary["villages"], summary["parcels"]) == (4, 40, 600)


# --- sample points --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_county() -> demo_data.DemoCounty:
    return generate_county(11, 800)


@pytest.mark.parametrize("n", [1, 50, 800, 1_200])
def test_sample_points_fall_inside_their_parcels(small_county, n: int) -> None:
    parcels = {f["properties"]["code"]: f["geometry"] for f in small_county.parcels}
    points = sample_points(small_county, n, seed=3)
    assert len(points) == n
    for p in points:
        assert point_in_geometry(p.lon, p.lat, parcels[p.parcel])
        assert geometry.distance_to_geometry_m(p.lon, p.lat, parcels[p.parcel]) == 0.0
        assert 2.0 <= p.accuracy_m <= 60.0
    if n <= len(parcels):
        assert len({p.parcel for p in points}) == n


def test_sample_points_are_deterministic_and_seeded(small_county) -> None:
    assert sample_points(small_county, 20, seed=4) == sample_points(small_county, 20, seed=4)
    assert sample_points(small_county, 20, seed=4) != sample_points(small_county, 20, seed=5)


def test_sample_accuracy_looks_like_phones_in_open_fields(small_county) -> None:
    accuracies = sorted(p.accuracy_m for p in sample_points(small_county, 800, seed=6))
    assert 3.0 <= accuracies[len(accuracies) // 2] <= 8.0


# --- purity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [demo_data, geometry])
def test_module_imports_no_web_or_database_layer(module) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"flask", "flask_sqlalchemy", "sqlalchemy"}
