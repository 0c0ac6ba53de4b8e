"""The one-pass check of the usual record gives exactly what the general path gives, or steps aside."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.samples.validation import SampleRules, _checked_sample, _fast_sample, validate_sample_data

RULES = (SampleRules(), SampleRules(), SampleRules(max_code_chars=8, max_note_chars=3),
         SampleRules(depth_min_cm=0.5), SampleRules(require_location=False, land_uses=("Paddy", "paddy")))
TYPICAL = {"code": "bag-001", "parcel": "P-1", "collected_at": "2026-11-20T08:30:00+08:00",
           "location": {"lat": 28.1, "lon": 115.6, "accuracy_m": 4.5, "mock": False}, "depth_top_cm": 0,
           "depth_bottom_cm": 20, "sample_type": "composite", "land_use_observed": "paddy", "note": None,
           "media": []}

texts = st.sampled_from(["bag-001", " BAG.2/x ", "", " ", "a b", "ｂａｇ", "é", "x\n", "x\t", "P-1", "composite",
                         " Paddy ", "TEA", "orchard", "a" * 65, "\x00", "ok note", "no"]) | st.text(max_size=6)
numbers = st.sampled_from([0, 20, 20.0, 0.5, -1, 300, 300.5, 1e308, float("nan"), float("inf"), True, "20",
                           "28,1", None, 90, 90.0000001, -180, 180.5, 4.5, 0.0, -0.0]) | st.floats() | st.integers()
stamps = st.sampled_from(["2026-11-20T08:30:00+08:00", "2026-11-20T08:30:00Z", "2026-11-20 08:30",
                          "1980-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-20T08:30:60Z", "x", 5, None])
media_items = st.fixed_dictionaries({"name": texts, "sha256": st.sampled_from(["ab" * 32, "AB" * 32, "x"]),
                                     "bytes": numbers, "mime": st.sampled_from(["image/jpeg", "IMAGE/PNG", "bad"])})
locations = st.none() | st.sampled_from([[], "28,115", {}]) | st.fixed_dictionaries(
    {}, optional={"lat": numbers, "lon": numbers, "accuracy_m": numbers, "mock": st.none() | st.booleans() | numbers,
                  "alt": numbers})
field_values = {"code": texts | numbers, "parcel": texts, "collected_at": stamps, "location": locations,
                "depth_top_cm": numbers, "depth_bottom_cm": numbers, "sample_type": texts, "land_use_observed": texts,
                "note": st.none() | texts, "media": st.none() | st.just([]) | st.lists(media_items, max_size=2) | texts}


plausible = st.floats(min_value=-90, max_value=90) | st.integers(-90, 90)
valid_values = {"code": st.sampled_from(["bag-001", " x1 ", "A/B.C-1", "b" * 9]),
                "parcel": st.sampled_from(["P-1", " P-2 ", "360121-0001"]),
                "location": st.fixed_dictionaries({"lat": plausible, "lon": plausible}, optional={
                    "accuracy_m": st.none() | st.floats(0, 100) | st.integers(0, 100),
                    "mock": st.none() | st.booleans()}),
                "depth_top_cm": st.sampled_from([0, 0.0, 5, 10.5]),
                "depth_bottom_cm": st.sampled_from([20, 20.0, 10.5]),
                "sample_type": st.sampled_from(["composite", " Topsoil "]),
                "land_use_observed": st.sampled_from([None, "paddy", " TEA "]),
                "note": st.sampled_from([None, "", " a note ", "abcd"]), "media": st.lists(media_items, max_size=1)}


@st.composite
def records(draw):
    """The typical record with some fields changed (mostly to other valid values), dropped or added."""
    data = dict(TYPICAL)
    for name in draw(st.lists(st.sampled_from([*field_values, "extra"]), max_size=4, unique=True)):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            data.pop(name, None)
        elif choice <= 3 and name in valid_values:
            data[name] = draw(valid_values[name])
        else:
            data[name] = draw(field_values.get(name, texts))
    return data


def same(a, b):
    return (repr(a.clean), a.errors, a.flags, a.collected_at_utc) == (repr(b.clean), b.errors, b.flags,
                                                                        b.collected_at_utc)


@settings(max_examples=3000, deadline=None)
@given(records(), st.sampled_from(RULES))
def test_fast_path_equals_general_path_or_steps_aside(data, rules):
    fast = _fast_sample(data, rules)
    if fast is not None:
        assert fast.ok and same(fast, _checked_sample(data, rules))


def test_the_usual_records_take_the_fast_path():
    with_media = {**TYPICAL, "media": [{"name": "a.jpg", "sha256": "ab" * 32, "bytes": 10, "mime": "image/jpeg"}]}
    for data in (TYPICAL, {**TYPICAL, "note": " field note ", "land_use_observed": None}, with_media,
                 {**TYPICAL, "location": {"lat": 28, "lon": 115}}):
        fast = _fast_sample(data, SampleRules())
        assert fast is not None and same(fast, _checked_sample(data, SampleRules()))
        assert same(validate_sample_data(data, SampleRules()), fast)
    assert _fast_sample({**TYPICAL, "code": ""}, SampleRules()) is None  # errors are the general path's
