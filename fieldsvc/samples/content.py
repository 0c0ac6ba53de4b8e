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

    Hot path of every sync push: plain JSON values (what validation hands over) are rewritten
    into a form whose ``json.dumps(sort_keys=True)`` (the C encoder) is exactly the canonical
    text; anything else (Decimals, huge or exponent-spelled numbers, mapping subclasses,
    tuples, odd keys) takes the reference walk below, which defines the form.
    """
    if not isinstance(data, Mapping):
        raise TypeError("content is a mapping of field names to values")
    if type(data) is dict:
        if data.keys() == _SAMPLE_KEYS:
            text = _sample_text(data)
            if text is not None:
                return text
        plain = _plain_form(data, True)
        if plain is not _NO:
            return _dumps(plain)
    return _mapping(data, ())


_NO = object()  # "no plain form": use the reference walk
_INT_LIMIT = 10**_PLAIN_EXPONENT  # smaller integers print plainly in both spellings
_dumps = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def _plain_form(value: dict, top: bool) -> Any:
    """``value`` with dropped keys removed, integral floats as ints and ``media`` sorted; or ``_NO``."""
    dropped = SERVER_MADE if top else DERIVED_NESTED
    out = {}
    for key, item in value.items():
        if type(key) is not str:
            return _NO
        if key in dropped:
            continue
        kind = type(item)
        if kind is str or item is None or kind is bool:
            out[key] = item
            continue
        item = _plain_value(item, kind)
        if item is _NO:
            return _NO
        if top and key in UNORDERED_LISTS and type(item) is list:
            item = sorted(item, key=_dumps)
        out[key] = item
    return out


# A validated sample (``samples.validation``), the shape of every pushed record: its canonical
# text is written field by field in sorted key order, exactly what ``_dumps`` makes of its plain
# form (the same C string escaper, ``int``/``float`` reprs). Anything unusual in it (a media
# manifest, a value of another type, a float without a plain spelling) answers None and takes
# the general path.
_SAMPLE_KEYS = frozenset({"code", "parcel", "collected_at", "location", "depth_top_cm", "depth_bottom_cm",
                          "sample_type", "land_use_observed", "note", "media"})
_LOCATION_KEYS = frozenset({"lat", "lon", "accuracy_m", "mock", "raw"})
_LOCATION_NEEDED = _LOCATION_KEYS - {"raw"}
_escape = json.encoder.encode_basestring_ascii
_LITERALS = {None: "null", True: "true", False: "false"}


def _sample_text(data: dict) -> str | None:
    media = data["media"]
    if media is None:
        media_text = "null"
    elif type(media) is list and not media:
        media_text = "[]"
    else:
        return None
    texts = []
    for name in ("code", "collected_at", "land_use_observed", "note", "parcel", "sample_type"):
        value = data[name]
        if type(value) is str:
            texts.append(_escape(value))
        elif value is None:
            texts.append("null")
        else:
            return None
    bottom, top = _number_text(data["depth_bottom_cm"]), _number_text(data["depth_top_cm"])
    if bottom is None or top is None:
        return None
    loc = data["location"]
    if loc is None:
        loc_text = "null"
    else:
        if type(loc) is not dict or loc.keys() - _LOCATION_KEYS or not _LOCATION_NEEDED <= loc.keys():
            return None
        accuracy, lat, lon = _number_text(loc["accuracy_m"]), _number_text(loc["lat"]), _number_text(loc["lon"])
        mock = loc["mock"]
        if accuracy is None or lat is None or lon is None or (mock is not None and type(mock) is not bool):
            return None
        loc_text = f'{{"accuracy_m":{accuracy},"lat":{lat},"lon":{lon},"mock":{_LITERALS[mock]}}}'
    code, collected_at, land_use, note, parcel, sample_type = texts
    return (f'{{"code":{code},"collected_at":{collected_at},"depth_bottom_cm":{bottom},"depth_top_cm":{top},'
            f'"land_use_observed":{land_use},"location":{loc_text},"media":{media_text},"note":{note},'
            f'"parcel":{parcel},"sample_type":{sample_type}}}')


def _number_text(value: Any) -> str | None:
    """The canonical text of a number or null; None for anything else (or a number without a plain form)."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is float:  # _plain_value's rule, spelled once: the repr is made a single time
        text = float.__repr__(value)
        if "e" in text or "n" in text:
            return None
        return int.__repr__(int(value)) if text.endswith(".0") else text
    if kind is not int:
        return None
    return int.__repr__(value) if -_INT_LIMIT < value < _INT_LIMIT else None


def _plain_value(item: Any, kind: type) -> Any:
    if kind is str or item is None or kind is bool:
        return item
    if kind is int:
        return item if -_INT_LIMIT < item < _INT_LIMIT else _NO
    if kind is float:
        text = repr(item)
        if "e" in text or "n" in text:  # exponent, nan, inf: the reference walk decides
            return _NO
        return int(item) if text.endswith(".0") else item
    if kind is dict:
        return _plain_form(item, False)
    if kind is list:
        items = [_plain_value(v, type(v)) for v in item]
        return _NO if any(v is _NO for v in items) else items
    return _NO


def canonical_field(name: str, value: Any) -> str:
    """Canonical text of one top-level field, so merge compares fields the way the hash does."""
    return _encode(value, (name,))


def _encode(value: Any, path: tuple[str, ...]) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return canonical_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, Mapping):
        return _mapping(value, path)
    if isinstance(value, list | tuple):
        items = [_encode(item, (*path, "[]")) for item in value]
        if path in {(name,) for name in UNORDERED_LISTS}:
            items.sort()
        return "[" + ",".join(items) + "]"
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def _mapping(value: Mapping[Any, Any], path: tuple[str, ...]) -> str:
    dropped = SERVER_MADE if not path else DERIVED_NESTED
    parts = []
    for key in value:
        if not isinstance(key, str):
            raise TypeError("object keys must be strings")
    for key in sorted(value):
        if key not in dropped:
            parts.append(json.dumps(key, ensure_ascii=True) + ":" + _encode(value[key], (*path, key)))
    return "{" + ",".join(parts) + "}"


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
