"""Certificate codes: 80 random bits in Crockford Base32 plus one check character.

A code is 16 data characters and one check character, all from the Crockford alphabet
(a subset of ``[0-9A-Z]``), so it is QR-alphanumeric and easy to type in. The check is a
weighted sum over GF(32): ``sum(alpha**i * v_i) == 0`` over all 17 positions, with ``alpha``
a primitive element. Each weight is non-zero, so every single substitution changes the sum;
distinct positions have distinct weights (``alpha`` has order 31 > 17), so swapping two
different characters anywhere, adjacent or not, changes it too.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_LENGTH = 16
CODE_LENGTH = DATA_LENGTH + 1
RANDOM_BYTES = 10  # 80 bits, exactly 16 Base32 characters

_RFC_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = str.maketrans(_RFC_ALPHABET, ALPHABET)
_FROM_CROCKFORD = str.maketrans(ALPHABET, _RFC_ALPHABET)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_CROCKFORD_RE = re.compile(f"[{ALPHABET}]*")
_TYPING_FIXES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})

# GF(32) with the primitive polynomial x^5 + x^2 + 1; alpha = x.
_EXP = [0] * 62
_LOG = [0] * 32
_x = 1
for _i in range(31):
    _EXP[_i] = _EXP[_i + 31] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x20:
        _x ^= 0b100101
del _i, _x


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _syndrome(values: list[int]) -> int:
    """Weighted GF(32) sum with weight alpha**i at position i."""
    total = 0
    for i, v in enumerate(values):
        total ^= _gf_mul(_EXP[i], v)
    return total


def check_character(data: str) -> str:
    """The character that makes the 17-character syndrome zero."""
    partial = _syndrome([_VALUE[ch] for ch in data])
    # alpha**16 * c == partial  =>  c = alpha**(31 - 16) * partial
    return ALPHABET[_gf_mul(_EXP[31 - DATA_LENGTH], partial)]


def crockford_b32encode(raw: bytes) -> str:
    """Unpadded Crockford Base32 (RFC 4648 bit order, Crockford alphabet)."""
    return base64.b32encode(raw).decode("ascii").rstrip("=").translate(_TO_CROCKFORD)


def crockford_b32decode(text: str) -> bytes | None:
    """Strict inverse of :func:`crockford_b32encode`; None unless ``text`` is its exact output."""
    if not _CROCKFORD_RE.fullmatch(text) or len(text) % 8 in (1, 3, 6):
        return None
    padded = text.translate(_FROM_CROCKFORD) + "=" * (-len(text) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        return None
    # Non-zero trailing bits would give several spellings of one byte string.
    return raw if crockford_b32encode(raw) == text else None


def new_code() -> str:
    """A fresh unguessable certificate code (80 random bits + check)."""
    data = crockford_b32encode(secrets.token_bytes(RANDOM_BYTES))
    return data + check_character(data)


def is_valid_code(code: str) -> bool:
    """True for a normalised code whose check character fits."""
    return (
        len(code) == CODE_LENGTH
        and _CROCKFORD_RE.fullmatch(code) is not None
        and _syndrome([_VALUE[ch] for ch in code]) == 0
    )


def normalise_code(text: str) -> str | None:
    """Read a typed or scanned code the forgiving Crockford way; None if it is not a code."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    code = text.strip().upper().translate(_TYPING_FIXES)
    return code if is_valid_code(code) else None


def format_code(code: str) -> str:
    """Groups of four for print, the check character on its own: ``XXXX-XXXX-XXXX-XXXX-X``."""
    normal = normalise_code(code)
    if normal is None:
        raise ValueError("not a certificate code")
    return "-".join(normal[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def code_to_bytes(code: str) -> bytes:
    """The 10 random bytes of a valid normalised code (the check is implied)."""
    raw = crockford_b32decode(code[:DATA_LENGTH])
    if raw is None or not is_valid_code(code):
        raise ValueError("not a certificate code")
    return raw


def code_from_bytes(raw: bytes) -> str:
    """Inverse of :func:`code_to_bytes`."""
    if len(raw) != RANDOM_BYTES:
        raise ValueError("a code holds exactly 10 bytes")
    data = crockford_b32encode(raw)
    return data + check_character(data)


def verify_url(public_base_url: str, code: str) -> str:
    """``<PUBLIC_BASE_URL>/C/<CODE>`` in uppercase, so its QR stays in alphanumeric mode."""
    normal = normalise_code(code)
    if normal is None:
        raise ValueError("not a certificate code")
    return f"{public_base_url.rstrip('/')}/C/{normal}".upper()


# --- label serials ----------------------------------------------------------------------------
# A serial names one printed label of a code: 6 random Crockford characters (30 bits) and a check
# character by the same weighted GF(32) sum, so a mistyped or altered serial is caught like a code.

SERIAL_DATA_LENGTH = 6
SERIAL_LENGTH = SERIAL_DATA_LENGTH + 1
_SERIAL_RE = re.compile(f"[{ALPHABET}]{{{SERIAL_LENGTH}}}")


def serial_check_character(data: str) -> str:
    partial = _syndrome([_VALUE[ch] for ch in data])
    return ALPHABET[_gf_mul(_EXP[31 - len(data)], partial)]


def new_serial() -> str:
    data = "".join(secrets.choice(ALPHABET) for _ in range(SERIAL_DATA_LENGTH))
    return data + serial_check_character(data)


def normalise_serial(text: str) -> str | None:
    """A typed or scanned serial, forgiving like codes; None unless its check character fits."""
    if not isinstance(text, str) or len(text) > 16:
        return None
    serial = text.strip().upper().translate(_TYPING_FIXES)
    if not _SERIAL_RE.fullmatch(serial) or _syndrome([_VALUE[ch] for ch in serial]) != 0:
        return None
    return serial


def serial_url(public_base_url: str, code: str, serial: str) -> str:
    """``<PUBLIC_BASE_URL>/C/<CODE>/<SERIAL>`` in uppercase (QR alphanumeric mode)."""
    normal = normalise_serial(serial)
    if normal is None:
        raise ValueError("not a label serial")
    return f"{verify_url(public_base_url, code)}/{normal}"
