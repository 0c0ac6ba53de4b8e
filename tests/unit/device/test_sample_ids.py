"""The device's sample ids: valid UUIDv7s that start with their time and only ever increase."""

import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline_sync import ids


def test_a_new_id_is_a_version_7_rfc_uuid_carrying_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    text = ids.new_sample_id()
    after = time.time_ns() // 1_000_000
    value = uuid.UUID(text)
    assert str(value) == text  # canonical lower-case form, as the server stores it
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_made_in_a_burst_are_distinct_and_strictly_increasing():
    made = [ids.new_sample_id() for _ in range(20_000)]  # many share a millisecond
    assert len(set(made)) == len(made)
    assert made == sorted(made)  # text order is time order: the server's index appends


@pytest.fixture(autouse=True)
def _fresh_clock():
    """Each test starts from an unset "previous id" and leaves the real one as it found it."""
    kept, ids._last = ids._last, (0, 0)
    yield
    ids._last = max(kept, ids._last)


@given(st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=2, max_size=50))
def test_ids_increase_even_when_the_clock_stands_still_or_steps_back(clock):
    ids._last = (0, 0)
    made = [ids._uuid7(unix_ms=ms) for ms in clock]
    assert all(a.int < b.int for a, b in zip(made, made[1:], strict=False))
    assert all(m.version == 7 and m.variant == uuid.RFC_4122 for m in made)


def test_the_random_part_spills_into_the_next_millisecond_only_after_2_to_the_74_ids():
    ids._last = (1000, (1 << 74) - 1)
    value = ids._uuid7(unix_ms=1000)
    assert value.int >> 80 == 1001 and value.version == 7
