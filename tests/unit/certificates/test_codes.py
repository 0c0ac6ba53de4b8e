from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldsvc.certificates.codes import (
    ALPHABET,
    CODE_LENGTH,
    code_from_bytes,
    code_to_bytes,
    crockford_b32decode,
    crockford_b32encode,
    format_code,
    is_valid_code,
    new_code,
    normalise_code,
    verify_url,
)

SAMPLE = [code_from_bytes(random.Random(seed).randbytes(10)) for seed in range(120)]
KNOWN = next(c for c in SAMPLE if "0" in c[:16] and "1" in c[:16])  # the table needs both


def test_new_code_is_17_crockford_characters_with_a_valid_check():
    for _ in range(500):
        code = new_code()
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
        assert set(ALPHABET) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        assert is_valid_code(code)


def test_new_code_carries_80_random_bits():
    codes = [new_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    assert all(len(code_to_bytes(c)) == 10 for c in codes[:50])
    for position in range(16):  # every data position takes (nearly) every symbol
        assert len({c[position] for c in codes}) >= 30


def test_check_character_uses_only_unambiguous_symbols():
    checks = {c[-1] for c in (new_code() for _ in range(3000))}
    assert checks <= set(ALPHABET)
    assert not checks & set("ILOU")
    assert len(checks) == 32


@pytest.mark.parametrize("code", SAMPLE)
def test_every_single_substitution_is_caught(code):
    for position in range(CODE_LENGTH):
        for symbol in ALPHABET:
            if symbol != code[position]:
                typo = code[:position] + symbol + code[position + 1 :]
                assert normalise_code(typo) is None, (code, position, symbol)


@pytest.mark.parametrize("code", SAMPLE)
def test_every_transposition_of_distinct_characters_is_caught(code):
    for i in range(CODE_LENGTH):
        for j in range(i + 1, CODE_LENGTH):  # adjacent ones and all others
            if code[i] != code[j]:
                swapped = list(code)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                assert normalise_code("".join(swapped)) is None, (code, i, j)


@pytest.mark.parametrize(
    ("case", "typed", "expected"),
    [
        ("exact", KNOWN, KNOWN),
        ("lowercase", KNOWN.lower(), KNOWN),
        ("grouped for print", format_code(KNOWN), KNOWN),
        ("grouped lowercase", format_code(KNOWN).lower(), KNOWN),
        ("spaces instead of hyphens", format_code(KNOWN).replace("-", " "), KNOWN),
        ("surrounding whitespace", f"  {KNOWN}\n", KNOWN),
        ("O typed for 0", KNOWN.replace("0", "O"), KNOWN),
        ("o typed for 0", KNOWN.replace("0", "o"), KNOWN),
        ("I typed for 1", KNOWN.replace("1", "I"), KNOWN),
        ("l typed for 1", KNOWN.replace("1", "l"), KNOWN),
        ("U is never valid", KNOWN[:5] + "U" + KNOWN[6:], None),
        ("one character short", KNOWN[:-1], None),
        ("one character long", KNOWN + "0", None),
        ("empty", "", None),
        ("only hyphens", "----", None),
        ("full-width digits", KNOWN.replace("0", "０"), None),
        ("punctuation", KNOWN[:8] + "." + KNOWN[9:], None),
        ("very long input", "A" * 10_000, None),
    ],
)
def test_normalise_code_table(case, typed, expected):
    assert normalise_code(typed) == expected, case


@pytest.mark.parametrize("value", [None, 123, b"ABCD", ["A"]])
def test_normalise_code_returns_none_for_non_text(value):
    assert normalise_code(value) is None


@pytest.mark.parametrize("code", SAMPLE[:20])
def test_format_code_groups_by_four_and_reads_back(code):
    printed = format_code(code)
    assert printed.split("-") == [code[0:4], code[4:8], code[8:12], code[12:16], code[16]]
    assert normalise_code(printed) == code


@pytest.mark.parametrize("bad", ["", "HELLO", SAMPLE[0][:-1] + ("0" if SAMPLE[0][-1] != "0" else "1")])
def test_format_code_refuses_non_codes(bad):
    with pytest.raises(ValueError):
        format_code(bad)


@pytest.mark.parametrize("code", SAMPLE[:20])
def test_code_bytes_round_trip(code):
    assert code_from_bytes(code_to_bytes(code)) == code


@given(st.binary(max_size=64))
def test_crockford_base32_round_trips_any_bytes(raw):
    text = crockford_b32encode(raw)
    assert set(text) <= set(ALPHABET)
    assert crockford_b32decode(text) == raw


@pytest.mark.parametrize("text", ["0", "01", "012", "0123456", "0" * 9, "ZZ", "I0", "ab", "00="])
def test_crockford_decode_refuses_non_canonical_or_foreign_text(text):
    assert crockford_b32decode(text) is None


@pytest.mark.parametrize(
    ("base", "expected_prefix"),
    [
        ("https://fieldsvc.example", "HTTPS://FIELDSVC.EXAMPLE/C/"),
        ("https://fieldsvc.example/", "HTTPS://FIELDSVC.EXAMPLE/C/"),
        ("HTTPS://Q.EXAMPLE.CN", "HTTPS://Q.EXAMPLE.CN/C/"),
    ],
)
def test_verify_url_is_uppercase_base_slash_c_slash_code(base, expected_prefix):
    assert verify_url(base, KNOWN.lower()) == expected_prefix + KNOWN
