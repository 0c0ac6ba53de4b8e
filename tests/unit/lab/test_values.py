from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.lab.values import ParsedValue, ValueParseError, parse_value

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.05", D("0.05")),
        ("12", D("12")),
        ("0", D("0")),
        (" 0.3 ", D("0.3")),
        ("0,05", D("0.05")),
        ("０．０５", D("0.05")),
        ("１２", D("12")),
        ("０，５", D("0.5")),
        (".5", D("0.5")),
        ("1.2E-02", D("0.012")),
        ("3e2", D("300")),
        ("0.050", D("0.050")),
    ],
)
def test_plain_numbers_are_measured_values(text, expected):
    parsed = parse_value(text)
    assert parsed == ParsedValue("=", expected, None)
    assert isinstance(parsed.value, Decimal)
    assert not parsed.censored


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("<0.05", D("0.05")),
        ("< 0.05", D("0.05")),
        ("＜0.05", D("0.05")),
        ("＜０．０５", D("0.05")),
        ("<0,05", D("0.05")),
        ("0.05L", D("0.05")),
        ("0.05 L", D("0.05")),
        ("0.05l", D("0.05")),
        ("3(L)", D("3")),
        ("3（L）", D("3")),
        ("3 (L)", D("3")),
        ("ND(0.05)", D("0.05")),
        ("未检出(<0.05)", D("0.05")),
        ("≤0.05", D("0.05")),
        ("<=0.05", D("0.05")),
        ("＜＝0.05", D("0.05")),
    ],
)
def test_censored_notations_carry_their_own_limit_and_no_value(text, limit):
    parsed = parse_value(text, detection_limit="0.01")
    assert parsed == ParsedValue("<", None, limit)
    assert parsed.censored


@pytest.mark.parametrize(
    "text", ["ND", "nd", "N.D.", "n.d.", "N.D", "未检出", "<DL", "< DL", "<LOD", "<检出限", "ＮＤ"]
)
def test_non_detect_words_take_the_limit_from_the_detection_limit_column(text):
    assert parse_value(text, detection_limit="0.02") == ParsedValue("<", None, D("0.02"))


@pytest.mark.parametrize("text", ["ND", "未检出", "<DL", "n.d."])
@pytest.mark.parametrize("dl", [None, "", "  "])
def test_non_detect_without_a_detection_limit_is_an_error(text, dl):
    with pytest.raises(ValueParseError, match="detection limit"):
        parse_value(text, detection_limit=dl)


@pytest.mark.parametrize("text", ["<0.05", "0.05L", "ND", "未检出", "3(L)"])
def test_censored_value_never_becomes_a_number(text):
    parsed = parse_value(text, detection_limit="0.05")
    assert parsed.value is None
    assert parsed.qualifier == "<"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-0.01", "negative"),
        ("−0.01", "negative"),
        ("nan", "not a number"),
        ("NaN", "not a number"),
        ("inf", "not a number"),
        ("Infinity", "not a number"),
        ("1e999", "out of range"),
        ("1000000000", "out of range"),
        ("abc", "not a number"),
        ("0.05mg/kg", "not a number"),
        ("1,234.5", "mixes"),
        ("1,2,3", "mixes"),
        (">5", "dilute"),
        ("＞5", "dilute"),
        ("<0", "above zero"),
        ("0L", "above zero"),
        ("L", "not a number"),
        ("#N/A", "not a number"),
    ],
)
def test_unusable_cells_raise_a_human_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_value(text)


@pytest.mark.parametrize(
    ("dl", "message"), [("abc", "not a number"), ("0", "above zero"), ("-1", "negative")]
)
def test_bad_detection_limit_is_blamed_on_the_detection_limit_field(dl, message):
    with pytest.raises(ValueParseError, match=message) as caught:
        parse_value("ND", detection_limit=dl)
    assert caught.value.field == "detection_limit"


def test_value_errors_are_blamed_on_the_value_field():
    with pytest.raises(ValueParseError) as caught:
        parse_value("abc")
    assert caught.value.field == "value"


def test_explicit_censoring_limit_wins_over_the_detection_limit_column():
    assert parse_value("<0.05", detection_limit="0.01").limit == D("0.05")


amounts = st.decimals(min_value=0, max_value=Decimal("999999999"), places=4).filter(
    lambda d: not d.is_signed()
)
limits = amounts.filter(lambda d: d > 0)


@settings(database=None, max_examples=150, deadline=None)
@given(amounts)
def test_any_plain_amount_round_trips_exactly(amount):
    assert parse_value(format(amount, "f")) == ParsedValue("=", amount, None)


@settings(database=None, max_examples=150, deadline=None)
@given(limits, st.sampled_from(["<{}", "＜{}", "{}L", "{} L", "{}(L)", "≤{}", "ND({})"]))
def test_any_censored_spelling_keeps_the_limit_and_never_a_value(limit, template):
    parsed = parse_value(template.format(format(limit, "f")))
    assert (parsed.qualifier, parsed.value, parsed.limit) == ("<", None, limit)
