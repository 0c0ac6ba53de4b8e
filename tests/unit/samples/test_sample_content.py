from __future__ import annotations

import json
import re
from collections import OrderedDict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.samples.content import canonical_json, canonical_number, content_hash, same_content

DATA = {
    "code": "HN-0001",
    "parcel": "P-01",
    "collected_at": "2024-05-01T08:30:00+08:00",
    "location": {"lat": 28.123, "lon": 112.987, "accuracy_m": 5, "mock": False},
    "depth_top_cm": 0,
    "depth_bottom_cm": 20,
    "sample_type": "composite",
    "note": "近水渠",
    "media": [
        {"name": "a.jpg", "sha256": "aa" * 32, "bytes": 10, "mime": "image/jpeg"},
        {"name": "b.jpg", "sha256": "bb" * 32, "bytes": 20, "mime": "image/jpeg"},
    ],
}


def with_(**changes):
    return {**DATA, **changes}


def test_hash_is_sha256_hex():
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash(DATA))


def test_hash_is_stable_across_key_order():
    reordered = OrderedDict(reversed(list(DATA.items())))
    reordered["location"] = dict(reversed(list(DATA["location"].items())))
    assert content_hash(reordered) == content_hash(DATA)


def test_hash_survives_a_json_round_trip_with_any_spacing():
    for text in (json.dumps(DATA), json.dumps(DATA, indent=4, ensure_ascii=False)):
        assert content_hash(json.loads(text)) == content_hash(DATA)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (20, 20.0),
        (20, Decimal("20.000")),
        (Decimal("2E+1"), 20),
        (0, -0.0),
        (0.1, Decimal("0.10")),
        (28.123, Decimal("28.1230")),
        (-5, Decimal("-5.0")),
    ],
)
def test_numbers_compare_by_value_whatever_their_spelling(a, b):
    assert content_hash(with_(depth_bottom_cm=a)) == content_hash(with_(depth_bottom_cm=b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (20, "20"),  # a string is not a number
        (1, True),  # nor is a boolean
        (0, None),
        (0, False),
        (20, 20.000001),
        (Decimal("1.0000000000000000000000000000001"), 1),  # no rounding to 28 digits
        ("a", "A"),
        ([], None),
    ],
)
def test_different_values_give_different_hashes(a, b):
    assert content_hash(with_(depth_bottom_cm=a)) != content_hash(with_(depth_bottom_cm=b))


@pytest.mark.parametrize(
    "server_made",
    [
        {"id": "0d5c…"},
        {"version": 7},
        {"state": "complete"},
        {"flags": ["low_accuracy"]},
        {"received_at": "2024-05-03T12:00:00Z"},
        {"clock_skew_s": -259200.0},
        {"collected_at_corrected": "2024-05-03T09:00:00Z"},
    ],
)
def test_server_made_fields_never_enter_the_hash(server_made):
    assert content_hash({**DATA, **server_made}) == content_hash(DATA)


def test_raw_location_values_never_enter_the_hash():
    spelled = with_(location={**DATA["location"], "raw": {"lat": "28,123", "lon": "112.987"}})
    assert content_hash(spelled) == content_hash(DATA)


def test_a_top_level_field_named_raw_is_content():
    assert content_hash(with_(raw="x")) != content_hash(DATA)


def test_media_order_does_not_count_but_its_entries_do():
    swapped = with_(media=list(reversed(DATA["media"])))
    renamed = with_(media=[{**DATA["media"][0], "name": "c.jpg"}, DATA["media"][1]])
    assert content_hash(swapped) == content_hash(DATA)
    assert content_hash(renamed) != content_hash(DATA)


def test_order_of_other_lists_counts():
    assert content_hash(with_(note=["a", "b"])) != content_hash(with_(note=["b", "a"]))


def test_same_content_matches_the_hash():
    assert same_content(DATA, with_(depth_bottom_cm=20.0, version=3))
    assert not same_content(DATA, with_(depth_bottom_cm=21))


def test_canonical_json_is_compact_sorted_ascii():
    assert (
        canonical_json({"b": 1.50, "a": "é", "c": [True, None]}) == '{"a":"\\u00e9","b":1.5,"c":[true,null]}'
    )


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1, "1"),
        (1.0, "1"),
        (Decimal("1.00"), "1"),
        (100, "100"),
        (Decimal("1E+2"), "100"),
        (0.1, "0.1"),
        (Decimal("-0.050"), "-0.05"),
        (10**40, "1e40"),
        (1e-40, "1e-40"),
        (Decimal("-0"), "0"),
    ],
)
def test_canonical_number_spelling(number, text):
    assert canonical_number(number) == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_non_finite_numbers_have_no_hash(bad):
    with pytest.raises(ValueError):
        content_hash(with_(depth_top_cm=bad))


@pytest.mark.parametrize("bad", [{1: "x"}, {"when": object()}, {"s": {1, 2}}])
def test_values_json_cannot_carry_are_refused(bad):
    with pytest.raises(TypeError):
        content_hash(bad)


def test_content_must_be_a_mapping():
    with pytest.raises(TypeError):
        content_hash([1, 2])  # type: ignore[arg-type]


finite_numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(finite_numbers)
def test_a_number_and_its_decimal_spelling_always_hash_alike(number):
    spelled = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    assert content_hash({"x": number}) == content_hash({"x": spelled})
    assert content_hash({"x": number}) == content_hash(json.loads(json.dumps({"x": number})))
