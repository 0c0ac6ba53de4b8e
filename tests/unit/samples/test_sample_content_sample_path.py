"""The validated-sample shortcuts (content hash text, stored data text) must equal the general path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.audit.services import canonical_json as audit_json
from fieldsvc.samples import content
from fieldsvc.samples import services as samples

from .test_sample_content_fast import reference

texts = st.none() | st.text(max_size=8) | st.sampled_from(["é中", "\u2028", '"\\'])
numbers = st.none() | st.integers(min_value=-(10**32), max_value=10**32) | st.floats() | st.sampled_from(
    [20.0, -0.0, 1e16, 1e-05, 0.1, True])
odd = st.booleans() | st.lists(st.integers(), max_size=2) | st.text(max_size=2)
locations = st.none() | odd | st.fixed_dictionaries(
    {"lat": numbers, "lon": numbers, "accuracy_m": numbers, "mock": st.none() | st.booleans() | st.integers()},
    optional={"raw": st.dictionaries(st.text(max_size=3), numbers | texts, max_size=3), "extra": texts})
media = st.none() | st.just([]) | st.just(()) | st.lists(st.fixed_dictionaries({"sha256": st.text(max_size=4)}),
                                                          min_size=1, max_size=2)
samples_ = st.fixed_dictionaries({
    "code": texts | odd, "parcel": texts, "collected_at": texts, "location": locations, "depth_top_cm": numbers,
    "depth_bottom_cm": numbers | odd, "sample_type": texts, "land_use_observed": texts, "note": texts,
    "media": media})


def general(data):
    try:
        return reference(data)
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(samples_)
def test_sample_hash_text_equals_its_definition(data):
    try:
        fast = content.canonical_json(data)
    except (TypeError, ValueError) as exc:
        fast = type(exc)
    assert fast == general(data)


_stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | texts
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: "e-0" not in repr(f)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_canonical_json_is_the_sorted_compact_form_the_standard_library_writes(value):
    """orjson writes it; the form is the standard library's sort_keys/compact/non-ASCII JSON (the
    two spell a small float's exponent differently: ``1e-7`` against ``1e-07``, left out here)."""
    assert audit_json(value) == _stdlib(value)
    assert json.loads(audit_json(value)) == value


@pytest.mark.parametrize("value, text", [
    ({"b": 1, "a": [1e-07, None]}, '{"a":[1e-7,null],"b":1}'),
    ({"n": 2**70, "a": 1}, '{"a":1,"n":1180591620717411303424}'),  # beyond orjson: the stdlib writes it
    ({"t": datetime(2026, 11, 20, 0, 30, tzinfo=UTC)}, '{"t":"2026-11-20 00:30:00+00:00"}'),
    ({"d": Decimal("1.50"), 1: True}, '{"1":true,"d":"1.50"}'),
])
def test_canonical_json_of_values_json_has_no_type_for(value, text):
    assert audit_json(value) == text


finite = st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=4)


def _as_phones_send(fix):
    """A fix whose raw values are the very objects validation kept (the common case)."""
    raw = {key: fix[key] for key in ("lat", "lon", "accuracy_m", "mock")}
    return {**fix, "raw": raw}


fixes = st.fixed_dictionaries({"lat": st.floats(-90, 90) | st.integers(-90, 90), "lon": st.floats(-180, 180),
                               "accuracy_m": st.none() | st.floats(0, 1000) | st.integers(0, 50),
                               "mock": st.booleans() | st.none(),
                               "raw": st.dictionaries(st.text(max_size=3), finite, max_size=4)})


@settings(max_examples=400, deadline=None)
@given(st.none() | fixes | fixes.map(_as_phones_send))
def test_new_row_writes_the_stored_raw_fix_and_data_text_once_for_both(location):
    from fieldsvc.auth.principal import SYSTEM

    clean = {"code": "B-1", "parcel": "P-1", "collected_at": "2026-11-20T08:30:00+08:00", "location": location,
             "depth_top_cm": 0, "depth_bottom_cm": 20, "sample_type": "composite", "land_use_observed": None,
             "note": "n", "media": []}
    now = datetime(2026, 11, 24, tzinfo=UTC)
    row = samples.new_row("id-1", clean, now, samples.Derivation([], "complete", "360000", None), 1, None, now,
                          SYSTEM, "h")
    assert row["data_json"] == audit_json(samples.row_data(row))
    stored = row["location_raw_json"]  # what the location_raw column holds on SQLite
    assert stored == ("null" if location is None else audit_json(location["raw"] or {}))
    assert json.loads(stored) == (None if location is None else location["raw"])


def test_new_row_of_a_sample_with_extra_answers_carries_them_and_their_version():
    from fieldsvc.auth.principal import SYSTEM

    clean = {"code": "A1", "parcel": "P1", "collected_at": "2026-11-20T08:30:00+08:00", "land_use_observed": None,
             "note": None, "sample_type": "composite", "depth_top_cm": 0, "depth_bottom_cm": 20, "media": [],
             "location": {"lat": 28.1, "lon": 115.6, "accuracy_m": 4.5, "mock": False, "raw": {}},
             "extra": {"crop": "rice", "plants": 12}, "extension_version": 3}
    d = samples.Derivation([], "complete", "360129", None)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    row = samples.new_row("id-1", clean, now, d, 1, None, now, SYSTEM, "x" * 64)
    assert row["data_json"] == audit_json(samples.row_data(row))
    assert '"extension_version":3' in row["data_json"] and '"extra":{"crop":"rice","plants":12}' in row["data_json"]
    plain = samples.new_row("id-2", {k: v for k, v in clean.items() if k not in ("extra", "extension_version")},
                            now, d, 2, None, now, SYSTEM, "x" * 64)
    assert "extra" not in plain["data_json"] and plain["extra"] is None  # no answers: the content it always had
