"""Check a pushed sample's ``data``: what is wrong (errors) and what is suspicious (flags).

The two are kept apart on purpose. An *error* makes the record ``rejected`` and the phone
must fix it; a *flag* keeps the record and marks it for an official. Phones turn garbage
into ``0 0``, samplers accept 3 km fixes and mock locations report accuracy 0 (ANCHORS
part 1, lesson 12), so coordinates are parsed strictly, the raw values are kept, and
anything plausible but odd is flagged rather than guessed at. Device clocks are stored and
judged, never used for ordering (lesson 7).

Normalisation, decided here once:
- ``code`` (the bag barcode): NFKC (full-width input from Chinese keyboards becomes
  ASCII), stripped, upper-cased (scanners and hand typing disagree on case; barcodes
  don't), then ``[A-Z0-9][A-Z0-9._/-]*``.
- ``parcel``: NFKC and stripped, case kept (the places module owns its codes).
- ``sample_type`` and ``land_use_observed``: stripped and lower-cased.
- ``note``: NFC, stripped; empty becomes None so ``""`` and ``null`` are one value.
- numbers: JSON numbers or numeric strings, ``.`` or a decimal comma (``"28,123"``), no
  exponents or thousands separators; integral values become ``int``, others ``float``.
- ``media[].sha256`` and ``mime``: lower-cased.
- ``collected_at`` stays the device's string, verbatim; its parsed UTC value is
  ``ValidatedSample.collected_at_utc``.
- ``extra`` (answers to the uploaded form extension, DESIGN §4.3): an object of question name →
  answer; null answers and an empty object are left out, so a sample without answers has the
  content (and content hash) it always had. Only its shape is checked here (this layer knows no
  form); the answers are typed against ``extension_version`` by the sync layer.
- every string must be valid Unicode without control characters (PostgreSQL refuses NUL
  and lone surrogates; a 500 at insert time is worse than a 422 now).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from fieldsvc.errors import Problem, validation_failed
from fieldsvc.samples.content import to_decimal

SAMPLE_TYPES = ("composite", "single_point", "topsoil", "subsoil", "profile", "sediment")
LAND_USES = ("dryland", "paddy", "vegetable", "orchard", "tea", "grassland", "paddy_dryland_rotation")
FIELDS = (
    "code",
    "parcel",
    "collected_at",
    "location",
    "depth_top_cm",
    "depth_bottom_cm",
    "sample_type",
    "land_use_observed",
    "note",
    "media",
)
REQUIRED = ("code", "parcel", "collected_at", "location", "depth_top_cm", "depth_bottom_cm", "sample_type")
LOCATION_FIELDS = ("lat", "lon", "accuracy_m", "mock")
MEDIA_FIELDS = ("name", "sha256", "bytes", "mime")
EXTRA_FIELDS = ("extra", "extension_version")  # optional; in ``clean`` only when there are answers
MAX_EXTRA_ANSWERS = 50
_EXTRA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
FLAG_ORDER = ("null_island", "low_accuracy", "mock_location", "location_mismatch", "clock_skew")

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)")
_CODE = re.compile(r"[A-Z0-9][A-Z0-9._/-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_NAIVE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")
_MAX_ACCURACY_M = 20_000_000  # half the equator; anything larger is not a GPS fix


@dataclass(frozen=True)
class SampleRules:
    """Thresholds for checking samples; the defaults are the service's defaults."""

    low_accuracy_m: float = 30
    location_buffer_m: float = 20
    clock_skew_s: float = 600
    max_note_chars: int = 2000
    max_media: int = 20
    max_media_bytes: int = 2**32
    max_code_chars: int = 64
    max_name_chars: int = 255
    depth_min_cm: float = 0
    depth_max_cm: float = 300
    sample_types: tuple[str, ...] = SAMPLE_TYPES
    land_uses: tuple[str, ...] = LAND_USES
    earliest_collected_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    require_location: bool = True


class ValidatedSample(NamedTuple):
    """The outcome of ``validate_sample_data``; ``clean`` is only trustworthy when ``ok``. (A tuple:
    one is made for every pushed record, and a frozen dataclass took ~1 µs to build.)"""

    clean: dict[str, Any]
    errors: dict[str, list[str]]
    flags: list[str]
    collected_at_utc: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def problem(self) -> Problem:
        """The 422 ``validation_failed`` an API client sees for this sample."""
        return validation_failed(self.errors, "Sample is invalid.")


class _Invalid(ValueError):
    """One field's value is unusable; the message is meant for the sampler."""


# ---------------------------------------------------------------- the whole record


def validate_sample_data(data: Any, rules: SampleRules) -> ValidatedSample:
    """Check and normalise a pushed sample's ``data``. Never raises for any JSON value.

    One pass, every field checked on its own and every error collected and worded. It is on the
    push path of every record (``bench/sync.py``), so the field checks call each other directly and
    each takes the usual input (printable ASCII, a plain JSON number) first; there is no second,
    faster copy of these rules.
    """
    if not isinstance(data, Mapping):
        return ValidatedSample({}, {"data": ["Must be an object."]}, [])
    errors: dict[str, list[str]] = {}
    get = data.get
    if not data.keys() <= _FIELD_SET:
        for key in data:
            if key not in _FIELD_SET:
                _add(errors, str(key), "Unknown field.")
    raw_code, raw_parcel, raw_time, raw_location = get("code"), get("parcel"), get("collected_at"), get("location")
    raw_top, raw_bottom, raw_type = get("depth_top_cm"), get("depth_bottom_cm"), get("sample_type")
    if None in (raw_code, raw_parcel, raw_time, raw_location, raw_top, raw_bottom, raw_type):
        for name in REQUIRED if rules.require_location else _REQUIRED_WITHOUT_LOCATION:
            if get(name) is None:
                _add(errors, name, "Is required.")

    raw_use, raw_note = get("land_use_observed"), get("note")
    try:  # the usual record, every field given and fine: the checks called directly, under one try
        code = None if raw_code is None else _clean_code(raw_code, rules)
        parcel = None if raw_parcel is None else _clean_parcel(raw_parcel)
        top = None if raw_top is None else _depth(raw_top, rules)
        bottom = None if raw_bottom is None else _depth(raw_bottom, rules)
        sample_type = None if raw_type is None else _choice(raw_type, rules.sample_types)
        land_use = None if raw_use is None else _choice(raw_use, rules.land_uses)
        note = None if raw_note is None else _clean_note(raw_note, rules)
    except _Invalid:  # some field is bad: each check again through _field, which words its error
        code = _field(raw_code, _clean_code, "code", errors, rules)
        parcel = _field(raw_parcel, _clean_parcel, "parcel", errors)
        collected_at, collected_at_utc = _collected_at(raw_time, errors)  # (errors keep the fields' order)
        top = _field(raw_top, _depth, "depth_top_cm", errors, rules)
        bottom = _field(raw_bottom, _depth, "depth_bottom_cm", errors, rules)
        sample_type = _field(raw_type, _choice, "sample_type", errors, rules.sample_types)
        land_use = _field(raw_use, _choice, "land_use_observed", errors, rules.land_uses)
        note = _field(raw_note, _clean_note, "note", errors, rules)
    else:
        collected_at, collected_at_utc = _collected_at(raw_time, errors)
    location = _clean_location(raw_location, errors)
    media = _clean_media(get("media"), rules, errors)
    if top is not None and bottom is not None and not top < bottom:
        _add(errors, "depth_bottom_cm", "Must be greater than depth_top_cm.")

    clean = {"code": code, "parcel": parcel, "collected_at": collected_at, "location": location,
             "depth_top_cm": top, "depth_bottom_cm": bottom, "sample_type": sample_type,
             "land_use_observed": land_use, "note": note, "media": media}
    if "extra" in data or "extension_version" in data:
        _clean_extra(get("extra"), get("extension_version"), clean, errors)
    return ValidatedSample(clean, errors, _location_record_flags(location, rules), collected_at_utc)


_FIELD_SET = frozenset((*FIELDS, *EXTRA_FIELDS))
_REQUIRED_WITHOUT_LOCATION = tuple(f for f in REQUIRED if f != "location")


def _field(value: Any, check: Any, name: str, errors: dict[str, list[str]], *args: Any) -> Any:
    """``check(value, *args)``, or None with the check's message recorded under ``name``."""
    if value is None:
        return None
    try:
        return check(value, *args)
    except _Invalid as exc:
        _add(errors, name, str(exc))
        return None


def _add(errors: dict[str, list[str]], name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def _clean_extra(extra: Any, version: Any, clean: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """The shape of ``extra`` and ``extension_version``; both go into ``clean`` only when some
    answer is given. Answers keep their JSON values here; their types are the form's business."""
    if extra is not None and not isinstance(extra, Mapping):
        return _add(errors, "extra", "Must be an object of question name to answer.")
    answers = {k: v for k, v in (extra or {}).items() if v is not None and v != "" and v != []}
    bad = [k for k in answers if not isinstance(k, str) or not _EXTRA_NAME.fullmatch(k)]
    for key in bad:
        _add(errors, f"extra.{key}", "Unknown question name.")
    if len(answers) > MAX_EXTRA_ANSWERS:
        _add(errors, "extra", f"At most {MAX_EXTRA_ANSWERS} answers.")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        return _add(errors, "extension_version", "Must be the form extension's version number (>= 1).")
    if not answers:
        return None
    if version is None:
        return _add(errors, "extension_version", "Is required with extra (the version the answers were given in).")
    clean["extra"] = answers
    clean["extension_version"] = version
    return None


def _location_record_flags(location: dict[str, Any] | None, rules: SampleRules) -> list[str]:
    if location is None:
        return []
    flags = location_flags(location["lat"], location["lon"], location["accuracy_m"], None, rules)
    if location["mock"]:
        flags.append("mock_location")
    return order_flags(flags)


def order_flags(flags: list[str]) -> list[str]:
    """Flags without repeats in one fixed order, so equal records store equal flag lists."""
    if len(flags) < 2:  # most records: nothing to order (a new list all the same)
        return list(flags)
    return sorted(set(flags), key=_flag_rank)


def _flag_rank(flag: str) -> tuple[int, str]:
    return (FLAG_ORDER.index(flag) if flag in FLAG_ORDER else len(FLAG_ORDER), flag)


# ---------------------------------------------------------------- text fields


def _text(value: Any, *, form: str = "NFKC", multiline: bool = False) -> str:
    """A stripped, normalised string; refuses what a database or a label printer would choke on."""
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    if value.isascii() and value.isprintable():
        return value.strip()  # the common case: NFC/NFKC leave printable ASCII as it is, no controls
    return _other_text(value, form, multiline)


def _other_text(value: str, form: str, multiline: bool) -> str:
    """``_text`` of anything but printable ASCII (a function of its own: the common case above then
    makes no closure cell for the check below, ~0.3 µs of each of a record's five strings)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("Must be valid Unicode text.") from None
    text = unicodedata.normalize(form, value).strip()
    if text.isprintable():  # printable text has no control (Cc) characters
        return text
    allowed = "\n\r\t" if multiline else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise _Invalid("Must not contain control characters.")
    return text


def _clean_code(value: Any, rules: SampleRules) -> str:
    code = _text(value).upper()
    if not code:
        raise _Invalid("Must not be empty.")
    if len(code) > rules.max_code_chars:
        raise _Invalid(f"Must be at most {rules.max_code_chars} characters.")
    if not _CODE.fullmatch(code):
        raise _Invalid("Use letters, digits and . _ / - only, starting with a letter or digit.")
    return code


def _clean_parcel(value: Any) -> str:
    text = _text(value)
    if not text:
        raise _Invalid("Must not be empty.")
    if len(text) > 64 or len(text.split(maxsplit=1)) > 1:  # (stripped: more than one word = a space inside)
        raise _Invalid("Must be a parcel code: at most 64 characters, no spaces.")
    return text


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    text = _text(value).lower()
    if text not in allowed:
        raise _Invalid(f"Must be one of: {', '.join(allowed)}.")
    return text


def _clean_note(value: Any, rules: SampleRules) -> str | None:
    text = _text(value, form="NFC", multiline=True)
    if len(text) > rules.max_note_chars:
        raise _Invalid(f"Must be at most {rules.max_note_chars} characters.")
    return text or None


def _collected_at(value: Any, errors: dict[str, list[str]]) -> tuple[str | None, datetime | None]:
    """The device's string verbatim and its UTC moment (parsed once)."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        _add(errors, "collected_at", "Must be an RFC 3339 time string.")
        return None, None
    try:
        return value, parse_rfc3339(value)
    except ValueError as exc:
        _add(errors, "collected_at", str(exc))
        return None, None


def _clean_collected_at(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("Must be an RFC 3339 time string.")
    try:
        parse_rfc3339(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return value


# ---------------------------------------------------------------- numbers


def parse_number(value: Any) -> Decimal:
    """Strictly parse a JSON number or a numeric string (``.`` or a decimal comma).

    Raises ValueError for booleans, NaN, infinities, empty strings, exponents and
    anything else; the Decimal is exact, so range checks never meet float overflow.
    """
    if isinstance(value, bool) or value is None:
        raise _Invalid("Must be a number.")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | Decimal):
        number = to_decimal(value)
        if not number.is_finite():
            raise _Invalid("Must be a finite number.")
        return number
    if not isinstance(value, str):
        raise _Invalid("Must be a number.")
    text = _text(value)
    if not text:
        raise _Invalid("Must be a number, not an empty string.")
    if not _NUMBER.fullmatch(text):
        raise _Invalid("Must be a number like 28.123 or 28,123.")
    return Decimal(text.replace(",", "."))


def _plain_number(number: Decimal) -> int | float:
    """``int`` when integral so JSON shows ``20`` rather than ``20.0``."""
    return int(number) if number == number.to_integral_value() else float(number)


def _bounded(value: Any, low: float, high: float) -> Decimal:
    number = parse_number(value)
    if not low <= number <= high:
        raise _Invalid(f"Must be between {low:g} and {high:g}.")
    return number


def _depth(value: Any, rules: SampleRules) -> int | float:
    low, high = rules.depth_min_cm, rules.depth_max_cm
    kind = type(value)
    if kind is int and type(low) is int and type(high) is int:  # the usual depth: whole centimetres
        if low <= value <= high:
            return value
    elif _integral(low) and _integral(high):
        fast = _fast_bounded(value, low, high)
        if fast is not None:
            return int(fast) if type(fast) is float and fast.is_integer() else fast
    return _plain_number(_bounded(value, low, high))


def _fast_bounded(value: Any, low: int | float, high: int | float) -> int | float | None:
    """A JSON int or finite float within ``low``..``high``, as itself; None: take the exact Decimal path.

    The bounds must be integral (the callers check what is not a constant). Same answer as ``_bounded``:
    the shortest decimal of a float lies in its rounding interval, which holds no other float, so
    comparing the float with an integral bound orders it like its Decimal.
    """
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return value if low <= value <= high else None
    return None


def _integral(bound: Any) -> bool:
    return type(bound) is int or (type(bound) is float and bound.is_integer())


# ---------------------------------------------------------------- location


def _clean_location(value: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        _add(errors, "location", "Must be an object with lat and lon.")
        return None
    if not value.keys() <= _LOCATION_SET:
        for key in value:
            if key not in _LOCATION_SET:
                _add(errors, f"location.{key}", "Unknown field.")
    get = value.get
    raw_lat, raw_lon, raw_accuracy, mock = get("lat"), get("lon"), get("accuracy_m"), get("mock")
    if raw_lat is None:
        _add(errors, "location.lat", "Is required.")
    if raw_lon is None:
        _add(errors, "location.lon", "Is required.")
    lat = _coordinate(raw_lat, -90, 90, "location.lat", errors)
    lon = _coordinate(raw_lon, -180, 180, "location.lon", errors)
    if lat is None and lon is not None:
        _hint_swapped(value, errors)
    accuracy = _fast_bounded(raw_accuracy, 0, _MAX_ACCURACY_M)
    if accuracy is not None:
        accuracy = int(accuracy) if type(accuracy) is float and accuracy.is_integer() else accuracy
    else:
        accuracy = _field(raw_accuracy, _bounded, "location.accuracy_m", errors, 0, _MAX_ACCURACY_M)
        accuracy = None if accuracy is None else _plain_number(accuracy)
    if mock is not None and type(mock) is not bool:
        mock = _field(mock, _boolean, "location.mock", errors)
    return {
        "lat": lat,
        "lon": lon,
        "accuracy_m": accuracy,
        "mock": bool(mock),
        "raw": {key: _raw(value[key]) for key in LOCATION_FIELDS if key in value},
    }


_LOCATION_SET = frozenset(LOCATION_FIELDS)


def _coordinate(value: Any, low: int, high: int, name: str, errors: dict[str, list[str]]) -> float | None:
    fast = _fast_bounded(value, low, high)
    if fast is not None:
        return float(fast)
    number = _field(value, _bounded, name, errors, low, high)
    return None if number is None else float(number)


def _hint_swapped(value: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    """A latitude beyond ±90 with a longitude that would fit as one: say so, don't fix it."""
    if "location.lat" not in errors or "location.lon" in errors:
        return
    try:
        lat, lon = parse_number(value.get("lat")), parse_number(value.get("lon"))
    except _Invalid:
        return
    if 90 < abs(lat) <= 180 and abs(lon) <= 90:
        _add(errors, "location.lat", "lat and lon look swapped.")


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("Must be true or false.")
    return value


def _raw(value: Any) -> Any:
    kind = type(value)
    if kind is bool or kind is int or kind is str or value is None or (kind is float and math.isfinite(value)):
        return value
    return _json_safe(value)


def _json_safe(value: Any) -> Any:
    """The raw value as sent, except NaN/inf (which JSON columns refuse) become their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def location_flags(
    lat: float | Decimal | None,
    lon: float | Decimal | None,
    accuracy_m: float | Decimal | None,
    distance_to_parcel_m: float | Decimal | None,
    rules: SampleRules,
) -> list[str]:
    """Flags a valid fix earns: ``null_island``, ``low_accuracy``, ``location_mismatch``.

    Unknown accuracy counts as low (a fix that can't say how good it is isn't trusted) and
    as 0 m for the parcel check. ``distance_to_parcel_m`` is 0 inside the parcel and None
    when the parcel's shape is unknown (then no mismatch can be judged). Comparisons are
    made on Decimals so that exactly ``accuracy + buffer`` is not a mismatch.
    """
    if lat is None or lon is None:
        return []
    if (_finite(lat) and _finite(lon) and (accuracy_m is None or (_finite(accuracy_m) and accuracy_m >= 0))
            and (distance_to_parcel_m is None or (distance_to_parcel_m == 0 and _finite(distance_to_parcel_m)))
            and _finite(rules.low_accuracy_m) and _finite(rules.location_buffer_m) and rules.location_buffer_m >= 0):
        # Plain numbers (every pushed record): Python compares ints and finite floats exactly and in
        # the same order as their shortest-repr Decimals, and a point inside its parcel (distance 0)
        # never lies beyond accuracy (>= 0) + buffer (>= 0). Same answer as the Decimal path below.
        flags = ["null_island"] if lat == 0 and lon == 0 else []
        if accuracy_m is None or accuracy_m > rules.low_accuracy_m:
            flags.append("low_accuracy")
        return flags
    flags = []
    if to_decimal(lat) == 0 and to_decimal(lon) == 0:
        flags.append("null_island")
    if accuracy_m is None or to_decimal(accuracy_m) > to_decimal(rules.low_accuracy_m):
        flags.append("low_accuracy")
    if distance_to_parcel_m is not None:
        allowed = to_decimal(accuracy_m or 0) + to_decimal(rules.location_buffer_m)
        if to_decimal(distance_to_parcel_m) > allowed:
            flags.append("location_mismatch")
    return flags


def _finite(value: Any) -> bool:
    """An int (not a bool) or a finite float."""
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


# ---------------------------------------------------------------- media manifest


def _clean_media(value: Any, rules: SampleRules, errors: dict[str, list[str]]) -> list[dict[str, Any]] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        _add(errors, "media", "Must be a list of {name, sha256, bytes, mime}.")
        return None
    if len(value) > rules.max_media:
        _add(errors, "media", f"At most {rules.max_media} files per sample.")
        return None
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        cleaned = _media_item(item, f"media.{index}", rules, errors)
        sha = cleaned.get("sha256") if cleaned else None
        if sha is not None and sha in seen:
            _add(errors, f"media.{index}.sha256", f"Same file as media.{seen[sha]}.")
        elif sha is not None:
            seen[sha] = index
        if cleaned is not None:
            items.append(cleaned)
    return items


def _media_item(
    item: Any, prefix: str, rules: SampleRules, errors: dict[str, list[str]]
) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        _add(errors, prefix, "Must be an object with name, sha256, bytes and mime.")
        return None
    for key in item:
        if key not in MEDIA_FIELDS:
            _add(errors, f"{prefix}.{key}", "Unknown field.")
    for key in MEDIA_FIELDS:
        if item.get(key) is None:
            _add(errors, f"{prefix}.{key}", "Is required.")
    get = item.get
    return {
        "name": _field(get("name"), _media_name, f"{prefix}.name", errors, rules),
        "sha256": _field(get("sha256"), _pattern, f"{prefix}.sha256", errors, _SHA256, _SHA256_MESSAGE),
        "bytes": _field(get("bytes"), _size, f"{prefix}.bytes", errors, rules),
        "mime": _field(get("mime"), _pattern, f"{prefix}.mime", errors, _MIME, _MIME_MESSAGE),
    }


_SHA256_MESSAGE = "Must be 64 hex digits (SHA-256)."
_MIME_MESSAGE = "Must be a media type like image/jpeg."


def _media_name(value: Any, rules: SampleRules) -> str:
    name = _text(value, form="NFC")
    if not name or len(name) > rules.max_name_chars:
        raise _Invalid(f"Must be 1 to {rules.max_name_chars} characters.")
    if "/" in name or "\\" in name:
        raise _Invalid("Must be a file name, not a path.")
    return name


def _pattern(value: Any, pattern: re.Pattern[str], message: str) -> str:
    text = _text(value).lower()
    if not pattern.fullmatch(text) or not text.isascii():
        raise _Invalid(message)
    return text


def _size(value: Any, rules: SampleRules) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid("Must be a whole number of bytes.")
    if not 0 < value <= rules.max_media_bytes:
        raise _Invalid(f"Must be between 1 and {rules.max_media_bytes} bytes.")
    return value


# ---------------------------------------------------------------- time


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or ``±hh:mm``) to an aware UTC datetime.

    Naive times are refused: a phone's local time without its offset cannot be placed.
    Digits beyond microseconds are cut; a leap second becomes ``:59.999999``.
    Raises ValueError with a message fit for the sampler.
    """
    match = _RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        if isinstance(text, str) and _looks_naive(text):
            raise ValueError("Needs a time zone: end with Z or an offset like +08:00.")
        raise ValueError("Must be an RFC 3339 time like 2024-05-01T08:30:00+08:00.")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if second != "60" and (zulu or (off_h < "24" and off_m < "60")):
        try:  # the usual stamp, already checked by the pattern: the C parser (same moment, same cut)
            return datetime.fromisoformat(match.group(0)).astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # (a lowercase z, an impossible date): the exact path below decides and words the error
    offset = timedelta(0) if zulu else _offset(sign, off_h, off_m)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    leap = second == "60"
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            59 if leap else int(second),
            999999 if leap else micro,
            tzinfo=timezone(offset),
        )
        moment = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("Is not a real date and time.") from None
    return moment


def _offset(sign: str, hours: str, minutes: str) -> timedelta:
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError("Has an impossible time zone offset.")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return -delta if sign == "-" else delta


def _looks_naive(text: str) -> bool:
    return _NAIVE.fullmatch(text.strip()) is not None


def _utc(moment: datetime) -> datetime:
    """Server times are UTC; a naive one from the database is read as UTC."""
    tz = moment.tzinfo
    if tz is UTC:
        return moment  # (parsed times are UTC already: no new object)
    return moment.replace(tzinfo=UTC) if tz is None else moment.astimezone(UTC)


def estimate_skew(device_sent_at: str | None, server_time: datetime) -> float | None:
    """Seconds the device clock is ahead of the server (device − server) for one batch.

    ``device_sent_at`` is stamped when the phone sends, ``server_time`` when the server
    receives, so the estimate also carries the upload time (negative, seconds on a slow
    link); the skew threshold is far above that. None when the phone sent no usable time.
    """
    if not isinstance(device_sent_at, str):
        return None
    try:
        device = parse_rfc3339(device_sent_at)
    except ValueError:
        return None
    return (device - _utc(server_time)).total_seconds()


def time_flags(
    collected_at: datetime | str | None,
    skew_s: float | None,
    server_time: datetime,
    rules: SampleRules,
) -> list[str]:
    """``clock_skew`` when the batch skew or the collection time itself is implausible.

    Implausible: |skew| above ``rules.clock_skew_s`` (exactly at it is fine), collected
    before ``rules.earliest_collected_at`` (a phone in 1980), or later than the server's
    time plus the threshold.
    """
    threshold = timedelta(seconds=rules.clock_skew_s)
    collected = _as_time(collected_at)
    skewed = skew_s is not None and abs(skew_s) > rules.clock_skew_s
    if collected is not None:
        too_early = collected < rules.earliest_collected_at
        skewed = skewed or too_early or collected > _utc(server_time) + threshold
    return ["clock_skew"] if skewed else []


def correct_collected_at(
    collected_at: datetime | str | None, skew_s: float | None, rules: SampleRules
) -> datetime | None:
    """Best estimate of the true collection time, offered as ``collected_at_corrected``.

    The batch skew is subtracted only when it exceeds the threshold (below it, the
    estimate is mostly upload time, not clock error). It assumes the clock was as wrong
    when the sample was taken as when it was sent, which a phone that has since fixed its
    clock breaks; that is why the raw value is kept and this is only ever an offer.
    None when there is no usable time or no skew estimate.
    """
    collected = _as_time(collected_at)
    if collected is None or skew_s is None:
        return None
    if abs(skew_s) <= rules.clock_skew_s:
        return collected
    try:
        return collected - timedelta(seconds=skew_s)
    except OverflowError:
        return None


def _as_time(value: datetime | str | None) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            return None
    return None


__all__ = [
    "FIELDS",
    "LAND_USES",
    "SAMPLE_TYPES",
    "SampleRules",
    "ValidatedSample",
    "correct_collected_at",
    "estimate_skew",
    "location_flags",
    "order_flags",
    "parse_number",
    "parse_rfc3339",
    "time_flags",
    "validate_sample_data",
]
