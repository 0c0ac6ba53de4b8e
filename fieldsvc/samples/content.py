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

import codecs
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

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

    On the path of every pushed record (``bench/sync.py``). Content made only of plain JSON values
    (what a validated record holds) is written by orjson once the members that do not count are
    left out and the floats checked (``_member``); anything else, and any value whose orjson
    spelling is not the canonical one, is written here directly: strings by the standard library's
    C escaper, numbers by their repr where that is already the canonical spelling, and
    ``canonical_number`` for the rest. Both give the same text (a property test holds them to it).
    """
    if not isinstance(data, Mapping):
        raise TypeError("content is a mapping of field names to values")
    if type(data) is dict:
        try:
            # (a plain string, integer, bool or null is its own member: kept without a call)
            top = {key: (item if type(item) in _PLAIN else _member_set(item) if key in UNORDERED_LISTS
                         else _member(item)) for key, item in data.items() if key not in SERVER_MADE}
            return _ascii(orjson.dumps(top, option=orjson.OPT_SORT_KEYS))
        except (_Exact, orjson.JSONEncodeError):
            pass  # (keys that are not strings, integers beyond 64 bits, ...): written below
    return _object(data, SERVER_MADE, True)


_PLAIN = frozenset({str, int, bool, type(None)})  # what ``_member`` returns as it is


class _Exact(Exception):
    """A value orjson would not spell canonically: the content is written by ``_object``."""


def _member(value: Any) -> Any:
    """``value`` for orjson: nested objects without their ``raw`` member, integral floats as ints;
    raises ``_Exact`` for what orjson would spell otherwise than ``_text`` (NaN and infinities,
    which have no canonical form, a float whose repr has an exponent, any type but JSON's own)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value.is_integer():  # (NaN and infinities are not)
            if -1e16 < value < 1e16:  # (its repr has no exponent and every digit of the int)
                return int(value)
        elif abs(value) >= 1e-4 and value - value == 0.0:  # finite, written without an exponent
            return value  # orjson writes the shortest repr, as ``float.__repr__`` does here
        raise _Exact
    if kind is dict:
        return {key: (item if type(item) in _PLAIN else _member(item))
                for key, item in value.items() if key not in DERIVED_NESTED}
    if kind is list or kind is tuple:
        return [_member(item) for item in value]
    raise _Exact


def _member_set(value: Any) -> Any:
    """``_member`` of a top-level unordered list: its items' canonical texts, sorted."""
    kind = type(value)
    if (kind is not list and kind is not tuple) or len(value) < 2:
        return _member(value)
    texts = [_ascii(orjson.dumps(_member(item), option=orjson.OPT_SORT_KEYS)) for item in value]
    return [orjson.Fragment(text) for text in sorted(texts)]


def _ascii(raw: bytes) -> str:
    """orjson's UTF-8 text with what it leaves as it is escaped the way ``_escape`` escapes it:
    non-ASCII as ``\\uXXXX`` (astral characters as surrogate pairs) and DEL as ``\\u007f``."""
    if b"\x7f" in raw:  # (only ever inside a string: JSON's own syntax is printable ASCII)
        raw = raw.replace(b"\x7f", b"\\u007f")
    if raw.isascii():
        return raw.decode("ascii")
    return raw.decode().encode("ascii", "fieldsvc.json_ascii").decode("ascii")


def _escape_non_ascii(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for ch in exc.object[exc.start:exc.end]:
        n = ord(ch)
        if n > 0xFFFF:
            n -= 0x10000
            out.append(f"\\u{0xD800 | (n >> 10):04x}\\u{0xDC00 | (n & 0x3FF):04x}")
        else:
            out.append(f"\\u{n:04x}")
    return "".join(out), exc.end


codecs.register_error("fieldsvc.json_ascii", _escape_non_ascii)


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
    if kind is float:
        return _float_text(value)
    if kind is int or kind is Decimal:
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
    """An object's members sorted by key. The plain values every record holds (strings, null,
    floats) are written here without a call; the key texts are kept (records share their names)."""
    keys = sorted(value)  # (keys of mixed types raise TypeError here, as the check below does)
    parts = []
    for key in keys:
        head = _KEYS.get(key)
        if head is None:
            if type(key) is not str and not isinstance(key, str):
                raise TypeError("object keys must be strings")
            head = _key_text(key)
        if key in dropped:
            continue
        item = value[key]
        kind = type(item)
        if kind is str:
            parts.append(head + _escape(item))
        elif item is None:
            parts.append(head + "null")
        elif kind is float:
            parts.append(head + _float_text(item))
        elif top and key in UNORDERED_LISTS and (kind is list or kind is tuple):
            parts.append(head + _set_text(item))
        else:
            parts.append(head + _text(item))
    return "{" + ",".join(parts) + "}"


_KEYS: dict[Any, str] = {}


def _key_text(key: str) -> str:
    """``"key":``, kept for the next record (at most a few thousand names: field names and questions)."""
    head = _escape(key) + ":"
    if len(_KEYS) < 4096 and type(key) is str:
        _KEYS[key] = head
    return head


def _set_text(items: list[Any] | tuple[Any, ...]) -> str:
    """A list whose order does not count (the media manifest): its items' texts, sorted."""
    return "[" + ",".join(sorted([_text(item) for item in items])) + "]"


def _number_text(value: int | float | Decimal) -> str:
    """``canonical_number``, taking the repr directly where it already is the canonical spelling."""
    kind = type(value)
    if kind is float:
        return _float_text(value)
    if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return int.__repr__(value)
    return canonical_number(value)


def _float_text(value: float) -> str:
    """``canonical_number`` of a plain float: its repr where that has no exponent (and is not NaN or
    an infinity), without a trailing ``.0``."""
    text = float.__repr__(value)
    if "e" in text or "n" in text:
        return canonical_number(value)
    if text.endswith(".0"):
        return text[:-2] if value else "0"  # (-0.0 is 0)
    return text


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
