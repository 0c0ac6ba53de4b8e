"""Collect-side rules agree with the server's: the form's constraints, the Date header, the settings QR."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.devices import collect
from fieldsvc.openrosa.keyurl import redact
from fieldsvc.openrosa.services import clause, device_sent_at, sentence
from fieldsvc.openrosa.submission import parse_submission
from fieldsvc.openrosa.xform import CODE_REGEX, FORM_ID, PARCEL_REGEX
from fieldsvc.samples.validation import SampleRules, _clean_code, _clean_parcel, _Invalid

RULES = SampleRules()
CODE = re.compile(CODE_REGEX)
PARCEL = re.compile(PARCEL_REGEX)


def form_takes_code(text: str) -> bool:
    """What Collect checks: the regex, and at most 64 characters once ASCII spaces are trimmed."""
    return bool(CODE.search(text)) and len(text.strip(" \t\n\r")) <= 64


def server_takes(clean, text: str) -> bool:
    try:
        clean(text)
        return True
    except _Invalid:
        return False


@pytest.mark.parametrize("text, ok", [
    ("BAG-0001", True), ("bag-0001", True), ("  BAG-1 ", True), ("ＢＡＧ－０００１", True),
    ("ｂａｇ．１／２＿３", True),
    ("\u3000BAG1\u3000", True), ("BAG 0001", False), ("-BAG", False), ("", False), ("BAG#1", False),
    ("A" * 64, True), ("A" * 65, False), ("BAG\u30001", False),
])
def test_the_bag_code_constraint_says_what_the_server_says(text, ok):
    assert form_takes_code(text) is ok
    assert server_takes(lambda v: _clean_code(v, RULES), text) is ok


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("AZaz09._/- \u3000ＡＺａｚ０９．＿／－#é"), max_size=70))
def test_whatever_the_form_takes_as_a_bag_code_the_server_takes(text):
    if form_takes_code(text):
        assert server_takes(lambda v: _clean_code(v, RULES), text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("P0-9x \u3000ｐ"), max_size=70))
def test_whatever_the_form_takes_as_a_typed_parcel_the_server_takes(text):
    if PARCEL.search(text) and len(" ".join(text.split())) <= 64 and len(text.strip(" \t\n\r")) <= 64:
        assert server_takes(_clean_parcel, text)


NOW = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize("offset_h, skew_h", [(0, 0), (-12, 0), (12, 0), (2, 2), (-14, -2), (11, -1)])
def test_the_date_header_is_read_modulo_twelve_hours(offset_h, skew_h):
    header = format_datetime(NOW + timedelta(hours=offset_h), usegmt=True)
    read = datetime.fromisoformat(device_sent_at(header, NOW).replace("Z", "+00:00"))
    assert read - NOW == timedelta(hours=skew_h)
    assert device_sent_at("not a date", NOW) is None and device_sent_at(None, NOW) is None


def test_settings_round_trip_through_the_qr_payload():
    settings_json = collect.settings("https://x.example", "fsd_abc", "Phone 1", "en")
    payload = collect.qr_payload(settings_json)
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", payload)
    assert collect.decode_payload(payload) == settings_json
    assert settings_json["general"]["server_url"] == "https://x.example/key/fsd_abc"
    sealed = collect.seal("fsd_abc", "secret")
    assert "fsd_abc" not in sealed and collect.unseal(sealed, "secret") == "fsd_abc"
    assert collect.unseal(sealed, "another secret") is None and collect.unseal(None, "secret") is None


def test_redact_hides_only_the_key():
    assert redact("/key/fsd_x-Y_z/submission?deviceID=collect:1") == "/key/***/submission?deviceID=collect:1"
    assert redact("/formList") == "/formList"


def test_messages_end_in_one_full_stop():
    assert sentence("Must be a number.") == "Must be a number." and sentence("ok") == "ok."
    assert sentence("a.. ") == "a." and clause("Must be a number.") == "Must be a number"


def test_deprecated_id_and_extra_answers_are_parsed():
    xml = (f'<data id="{FORM_ID}" version="2.x1.abc"><code>B-1</code><parcel_pick/><parcel_other>P-9</parcel_other>'
           "<parcel/><extra><crop>rice</crop><n>3</n></extra><meta><instanceID>uuid:0b6d5f0e-6a3c-4f7e-9a51-"
           "2f1f0d6c9e11</instanceID><deprecatedID>uuid:1b6d5f0e-6a3c-4f7e-9a51-2f1f0d6c9e11</deprecatedID>"
           "</meta></data>").encode()
    sub = parse_submission(xml, FORM_ID)
    assert sub.deprecated_id == "1b6d5f0e-6a3c-4f7e-9a51-2f1f0d6c9e11" and sub.data["parcel"] == "P-9"
    assert sub.extra == {"crop": "rice", "n": "3"}
