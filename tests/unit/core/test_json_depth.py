"""The JSON depth bound found before parsing (``fieldsvc.http.json_depth_exceeds``) against the
depth of what the standard parser builds, on valid text whose strings hold brackets, quotes and
escapes (the scan must skip every string, escaped quotes included)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.http import json_depth_exceeds

tricky = st.sampled_from(['[', ']', '{', '}', '"', '\\', '\\"', '"]', '[{"', 'é中']) | st.text(max_size=4)
strings = st.lists(tricky, max_size=4).map("".join)
values = st.recursive(st.none() | st.integers() | strings,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
                      max_leaves=40)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(values, st.integers(min_value=0, max_value=12))
def test_depth_scan_agrees_with_the_parser(value, limit):
    text = json.dumps(value, ensure_ascii=bool(limit % 2)).encode()
    assert json_depth_exceeds(text, limit) == (depth(value) > limit)


def test_deep_nesting_inside_a_string_does_not_count():
    text = json.dumps({"note": "[" * 100 + '\\"' + "{" * 100, "a": [[1]]}).encode()
    assert not json_depth_exceeds(text, 3)
    assert json_depth_exceeds(text, 1)
