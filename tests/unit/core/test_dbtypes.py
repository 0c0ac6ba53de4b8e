"""``sqlite_datetime_text`` stores exactly what SQLAlchemy's processors would (SQLite compares the text)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from fieldsvc.dbtypes import UTCDateTime, sqlite_datetime_text

_DIALECT = sqlite.dialect()
_REFERENCE = UTCDateTime().dialect_impl(_DIALECT).bind_processor(_DIALECT)
_ZONES = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=_ZONES | st.just(UTC)))
def test_same_text_as_the_type_and_dialect_processors(value):
    assert sqlite_datetime_text(value) == _REFERENCE(value)


def test_none_passes_and_naive_times_are_refused_like_the_type():
    assert sqlite_datetime_text(None) is None
    assert sqlite_datetime_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05.000000"
    with pytest.raises(ValueError, match="naive"):
        sqlite_datetime_text(datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="naive"):
        _REFERENCE(datetime(2026, 1, 2))
