from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from dataclasses import replace
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.certificates.codes import ALPHABET, code_from_bytes, crockford_b32decode, crockford_b32encode
from fieldsvc.certificates.signing import (
    MAX_TOKEN_CHARS,
    Claims,
    KeyRing,
    KeyRingError,
    decode_claims,
    encode_claims,
    public_keys_document,
    sign_bytes,
    sign_claims,
    verify_bytes,
    verify_token,
)
from fieldsvc.errors import Problem

RING = KeyRing.generate()
OTHER_RING = KeyRing.generate()
CLAIMS = Claims(
    code=code_from_bytes(bytes(range(10))),
    subject_type="parcel",
    subject_code="P330106-0421",
    grade="clean",
    rule_pack="nyt391-green@3",
    tested_on=date(2025, 4, 10),
    valid_until=date(2028, 5, 1),
)
TOKEN = sign_claims(CLAIMS, RING)
RAW = crockford_b32decode(TOKEN)
SIGNALS = {"malformed": 400, "unknown_issuer_key": 422, "invalid_signature": 422}


def problem_code(token, ring=RING) -> str:
    with pytest.raises(Problem) as caught:
        verify_token(token, ring)
    assert caught.value.status == SIGNALS[caught.value.code]
    return caught.value.code


def test_token_round_trips_claims_and_names_the_current_key():
    verified = verify_token(TOKEN, RING)
    assert verified.claims == CLAIMS
    assert verified.kid == RING.current.kid
    assert verified.key_status == "current"


def test_token_is_uppercase_crockford_and_short():
    assert set(TOKEN) <= set(ALPHABET)
    assert len(RAW) == 1 + 8 + 15 + 1 + (1 + 12) + (1 + 5) + (1 + 14) + (1 + 0) + 64
    assert len(TOKEN) <= 200


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"subject_type": "farm_park", "subject_code": "FP-330106-01"},
        {"subject_type": "village", "subject_code": "330106001001", "grade": "A"},
        {"subject_code": "", "grade": "", "rule_pack": ""},
        {"subject_code": "地块-东山村-3", "grade": "尚清洁"},
        {"rule_pack": "x" * 200},
        {"tested_on": date(2000, 1, 1), "valid_until": date(2179, 6, 6)},
    ],
)
def test_claims_encoding_round_trips(changes):
    claims = replace(CLAIMS, **changes)
    assert decode_claims(encode_claims(claims)) == claims
    assert verify_token(sign_claims(claims, RING), RING).claims == claims


@pytest.mark.parametrize(
    "changes",
    [
        {"code": "NOT-A-CODE"},
        {"code": CLAIMS.code[:-1] + ("0" if CLAIMS.code[-1] != "0" else "1")},
        {"subject_type": "county"},
        {"subject_code": "x" * 256},
        {"grade": "级" * 86},  # 258 UTF-8 bytes
        {"tested_on": date(1999, 12, 31)},
        {"valid_until": date(2179, 6, 7)},
        {"subject_code": "x" * 100, "grade": "x" * 100, "rule_pack": "x" * 100},  # token over 512 chars
    ],
)
def test_claims_that_cannot_be_encoded_are_refused_before_signing(changes):
    with pytest.raises(ValueError):
        sign_claims(replace(CLAIMS, **changes), RING)


def test_every_single_byte_flip_is_rejected_with_the_right_reason():
    for position in range(len(RAW)):
        for flip in (0x01, 0x80, 0xFF):
            tampered = bytearray(RAW)
            tampered[position] ^= flip
            code = problem_code(crockford_b32encode(bytes(tampered)))
            if position == 0:
                assert code == "malformed"
            elif position <= 8:
                assert code == "unknown_issuer_key"
            else:
                assert code == "invalid_signature", position


def test_every_truncation_is_rejected():
    for length in range(len(TOKEN)):
        assert problem_code(TOKEN[:length]) in {"malformed", "invalid_signature"}
    for length in range(len(RAW)):
        code = problem_code(crockford_b32encode(RAW[:length]))
        assert code == ("malformed" if length < 1 + 8 + 15 + 3 + 64 else "invalid_signature")


def test_token_from_a_foreign_key_is_an_unknown_issuer():
    foreign = sign_claims(CLAIMS, OTHER_RING)
    with pytest.raises(Problem) as caught:
        verify_token(foreign, RING)
    assert caught.value.code == "unknown_issuer_key"
    assert caught.value.details["key_id"] == OTHER_RING.current.kid


def test_foreign_signature_under_our_key_id_is_invalid():
    body = RAW[:-64]
    forged = body + OTHER_RING.current.sign(body)
    assert problem_code(crockford_b32encode(forged)) == "invalid_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        " ",
        "hello",
        "证书",
        "ß" * 300,  # uppercases to 600 valid-looking characters
        "\ud800" * 10,
        "\x00" * 20,
        TOKEN + "=",
        TOKEN[:-1] + "U",
        TOKEN.replace("0", "O"),
        "0" * 200,
        "Z" * MAX_TOKEN_CHARS,
        "A" * 50_000,
        TOKEN * 300,
        None,
        b"bytes",
        12345,
        ["list"],
    ],
)
def test_garbage_is_malformed_never_a_crash(token):
    assert problem_code(token) == "malformed"


@pytest.mark.parametrize("suffix", ["0", "00", "0000000", "00000000"])
def test_extra_characters_never_verify(suffix):
    assert problem_code(TOKEN + suffix) in {"malformed", "invalid_signature"}


def test_oversized_input_is_refused_before_decoding():
    with pytest.raises(Problem) as caught:
        verify_token("!" * 50_000, RING)  # would fail the alphabet too; the length check must come first
    assert str(MAX_TOKEN_CHARS) in caught.value.details["reason"]


def test_lowercase_and_padded_whitespace_still_verify():
    assert verify_token(f" {TOKEN.lower()}\n", RING).claims == CLAIMS


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.text(alphabet=ALPHABET, max_size=600), st.binary(max_size=400)))
def test_fuzzed_input_only_ever_raises_problem(value):
    token = crockford_b32encode(value) if isinstance(value, bytes) else value
    with pytest.raises(Problem):
        verify_token(token, RING)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_fuzzed_claims_after_our_header_only_raise_problem(tail):
    token = crockford_b32encode(bytes([1]) + RING.current.kid_bytes + tail + bytes(64))
    assert problem_code(token) in {"malformed", "invalid_signature"}


def test_structurally_bad_claims_under_a_valid_signature_are_malformed():
    body = bytes([1]) + RING.current.kid_bytes + encode_claims(CLAIMS) + b"\x00"  # trailing byte
    token = crockford_b32encode(body + RING.current.sign(body))
    assert problem_code(token) == "malformed"


def test_key_folder_is_created_private(tmp_path):
    folder = tmp_path / "instance" / "keys"
    ring = KeyRing.load_or_create(folder)
    files = list(folder.glob("signing-key-*.pem"))
    assert [f.name for f in files] == [f"signing-key-{ring.current.kid}.pem"]
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert b"PRIVATE KEY" in files[0].read_bytes()


def test_key_folder_is_reused_not_regenerated(tmp_path):
    first = KeyRing.load_or_create(tmp_path / "keys")
    second = KeyRing.load_or_create(tmp_path / "keys")
    assert first.current.kid == second.current.kid
    assert verify_token(sign_claims(CLAIMS, first), second).key_status == "current"


def test_processes_starting_together_make_one_key(tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    kids, errors = [], []

    def start():
        try:
            kids.append(KeyRing.load_or_create(folder).current.kid)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(kids)) == 1
    assert len(list(folder.glob("signing-key-*.pem"))) == 1


def test_rotated_out_key_still_verifies_as_retired(tmp_path):
    ring = KeyRing.load_or_create(tmp_path / "keys")
    old_token, old_kid = sign_claims(CLAIMS, ring), ring.current.kid
    new_key = ring.rotate()
    assert new_key.kid != old_kid and ring.current.kid == new_key.kid
    reloaded = KeyRing.load_or_create(tmp_path / "keys")
    assert reloaded.current.kid == new_key.kid
    old = verify_token(old_token, reloaded)
    assert (old.kid, old.key_status) == (old_kid, "retired")
    assert verify_token(sign_claims(CLAIMS, reloaded), reloaded).key_status == "current"
    statuses = {k["kid"]: k["status"] for k in public_keys_document(reloaded)["keys"]}
    assert statuses == {old_kid: "retired", new_key.kid: "current"}
    index = json.loads((tmp_path / "keys" / "keys.json").read_text())
    assert index["keys"][old_kid]["retired_at"] and index["keys"][new_key.kid]["retired_at"] is None


def test_renamed_key_file_is_refused(tmp_path):
    ring = KeyRing.load_or_create(tmp_path / "keys")
    path = tmp_path / "keys" / f"signing-key-{ring.current.kid}.pem"
    path.rename(tmp_path / "keys" / "signing-key-0000000000000.pem")
    with pytest.raises(KeyRingError):
        KeyRing.load(tmp_path / "keys")


def test_lost_key_file_is_refused_rather_than_silently_replaced(tmp_path):
    ring = KeyRing.load_or_create(tmp_path / "keys")
    (tmp_path / "keys" / f"signing-key-{ring.current.kid}.pem").unlink()
    with pytest.raises(KeyRingError, match="missing"):
        KeyRing.load_or_create(tmp_path / "keys")


def _pem(private: Ed25519PrivateKey, public_only: bool = False) -> bytes:
    if public_only:
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_configured_pem_key_signs_and_listed_old_keys_verify():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_token = sign_claims(CLAIMS, KeyRing.from_pem(_pem(old)))
    ring = KeyRing.from_pem(_pem(new).decode(), retired=[_pem(old, public_only=True)])
    assert verify_token(old_token, ring).key_status == "retired"
    assert verify_token(sign_claims(CLAIMS, ring), ring).key_status == "current"
    with pytest.raises(KeyRingError):
        ring.rotate()


@pytest.mark.parametrize(
    "pem", [b"", b"not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_unreadable_configured_key_is_a_clear_error(pem):
    with pytest.raises(KeyRingError):
        KeyRing.from_pem(pem)


def test_public_key_alone_cannot_be_the_signing_key():
    with pytest.raises(KeyRingError):
        KeyRing.from_pem(_pem(Ed25519PrivateKey.generate(), public_only=True))


def test_key_id_is_sha256_prefix_of_raw_public_key_in_13_base32_characters():
    key = RING.current
    assert len(key.kid) == 13 and set(key.kid) <= set(ALPHABET)
    assert crockford_b32decode(key.kid) == hashlib.sha256(key.public_raw).digest()[:8] == key.kid_bytes


def test_public_keys_document_lists_raw_public_keys_only():
    private = Ed25519PrivateKey.generate()
    ring = KeyRing.from_pem(_pem(private))
    document = public_keys_document(ring)
    [entry] = document["keys"]
    assert set(entry) == {"kid", "alg", "public_key", "status", "created_at"}
    assert entry["alg"] == "Ed25519" and entry["status"] == "current" and entry["created_at"].endswith("Z")
    assert base64.urlsafe_b64decode(entry["public_key"] + "=") == ring.current.public_raw
    private_raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    dumped = json.dumps(document)
    assert base64.urlsafe_b64encode(private_raw).rstrip(b"=").decode() not in dumped
    assert base64.b64encode(private_raw).decode().rstrip("=") not in dumped


def test_private_keys_never_appear_in_reprs():
    private_raw = RING.current.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    for text in (repr(RING), repr(RING.current), str(RING.current), repr(RING.keys)):
        assert "private" not in text.lower()
        assert private_raw.hex() not in text
        assert base64.b64encode(private_raw).decode()[:20] not in text


def test_sign_bytes_round_trip_and_tamper():
    kid, signature = sign_bytes(b"payload", RING)
    assert verify_bytes(b"payload", signature, kid, RING).kid == kid
    with pytest.raises(Problem) as caught:
        verify_bytes(b"payloaD", signature, kid, RING)
    assert caught.value.code == "invalid_signature"
    with pytest.raises(Problem) as caught:
        verify_bytes(b"payload", signature[:10], kid, RING)
    assert caught.value.code == "invalid_signature"
    with pytest.raises(Problem) as caught:
        verify_bytes(b"payload", signature, OTHER_RING.current.kid, RING)
    assert caught.value.code == "unknown_issuer_key"
    with pytest.raises(Problem) as caught:
        verify_bytes(b"payload", signature, "nonsense!", RING)
    assert caught.value.code == "malformed"
