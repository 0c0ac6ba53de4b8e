from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.errors import Problem
from fieldsvc.sync.cursor import Cursor, decode_cursor, encode_cursor

EPOCH = "2024-05-01-main"
MAX = 2**63 - 1


def expired_reason(text, epoch=EPOCH, **kwargs):
    with pytest.raises(Problem) as caught:
        decode_cursor(text, epoch, **kwargs)
    problem = caught.value
    assert (problem.status, problem.code) == (410, "cursor_expired")
    return problem.details["reason"]


@pytest.mark.parametrize(("seq", "scope_version"), [(0, 0), (1, 0), (12345, 7), (MAX, MAX), (2**32, 2**40)])
def test_cursor_round_trips(seq, scope_version):
    text = encode_cursor(seq, scope_version, EPOCH)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)  # URL-safe, no padding
    assert decode_cursor(text, EPOCH) == Cursor(seq, scope_version)


def test_cursor_text_is_opaque_and_fixed_length():
    texts = {encode_cursor(seq, 1, EPOCH) for seq in (1, 2, 10**12)}
    assert len(texts) == 3
    assert {len(t) for t in texts} == {34}
    assert all("1000000000000" not in t for t in texts)


@pytest.mark.parametrize("text", [None, ""])
def test_no_cursor_means_from_the_start(text):
    assert decode_cursor(text, EPOCH) == Cursor(0, 0)


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "a",
        "=" * 34,
        "AY8VFbsAAAAAAAAABQAAAAAAAAAC5et7hA==",  # padding is not part of the format
        "AY8VFbsAAAAAAAAABQAAAAAAAAAC5et7h",  # truncated
        "AY8VFbsAAAAAAAAABQAAAAAAAAAC5et7hAAA",  # too long
        "AY8VFbsAAAAAAAAABQAAAAAAAAAC5et7hA ",
        "AY8VFbsAAAAAAAAABQAAAAAAAAAC5et7h+",  # base64, not base64url
        "x" * 10_000,
        "２０２４",
        "\x00",
        "12345",
    ],
)
def test_garbage_cursor_is_410_malformed(text):
    assert expired_reason(text) == "malformed"


@pytest.mark.parametrize("text", [12345, 1.5, b"abc", ["x"], {"seq": 1}, True])
def test_non_string_cursor_is_410(text):
    assert expired_reason(text) == "malformed"


@pytest.mark.parametrize("position", range(0, 32, 3))
def test_tampered_cursor_is_410(position):
    text = encode_cursor(500, 3, EPOCH)
    swapped = "B" if text[position] != "B" else "C"
    tampered = text[:position] + swapped + text[position + 1 :]
    assert expired_reason(tampered) in {"tampered", "malformed"}


def test_changing_the_seq_bytes_is_caught_by_the_check():
    text = encode_cursor(500, 3, EPOCH)
    tampered = text[:12] + ("A" if text[12] != "A" else "B") + text[13:]
    assert expired_reason(tampered) == "tampered"


@pytest.mark.parametrize("other_epoch", ["2024-05-02-restore", "2024-05-01-mai", "2024-05-01-main "])
def test_cursor_from_another_epoch_is_410(other_epoch):
    assert expired_reason(encode_cursor(500, 3, other_epoch)) == "wrong_epoch"


def test_cursor_ahead_of_the_server_is_410():
    text = encode_cursor(500, 3, EPOCH)
    assert decode_cursor(text, EPOCH, latest_seq=500) == Cursor(500, 3)
    assert expired_reason(text, latest_seq=499) == "ahead_of_server"


def test_problem_body_tells_the_phone_to_resync():
    with pytest.raises(Problem) as caught:
        decode_cursor("garbage", EPOCH)
    body = caught.value.to_dict()
    assert body["status"] == 410 and body["code"] == "cursor_expired"
    assert "start" in body["message"]


@pytest.mark.parametrize(
    ("seq", "scope_version", "epoch"),
    [(-1, 0, EPOCH), (0, -1, EPOCH), (2**63, 0, EPOCH), (1.0, 0, EPOCH), (True, 0, EPOCH), (1, 0, "")],
)
def test_encode_refuses_values_no_cursor_can_hold(seq, scope_version, epoch):
    with pytest.raises(ValueError):
        encode_cursor(seq, scope_version, epoch)


cursor_like = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=40
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.text(), cursor_like, st.binary(), st.integers(), st.none(), st.lists(st.text(), max_size=2))
)
def test_decode_cursor_never_raises_anything_but_a_410(text):
    try:
        decode_cursor(text, EPOCH)
    except Problem as problem:
        assert (problem.status, problem.code) == (410, "cursor_expired")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX), st.integers(0, MAX), st.integers(0, 33), st.sampled_from("AQgw_-9z"))
def test_any_single_character_change_is_refused(seq, scope_version, position, char):
    text = encode_cursor(seq, scope_version, EPOCH)
    changed = text[:position] + char + text[position + 1 :]
    if changed != text:
        with pytest.raises(Problem):
            decode_cursor(changed, EPOCH)
