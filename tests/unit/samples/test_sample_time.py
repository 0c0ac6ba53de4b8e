from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldsvc.samples.validation import (
    SampleRules,
    correct_collected_at,
    estimate_skew,
    parse_rfc3339,
    time_flags,
    validate_sample_data,
)

RULES = SampleRules()
SERVER = datetime(2024, 5, 3, 12, 0, 0, tzinfo=UTC)


def at(text):
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-05-01T08:30:00Z", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01t08:30:00z", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01 08:30:00Z", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01T08:30:00+08:00", "2024-05-01T00:30:00+00:00"),
        ("2024-05-01T08:30:00-05:30", "2024-05-01T14:00:00+00:00"),
        ("2024-05-01T08:30:00-00:00", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01T08:30:00.5Z", "2024-05-01T08:30:00.500000+00:00"),
        ("2024-05-01T08:30:00.123456789Z", "2024-05-01T08:30:00.123456+00:00"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999+00:00"),
        ("2024-01-01T00:30:00+08:00", "2023-12-31T16:30:00+00:00"),
    ],
)
def test_rfc3339_accepts_z_and_offsets_and_returns_utc(text, utc):
    parsed = parse_rfc3339(text)
    assert parsed.tzinfo is UTC
    assert parsed == at(utc)
    assert parsed.isoformat() == utc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-05-01T08:30:00", "time zone"),
        ("2024-05-01 08:30", "time zone"),
        ("2024-05-01", "RFC 3339"),
        ("1714552200", "RFC 3339"),
        ("", "RFC 3339"),
        ("garbage", "RFC 3339"),
        ("2024-05-01T08:30:00+0800", "RFC 3339"),
        ("2024-05-01T08:30Z", "RFC 3339"),
        ("２０２４-05-01T08:30:00Z", "RFC 3339"),
        ("2024-02-30T08:30:00Z", "real date"),
        ("2024-05-01T24:00:00Z", "real date"),
        ("0000-01-01T00:00:00Z", "real date"),
        ("0001-01-01T00:00:00+01:00", "real date"),
        ("2024-05-01T08:30:00+24:00", "offset"),
    ],
)
def test_rfc3339_rejects_naive_and_garbage_with_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rfc3339(text)


@pytest.mark.parametrize(
    ("device_sent_at", "skew"),
    [
        ("2024-05-03T12:00:00Z", 0.0),
        ("2024-05-03T20:00:05+08:00", 5.0),
        ("2024-04-30T12:00:00Z", -3 * 86400.0),
        ("1980-01-06T00:00:00Z", (at("1980-01-06T00:00:00+00:00") - SERVER).total_seconds()),
        (None, None),
        ("not a time", None),
        ("2024-05-03T12:00:00", None),
    ],
)
def test_skew_is_device_minus_server_or_none(device_sent_at, skew):
    assert estimate_skew(device_sent_at, SERVER) == skew


def test_skew_reads_a_naive_server_time_as_utc():
    assert estimate_skew("2024-05-03T12:00:10Z", SERVER.replace(tzinfo=None)) == 10.0


@pytest.mark.parametrize(
    ("case", "collected_at", "skew_s", "flagged"),
    [
        ("good phone", "2024-05-03T09:00:00Z", 2.0, False),
        ("skew exactly at the threshold", "2024-05-03T09:00:00Z", 600.0, False),
        ("skew exactly at minus the threshold", "2024-05-03T09:00:00Z", -600.0, False),
        ("skew just above the threshold", "2024-05-03T09:00:00Z", 600.5, True),
        ("phone three days behind", "2024-04-30T09:00:00Z", -3 * 86400.0, True),
        ("phone in 1980, skew known", "1980-01-06T00:05:00Z", -1.4e9, True),
        ("phone in 1980, clock fixed since", "1980-01-06T00:05:00Z", 1.0, True),
        ("phone in 1980, no device_sent_at", "1980-01-06T00:05:00Z", None, True),
        ("collected before 2000", "1999-12-31T23:59:59Z", None, True),
        ("collected at 2000 exactly", "2000-01-01T00:00:00Z", None, False),
        ("collected at the server time plus threshold", "2024-05-03T12:10:00Z", None, False),
        ("collected in the future", "2024-05-03T12:10:01Z", None, True),
        ("collected next year", "2025-05-03T12:00:00Z", 0.0, True),
        ("no usable time, big skew", None, 3600.0, True),
        ("no usable time, no skew", "garbage", None, False),
    ],
)
def test_clock_skew_flag(case, collected_at, skew_s, flagged):
    assert time_flags(collected_at, skew_s, SERVER, RULES) == (["clock_skew"] if flagged else []), case


def test_clock_skew_accepts_parsed_datetimes_too():
    assert time_flags(at("1980-01-06T00:05:00+00:00"), None, SERVER, RULES) == ["clock_skew"]
    assert time_flags(at("2024-05-03T20:00:00+08:00"), 0.0, SERVER, RULES) == []


def test_clock_skew_threshold_comes_from_the_rules():
    assert time_flags("2024-05-03T09:00:00Z", 120.0, SERVER, SampleRules(clock_skew_s=60)) == ["clock_skew"]


@pytest.mark.parametrize(
    ("collected_at", "skew_s", "corrected"),
    [
        ("2024-04-30T09:00:00Z", -3 * 86400.0, "2024-05-03T09:00:00+00:00"),
        ("2024-05-03T10:00:00Z", 3600.0, "2024-05-03T09:00:00+00:00"),
        ("2024-05-03T09:00:00Z", 30.0, "2024-05-03T09:00:00+00:00"),  # within threshold: left alone
        ("2024-05-03T09:00:00Z", None, None),
        (None, -3 * 86400.0, None),
        ("garbage", 3600.0, None),
        ("0001-01-02T00:00:00Z", 1e12, None),
    ],
)
def test_collected_at_corrected_subtracts_a_large_batch_skew(collected_at, skew_s, corrected):
    result = correct_collected_at(collected_at, skew_s, RULES)
    assert result == (None if corrected is None else at(corrected))


@pytest.mark.parametrize("raw", ["1980-01-06T08:05:00+08:00", "2024-04-30t17:00:00.250+08:00"])
def test_validation_keeps_the_device_time_verbatim_however_wrong(raw):
    data = {
        "code": "A1",
        "parcel": "P1",
        "collected_at": raw,
        "location": {"lat": 28.1, "lon": 112.9, "accuracy_m": 5},
        "depth_top_cm": 0,
        "depth_bottom_cm": 20,
        "sample_type": "composite",
    }
    result = validate_sample_data(data, RULES)
    assert result.clean["collected_at"] == raw
    assert "collected_at_corrected" not in result.clean
    assert result.collected_at_utc == parse_rfc3339(raw)


@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
       offset_min=st.integers(-23 * 60 - 59, 23 * 60 + 59), digits=st.integers(0, 9),
       sep=st.sampled_from("Tt "), zulu=st.sampled_from(["", "Z", "z"]))
def test_rfc3339_fast_path_agrees_with_the_components(moment, offset_min, digits, sep, zulu):
    """The C parser takes the usual stamps; the moment must be the one the components name."""
    sign, mag = ("-" if offset_min < 0 else "+"), abs(offset_min)
    zone = zulu or f"{sign}{mag // 60:02d}:{mag % 60:02d}"
    frac = f"{moment.microsecond:06d}{'789'}"[:digits]
    text = f"{moment:%Y-%m-%d}{sep}{moment:%H:%M:%S}{'.' + frac if digits else ''}{zone}"
    micro = int(frac[:6].ljust(6, "0")) if digits else 0
    offset = timedelta(0) if zulu else timedelta(minutes=offset_min)
    expected = moment.replace(microsecond=micro, tzinfo=timezone(offset)).astimezone(UTC)
    parsed = parse_rfc3339(text)
    assert parsed == expected and parsed.tzinfo is UTC and parsed.isoformat() == expected.isoformat()
