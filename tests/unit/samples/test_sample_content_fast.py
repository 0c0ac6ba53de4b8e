"""The fast canonical form (plain JSON values through the C encoder) must equal the reference walk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.samples import content

scalars = st.none() | st.booleans() | st.integers(min_value=-(10**35), max_value=10**35) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=12)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["raw", "lat", "lon", "name", "sha256", "media", "id", "ä", "b"]), inner, max_size=4),
    max_leaves=12)
records = st.dictionaries(st.sampled_from(["code", "media", "location", "note", "id", "state", "flags", "raw",
                                           "depth_top_cm", "版本"]), values, max_size=8)


def reference(data):
    return content._mapping(data, ())


@settings(max_examples=400, deadline=None)
@given(records)
def test_fast_canonical_json_equals_the_reference_walk(data):
    assert content.canonical_json(data) == reference(data)


def test_fast_path_covers_the_numbers_that_differ_between_spellings():
    data = {"a": 20.0, "b": -0.0, "c": 1e16, "d": 0.0001, "e": 1e-05, "f": 10**31, "g": 123.4500,
            "media": [{"sha256": "bb", "bytes": 2.0}, {"sha256": "aa", "bytes": 1}], "location": {"raw": {"x": 1}}}
    assert content.canonical_json(data) == reference(data)
    assert content.canonical_json(data).startswith('{"a":20,"b":0,"c":10000000000000000,"d":0.0001,"e":0.00001,')
