from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsvc.errors import Problem
from fieldsvc.samples.validation import (
    FIELDS,
    SampleRules,
    location_flags,
    order_flags,
    parse_number,
    validate_sample_data,
)

RULES = SampleRules()
SHA = "ab" * 32


def sample(**changes):
    data = {
        "code": "HN-0001",
        "parcel": "430121101001-P01",
        "collected_at": "2024-05-01T08:30:00+08:00",
        "location": {"lat": 28.123, "lon": 112.987, "accuracy_m": 4.5, "mock": False},
        "depth_top_cm": 0,
        "depth_bottom_cm": 20,
        "sample_type": "composite",
        "land_use_observed": "paddy",
        "note": "near the canal",
        "media": [{"name": "photo1.jpg", "sha256": SHA, "bytes": 123456, "mime": "image/jpeg"}],
    }
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


_DROP = object()


def located(**location):
    base = {"lat": 28.123, "lon": 112.987, "accuracy_m": 4.5, "mock": False}
    base.update(location)
    return sample(location={k: v for k, v in base.items() if v is not _DROP})


def test_a_good_sample_is_clean_and_unflagged():
    result = validate_sample_data(sample(), RULES)
    assert result.ok and result.errors == {}
    assert result.flags == []
    assert list(result.clean) == list(FIELDS)
    assert result.clean["location"] == {
        "lat": 28.123,
        "lon": 112.987,
        "accuracy_m": 4.5,
        "mock": False,
        "raw": {"lat": 28.123, "lon": 112.987, "accuracy_m": 4.5, "mock": False},
    }
    assert (
        result.collected_at_utc is not None
        and result.collected_at_utc.isoformat() == "2024-05-01T00:30:00+00:00"
    )


# ------------------------------------------------------------------ location parsing


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        ("28,123", "112,987", (28.123, 112.987)),
        ("28.123", "112.987", (28.123, 112.987)),
        (" 28.5 ", "+112", (28.5, 112.0)),
        ("２８，５", "１１２．５", (28.5, 112.5)),  # full-width input from a Chinese keyboard
        (28, 112, (28.0, 112.0)),
        (Decimal("28.10"), Decimal("112"), (28.1, 112.0)),
        (90, 180, (90.0, 180.0)),
        (-90, -180, (-90.0, -180.0)),
        ("-90", "-180.0", (-90.0, -180.0)),
        (".5", ",5", (0.5, 0.5)),
    ],
)
def test_location_accepts_numbers_and_numeric_strings_inclusive_of_range_edges(lat, lon, expected):
    result = validate_sample_data(located(lat=lat, lon=lon), RULES)
    assert result.errors == {}
    assert (result.clean["location"]["lat"], result.clean["location"]["lon"]) == expected
    assert result.clean["location"]["raw"]["lat"] == lat  # raw kept verbatim
    assert result.clean["location"]["raw"]["lon"] == lon


@pytest.mark.parametrize(
    ("lat", "lon", "bad_field"),
    [
        (90.0000001, 112, "location.lat"),
        (-90.5, 112, "location.lat"),
        (28, 180.0001, "location.lon"),
        (28, -181, "location.lon"),
        (float("nan"), 112, "location.lat"),
        (28, float("inf"), "location.lon"),
        (28, float("-inf"), "location.lon"),
        ("NaN", 112, "location.lat"),
        ("inf", 112, "location.lat"),
        ("", 112, "location.lat"),
        ("   ", 112, "location.lat"),
        (None, 112, "location.lat"),
        (28, None, "location.lon"),
        (True, 112, "location.lat"),
        (28, False, "location.lon"),
        ("28.1.2", 112, "location.lat"),
        ("1,234.5", 112, "location.lat"),
        ("2.8e1", 112, "location.lat"),
        ("28,", 112, "location.lat"),
        ("0x1c", 112, "location.lat"),
        ("28°", 112, "location.lat"),
        ([28], 112, "location.lat"),
        ({"v": 28}, 112, "location.lat"),
        (10**400, 112, "location.lat"),
    ],
)
def test_location_rejects_out_of_range_and_non_numbers(lat, lon, bad_field):
    result = validate_sample_data(located(lat=lat, lon=lon), RULES)
    assert not result.ok
    assert bad_field in result.errors
    assert set(result.errors) == {bad_field}
    assert "null_island" not in result.flags


@pytest.mark.parametrize(("lat", "lon"), [(112.987, 28.123), ("-112,9", "28,1")])
def test_location_swapped_lat_lon_is_an_error_that_says_so(lat, lon):
    result = validate_sample_data(located(lat=lat, lon=lon), RULES)
    assert any("swapped" in message for message in result.errors["location.lat"])
    assert result.clean["location"]["lat"] is None  # never silently swapped back


def test_location_out_of_range_without_a_plausible_swap_does_not_claim_one():
    result = validate_sample_data(located(lat=95, lon=120), RULES)
    assert not any("swapped" in message for message in result.errors["location.lat"])


def test_location_raw_keeps_nan_as_text_so_it_can_be_stored_as_json():
    result = validate_sample_data(located(lat=float("nan")), RULES)
    raw = result.clean["location"]["raw"]
    assert raw["lat"] == "nan"
    json.dumps(raw, allow_nan=False)


@pytest.mark.parametrize(
    ("location", "bad_field"),
    [
        ("28.1 112.9", "location"),
        ([28.1, 112.9], "location"),
        ({"lat": 28.1, "lon": 112.9, "alt": 50}, "location.alt"),
        ({"lon": 112.9}, "location.lat"),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": -1}, "location.accuracy_m"),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": "abc"}, "location.accuracy_m"),
        ({"lat": 28.1, "lon": 112.9, "mock": "yes"}, "location.mock"),
        ({"lat": 28.1, "lon": 112.9, "mock": 1}, "location.mock"),
    ],
)
def test_location_shape_errors_use_dotted_field_names(location, bad_field):
    result = validate_sample_data(sample(location=location), RULES)
    assert set(result.errors) == {bad_field}


# ------------------------------------------------------------------ location flags


@pytest.mark.parametrize(
    ("location", "flags"),
    [
        ({"lat": 0, "lon": 0, "accuracy_m": 5}, ["null_island"]),
        ({"lat": "0,0", "lon": "0", "accuracy_m": 5}, ["null_island"]),
        ({"lat": 0, "lon": 112.9, "accuracy_m": 5}, []),
        ({"lat": 28.1, "lon": 0, "accuracy_m": 5}, []),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": 30}, []),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": 30.0001}, ["low_accuracy"]),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": 3000}, ["low_accuracy"]),
        ({"lat": 28.1, "lon": 112.9}, ["low_accuracy"]),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": 0, "mock": True}, ["mock_location"]),
        ({"lat": 28.1, "lon": 112.9, "accuracy_m": 50, "mock": True}, ["low_accuracy", "mock_location"]),
        ({"lat": 0, "lon": 0, "accuracy_m": 0, "mock": True}, ["null_island", "mock_location"]),
    ],
)
def test_suspicious_locations_are_flagged_not_rejected(location, flags):
    result = validate_sample_data(sample(location=location), RULES)
    assert result.errors == {}
    assert result.flags == flags


def test_mock_flag_is_kept_in_clean_and_raw():
    result = validate_sample_data(located(accuracy_m=0, mock=True), RULES)
    assert result.clean["location"]["mock"] is True
    assert result.clean["location"]["raw"]["mock"] is True
    assert result.clean["location"]["accuracy_m"] == 0


def test_low_accuracy_threshold_comes_from_the_rules():
    strict = SampleRules(low_accuracy_m=5)
    assert validate_sample_data(located(accuracy_m=6), strict).flags == ["low_accuracy"]
    assert validate_sample_data(located(accuracy_m=6), RULES).flags == []


@pytest.mark.parametrize(
    ("accuracy", "distance", "mismatch"),
    [
        (10, 0, False),  # inside the parcel
        (10, 30, False),  # exactly accuracy + buffer (10 + 20)
        (10, 30.000001, True),
        (12.3, 32.3, False),  # exact in decimal, not in binary floats
        (12.3, Decimal("32.31"), True),
        (0, 20, False),
        (0, 21, True),
        (None, 20, False),  # unknown accuracy counts as 0 m
        (None, 20.5, True),
        (10, None, False),  # parcel shape unknown: nothing to judge
    ],
)
def test_location_mismatch_only_beyond_accuracy_plus_buffer(accuracy, distance, mismatch):
    flags = location_flags(28.1, 112.9, accuracy, distance, RULES)
    assert ("location_mismatch" in flags) is mismatch


@pytest.mark.parametrize(
    ("flags", "ordered"),
    [
        (["clock_skew", "null_island", "clock_skew"], ["null_island", "clock_skew"]),
        (
            ["location_mismatch", "mock_location", "low_accuracy"],
            ["low_accuracy", "mock_location", "location_mismatch"],
        ),
        (["zz_custom", "clock_skew", "aa_custom"], ["clock_skew", "aa_custom", "zz_custom"]),
    ],
)
def test_flags_combine_in_one_fixed_order_without_repeats(flags, ordered):
    assert order_flags(flags) == ordered


def test_location_flags_are_empty_without_a_fix():
    assert location_flags(None, 112.9, None, 5000, RULES) == []


# ------------------------------------------------------------------ other fields


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (" hn-0001 ", "HN-0001"),
        ("ＨＮ－０００１", "HN-0001"),
        ("hn.2024/17_a", "HN.2024/17_A"),
        ("\u3000HN1\u3000", "HN1"),
    ],
)
def test_code_is_stripped_nfkc_normalised_and_upper_cased(raw, code):
    result = validate_sample_data(sample(code=raw), RULES)
    assert result.errors == {}
    assert result.clean["code"] == code


@pytest.mark.parametrize(
    "code", ["", "   ", "HN 0001", "-HN", "HN\x000001", "HN#1", "X" * 65, 12345, "采样1"]
)
def test_code_that_is_not_a_barcode_is_rejected(code):
    result = validate_sample_data(sample(code=code), RULES)
    assert set(result.errors) == {"code"}


@pytest.mark.parametrize(
    ("top", "bottom", "bad_field"),
    [
        (0, 0, "depth_bottom_cm"),
        (20, 10, "depth_bottom_cm"),
        (-1, 20, "depth_top_cm"),
        (0, 300.5, "depth_bottom_cm"),
        ("abc", 20, "depth_top_cm"),
        (True, 20, "depth_top_cm"),
        (0, None, "depth_bottom_cm"),
    ],
)
def test_depths_must_be_in_range_and_top_above_bottom(top, bottom, bad_field):
    result = validate_sample_data(sample(depth_top_cm=top, depth_bottom_cm=bottom), RULES)
    assert set(result.errors) == {bad_field}


@pytest.mark.parametrize(
    ("top", "bottom", "clean"),
    [(0, 300, (0, 300)), ("0", "20,5", (0, 20.5)), (10.0, 20.0, (10, 20)), ("299,9", "300", (299.9, 300))],
)
def test_depths_are_normalised_to_plain_numbers(top, bottom, clean):
    result = validate_sample_data(sample(depth_top_cm=top, depth_bottom_cm=bottom), RULES)
    assert result.errors == {}
    got = (result.clean["depth_top_cm"], result.clean["depth_bottom_cm"])
    assert got == clean
    assert [type(v) for v in got] == [type(v) for v in clean]


@pytest.mark.parametrize(
    ("field", "value", "ok", "clean"),
    [
        ("sample_type", " Composite ", True, "composite"),
        ("sample_type", "profile", True, "profile"),
        ("sample_type", "rock", False, None),
        ("land_use_observed", "PADDY", True, "paddy"),
        ("land_use_observed", "paddy_dryland_rotation", True, "paddy_dryland_rotation"),
        ("land_use_observed", "forest", False, None),
        ("land_use_observed", None, True, None),
        ("note", "  ", True, None),
        ("note", "line 1\nline 2\t", True, "line 1\nline 2"),
        ("note", "x" * 2000, True, "x" * 2000),
        ("note", "x" * 2001, False, None),
        ("note", "bell\x07", False, None),
        ("note", "lone \ud800 surrogate", False, None),
        ("note", 42, False, None),
        ("parcel", " P-01 ", True, "P-01"),
        ("parcel", "", False, None),
        ("parcel", "P 01", False, None),
    ],
)
def test_text_and_choice_fields(field, value, ok, clean):
    result = validate_sample_data(sample(**{field: value}), RULES)
    assert result.ok is ok
    assert result.clean[field] == clean
    if not ok:
        assert set(result.errors) == {field}


@pytest.mark.parametrize(
    "field", ["code", "parcel", "collected_at", "location", "depth_top_cm", "sample_type"]
)
def test_required_fields_missing_or_null_are_named(field):
    for data in (sample(**{field: _DROP}), sample(**{field: None})):
        result = validate_sample_data(data, RULES)
        assert "Is required." in result.errors[field]


def test_optional_fields_may_be_left_out():
    result = validate_sample_data(sample(land_use_observed=_DROP, note=_DROP, media=_DROP), RULES)
    assert result.errors == {}
    assert result.clean["media"] == [] and result.clean["note"] is None


def test_location_may_be_optional_by_rule():
    result = validate_sample_data(sample(location=_DROP), SampleRules(require_location=False))
    assert result.errors == {} and result.clean["location"] is None and result.flags == []


def test_unknown_fields_are_each_named():
    result = validate_sample_data(sample(version=3, colour="red"), RULES)
    assert result.errors == {"version": ["Unknown field."], "colour": ["Unknown field."]}


@pytest.mark.parametrize("data", [None, [], "sample", 3, True])
def test_data_that_is_not_an_object_is_one_error(data):
    result = validate_sample_data(data, RULES)
    assert result.errors == {"data": ["Must be an object."]}


def test_problem_is_a_422_listing_the_fields():
    problem = validate_sample_data(sample(code="", location=located(lat=100)["location"]), RULES).problem()
    assert isinstance(problem, Problem)
    assert (problem.status, problem.code) == (422, "validation_failed")
    assert set(problem.details["fields"]) == {"code", "location.lat"}


@pytest.mark.parametrize(
    ("collected_at", "ok"),
    [
        ("2024-05-01T08:30:00Z", True),
        ("2024-05-01T08:30:00+08:00", True),
        ("2024-05-01T08:30:00", False),  # naive
        ("yesterday", False),
        (1714524600, False),
    ],
)
def test_collected_at_is_kept_raw_and_must_be_rfc3339(collected_at, ok):
    result = validate_sample_data(sample(collected_at=collected_at), RULES)
    assert result.ok is ok
    assert result.clean["collected_at"] == (collected_at if ok else None)
    assert (result.collected_at_utc is not None) is ok


# ------------------------------------------------------------------ media manifest


def media(**changes):
    item = {"name": "photo1.jpg", "sha256": SHA, "bytes": 10, "mime": "image/jpeg"}
    item.update(changes)
    return item


@pytest.mark.parametrize(
    ("manifest", "bad_field"),
    [
        ("photo.jpg", "media"),
        ([media()] * 21, "media"),
        (["photo.jpg"], "media.0"),
        ([media(sha256="ab" * 31)], "media.0.sha256"),
        ([media(sha256="zz" * 32)], "media.0.sha256"),
        ([media(bytes=0)], "media.0.bytes"),
        ([media(bytes=-5)], "media.0.bytes"),
        ([media(bytes=10.0)], "media.0.bytes"),
        ([media(bytes=True)], "media.0.bytes"),
        ([media(bytes="10")], "media.0.bytes"),
        ([media(mime="jpeg")], "media.0.mime"),
        ([media(name="")], "media.0.name"),
        ([media(name="../etc/passwd")], "media.0.name"),
        ([media(name=None)], "media.0.name"),
        ([media(), media(name="photo2.jpg", sha256=SHA.upper())], "media.1.sha256"),
        ([media(), media(name="p2.jpg", sha256="cd" * 32, exif={})], "media.1.exif"),
    ],
)
def test_media_manifest_errors_name_the_entry(manifest, bad_field):
    result = validate_sample_data(sample(media=manifest), RULES)
    assert set(result.errors) == {bad_field}


def test_media_manifest_normalises_hash_and_mime_case():
    result = validate_sample_data(sample(media=[media(sha256=SHA.upper(), mime="Image/JPEG")]), RULES)
    assert result.clean["media"] == [{"name": "photo1.jpg", "sha256": SHA, "bytes": 10, "mime": "image/jpeg"}]


def test_media_manifest_may_hold_exactly_the_maximum():
    manifest = [media(name=f"p{i}.jpg", sha256=f"{i:064x}") for i in range(20)]
    assert validate_sample_data(sample(media=manifest), RULES).errors == {}


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Decimal(1)),
        (0.1, Decimal("0.1")),
        ("0,1", Decimal("0.1")),
        ("-3", Decimal(-3)),
        ("+3.50", Decimal("3.50")),
    ],
)
def test_parse_number_is_exact(value, expected):
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    "value", [None, True, "", "1e5", "1_000", "١٢", float("nan"), Decimal("NaN"), object()]
)
def test_parse_number_refuses_anything_else_with_value_error(value):
    with pytest.raises(ValueError):
        parse_number(value)


# ------------------------------------------------------------------ fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [*FIELDS, "lat", "lon", "accuracy_m", "mock", "name", "sha256", "bytes", "mime"]
)
sample_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(field_names, children, max_size=8) | st.lists(children, max_size=3),
    max_leaves=20,
)


near_valid = st.builds(
    lambda changes, location: {**sample(), **changes, "location": location},
    st.dictionaries(field_names, json_values, max_size=4),
    sample_like,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, sample_like, near_valid))
def test_validate_sample_data_never_raises_for_any_json_value(data):
    result = validate_sample_data(data, RULES)
    assert isinstance(result.errors, dict) and isinstance(result.flags, list)
    assert all(
        isinstance(k, str) and v and all(isinstance(m, str) for m in v) for k, v in result.errors.items()
    )
    if result.ok:
        json.dumps(result.clean, allow_nan=False)  # what passes can be stored as JSON
        loc = result.clean["location"]
        assert -90 <= loc["lat"] <= 90 and -180 <= loc["lon"] <= 180
        assert not math.isnan(loc["lat"])
