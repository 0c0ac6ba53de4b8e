"""The validated-sample shortcuts (content hash text, stored data text) must equal the general path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.audit.services import canonical_json as audit_json
from fieldsvc.samples import content
from fieldsvc.samples import services as samples

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
        plain = content._plain_form(data, True)
        return content._dumps(plain) if plain is not content._NO else content._mapping(data, ())
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(samples_)
def test_sample_hash_text_equals_the_general_path(data):
    try:
        fast = content.canonical_json(data)
    except (TypeError, ValueError) as exc:
        fast = type(exc)
    assert fast == general(data)


@settings(max_examples=600, deadline=None)
@given(texts, texts, texts, texts, texts, texts, numbers, numbers, numbers, numbers, numbers,
       st.none() | st.booleans(), st.none() | st.dictionaries(st.text(max_size=3), numbers | texts, max_size=3),
       media)
def test_row_text_equals_canonical_json_of_row_data(code, raw_time, land_use, note, parcel, kind, top, bottom,
                                                    accuracy, lat, lon, mock, raw, manifest):
    row = {"code": code, "collected_at_raw": raw_time, "land_use_observed": land_use, "note": note,
           "parcel_code": parcel, "sample_type": kind, "depth_top_cm": top, "depth_bottom_cm": bottom,
           "accuracy_m": accuracy, "lat": lat, "lon": lon, "mock_location": mock, "location_raw": raw,
           "media": manifest}
    assert samples._row_text(row) == audit_json(samples.row_data(row))
