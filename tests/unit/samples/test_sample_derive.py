"""``derive`` skips the location check for a point inside its parcel only when that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.samples.services import ParcelInfo, derive
from fieldsvc.samples.validation import SampleRules, validate_sample_data

SQUARE = {"type": "Polygon", "coordinates": [[[115.6, 28.1], [115.61, 28.1], [115.61, 28.11], [115.6, 28.11],
                                              [115.6, 28.1]]]}
PARCEL = ParcelInfo("P-1", "360000", SQUARE, False, True)
NOW = datetime(2026, 11, 24, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(st.floats(28.099, 28.111), st.floats(115.599, 115.611), st.none() | st.floats(0, 100) | st.just(30),
       st.booleans(), st.sampled_from([SampleRules(), SampleRules(low_accuracy_m=5, location_buffer_m=0),
                                       SampleRules(location_buffer_m=-1)]))
def test_the_shortcut_gives_what_the_full_check_gives(lat, lon, accuracy, mock, rules):
    data = {"code": "B-1", "parcel": "P-1", "collected_at": "2026-11-20T08:30:00+08:00",
            "location": {"lat": lat, "lon": lon, "accuracy_m": accuracy, "mock": mock}, "depth_top_cm": 0,
            "depth_bottom_cm": 20, "sample_type": "composite"}
    checked = validate_sample_data(data, rules)
    assert checked.ok
    args = (checked.clean, checked.collected_at_utc, checked.flags, PARCEL, 0.0, NOW, 60, set(), None, rules)
    assert derive(*args, fix_flagged=True) == derive(*args)
