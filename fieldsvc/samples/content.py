"""A sample's content fingerprint: tells a resend (duplicate) from an edit (conflict).

ANCHORS part 1, lesson 2: the same record id with the same content is a success, with
different content a conflict. "Same" must not depend on how a phone spelled its JSON, so
the hash is taken over a canonical form:

- keys sorted, no whitespace, strings as JSON with ASCII escapes;
- numbers compare by value: ``1``, ``1.0`` and ``Decimal("1.00")`` are one number, while
  the string ``"1"`` stays a string (validation turns numeric strings into numbers first,
  so a hash of raw input should not guess);
- ``true`` is not ``1``; NaN and infinities have no canonical form and raise ValueError;
- ``media`` is a manifest, i.e. a set: its order does not count;
- fields the server makes (``SERVER_MADE``) and the kept raw values (``raw`` inside a
  nested object such as ``location``) never enter it: they describe how the content
  arrived, not what it says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

SERVER_MADE = frozenset(
    {
        "id",
        "version",
        "state",
        "flags",
        "received_at",
        "clock_skew_s",
        "collected_at_corrected",
        "created_at",
        "updated_at",
    }
)
DERIVED_NESTED = frozenset({"raw"})
UNORDERED_LISTS = frozenset({"media"})
_PLAIN_EXPONENT = 30  # more padding zeros than this: written as <digits>e<exp> to stay short


def content_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 hex of ``canonical_json(data)``."""
    return hashlib.sha256(canonical_json(data).encode("ascii")).hexdigest()


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two data dicts would get the same ``content_hash``."""
    return canonical_json(a) == canonical_json(b)


def canonical_json(data: Mapping[str, Any]) -> str:
    """The canonical text a record's content hash is taken over.

    On the path of every pushed record (``bench/sync.py``), so it is written directly, once: strings
    by the standard library's C escaper, numbers by their repr where that is already the canonical
    spelling, and ``canonical_number`` for the rest.
    """
    if not isinstance(data, Mapping):
        raise TypeError("content is a mapping of field names to values")
    return _object(data, SERVER_MADE, True)


def canonical_field(name: str, value: Any) -> str:
    """Canonical text of one top-level field, so merge compares fields the way the hash does."""
    if name in UNORDERED_LISTS and type(value) in (list, tuple):
        return _set_text(value)
    return _text(value)


_INT_LIMIT = 10**_PLAIN_EXPONENT  # smaller integers print plainly in both spellings
_escape = json.encoder.encode_basestring_ascii
_LITERALS = {None: "null", True: "true", False: "false"}


def _text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _escape(value)
    if value is None or kind is bool:
        return _LITERALS[value]
    if kind is int or kind is float or kind is Decimal:
        return _number_text(value)
    if isinstance(value, Mapping):
        return _object(value, DERIVED_NESTED, False)
    if kind is list or kind is tuple:
        return "[" + ",".join([_text(item) for item in value]) + "]"
    if isinstance(value, str):  # subclasses of the plain types
        return _escape(value)
    if isinstance(value, bool):
        return _LITERALS[bool(value)]
    if isinstance(value, int | float):
        return _number_text(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def _object(value: Mapping[Any, Any], dropped: frozenset[str], top: bool) -> str:
    for key in value:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError("object keys must be strings")
    parts = []
    for key in sorted(value):
        if key in dropped:
            continue
        item = value[key]
        if top and key in UNORDERED_LISTS and type(item) in (list, tuple):
            parts.append(f"{_escape(key)}:{_set_text(item)}")
        else:
            parts.append(f"{_escape(key)}:{_text(item)}")
    return "{" + ",".join(parts) + "}"


def _set_text(items: list[Any] | tuple[Any, ...]) -> str:
    """A list whose order does not count (the media manifest): its items' texts, sorted."""
    return "[" + ",".join(sorted([_text(item) for item in items])) + "]"


def _number_text(value: int | float | Decimal) -> str:
    """``canonical_number``, taking the repr directly where it already is the canonical spelling."""
    kind = type(value)
    if kind is float:
        text = float.__repr__(value)
        if "e" not in text and "n" not in text:
            return int.__repr__(int(value)) if text.endswith(".0") else text
    elif kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return int.__repr__(value)
    return canonical_number(value)


def canonical_number(value: int | float | Decimal) -> str:
    """One spelling per numeric value: ``1``, ``1.0``, ``1.00`` and ``1e0`` all give ``"1"``.

    Trailing zeros are stripped by hand: ``Decimal.normalize`` would round to the context's
    28 digits and make two different long numbers look equal.
    """
    number = to_decimal(value)
    if not number.is_finite():
        raise ValueError("NaN and infinities have no canonical form")
    if number.is_zero():
        return "0"
    sign, digit_tuple, exponent = number.as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent = int(exponent) + len(digits) - len(stripped)
    padding = exponent if exponent >= 0 else -exponent - len(stripped)
    text = _plain(stripped, exponent) if padding <= _PLAIN_EXPONENT else f"{stripped}e{exponent}"
    return ("-" if sign else "") + text


def to_decimal(value: int | float | Decimal) -> Decimal:
    """Exact Decimal of a number; a float by its shortest spelling, so ``0.1`` is ``0.1``."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _plain(digits: str, exponent: int) -> str:
    if exponent >= 0:
        return digits + "0" * exponent
    whole, frac = digits[:exponent], digits[exponent:]
    return (whole or "0") + "." + frac.rjust(-exponent, "0")
