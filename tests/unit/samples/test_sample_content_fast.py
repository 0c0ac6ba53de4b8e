"""The content hash's canonical text equals its definition, written the slow, obvious way here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

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
    """The canonical form written the slow, obvious way (the definition the module's writer must meet)."""
    return _mapping(data, ())


def _encode(value, path):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return content.canonical_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, Mapping):
        return _mapping(value, path)
    if isinstance(value, list | tuple):
        items = [_encode(item, (*path, "[]")) for item in value]
        if path in {(name,) for name in content.UNORDERED_LISTS}:
            items.sort()
        return "[" + ",".join(items) + "]"
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def _mapping(value, path):
    dropped = content.SERVER_MADE if not path else content.DERIVED_NESTED
    if not all(isinstance(key, str) for key in value):
        raise TypeError("object keys must be strings")
    return "{" + ",".join(json.dumps(key, ensure_ascii=True) + ":" + _encode(value[key], (*path, key))
                          for key in sorted(value) if key not in dropped) + "}"


@settings(max_examples=400, deadline=None)
@given(records)
def test_canonical_json_equals_its_definition(data):
    assert content.canonical_json(data) == reference(data)


def test_numbers_that_differ_between_spellings_have_one_text():
    data = {"a": 20.0, "b": -0.0, "c": 1e16, "d": 0.0001, "e": 1e-05, "f": 10**31, "g": 123.4500,
            "media": [{"sha256": "bb", "bytes": 2.0}, {"sha256": "aa", "bytes": 1}], "location": {"raw": {"x": 1}}}
    assert content.canonical_json(data) == reference(data)
    assert content.canonical_json(data).startswith('{"a":20,"b":0,"c":10000000000000000,"d":0.0001,"e":0.00001,')


@settings(max_examples=200, deadline=None)
@given(values)
def test_canonical_field_equals_its_definition(value):
    for name in ("media", "location", "note"):
        assert content.canonical_field(name, value) == _encode(value, (name,))


# Content of plain JSON values is written by orjson, anything else by the module's own writer: both
# must meet the definition, including where orjson's spelling differs (non-ASCII text, DEL, floats
# with an exponent or an integral value, integers beyond 64 bits, an unordered list of several items).
tricky_text = st.text(alphabet=st.sampled_from("a\x7f\x00\n\"\\é水😀\u2028"), max_size=6)
tricky_scalars = scalars | tricky_text | st.integers(min_value=-(10**22), max_value=10**22) | st.sampled_from(
    [0.0, -0.0, 20.0, 1e16, 4.285508906242846e16, 9999999999999998.0, 9007199254740994.0, 1e-4, 1e-5, 1e300,
     2.0**63, Decimal("1.50")])
tricky_values = st.recursive(tricky_scalars, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                             | st.dictionaries(st.sampled_from(["raw", "lat", "é", "😀", "b"]) | tricky_text, inner,
                                               max_size=4), max_leaves=12)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from(["code", "media", "location", "note", "id", "raw", "水"]) | tricky_text,
                       tricky_values, max_size=8))
def test_canonical_json_of_any_json_value_equals_its_definition(data):
    assert content.canonical_json(data) == reference(data)


def test_a_media_manifest_of_several_files_is_sorted_by_its_canonical_text():
    data = {"media": [{"name": "z.jpg", "sha256": "b"}, {"name": "é.jpg", "sha256": "a"},
                      {"name": "a\x7f", "bytes": 2.0}]}
    assert content.canonical_json(data) == reference(data)
    assert content.canonical_json(data).startswith('{"media":[{"bytes":2,"name":"a\\u007f"},{"name":"\\u00e9.jpg"')
