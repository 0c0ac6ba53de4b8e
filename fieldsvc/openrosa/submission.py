"""Parse an OpenRosa submission (the XForm instance XML) into a sync record. Pure: no Flask, no database.

Safety: the XML goes through expat with every DOCTYPE refused, so no entity can be declared:
no external entities (XXE), no entity expansion (billion laughs), no DTD fetched. A real
submission never carries a DOCTYPE. Depth and size are capped.

The fields carry the names of a pushed sample's ``data`` (DESIGN §3, §4.3); the result's
``data`` is what ``POST /api/v1/sync/push`` would get, minus ``media`` (the XML names photo
files; their SHA-256 is known only when the parts arrive, so the service builds the manifest).
Values are passed on as text where the push validation parses text (depths, choices), so one
set of rules judges both paths; the geopoint is split here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from fieldsvc.errors import Problem

MAX_XML_BYTES = 1024 * 1024  # a soil-sample instance is ~1 KB; this leaves room for long notes
MAX_DEPTH = 32
TEXT_FIELDS = ("code", "parcel", "collected_at", "depth_top_cm", "depth_bottom_cm", "sample_type",
               "land_use_observed", "note")
PHOTO_FIELDS = ("photo1", "photo2", "photo3")
PARCEL_INPUTS = ("parcel_pick", "parcel_other")  # the select-from-file question and its free-text fallback
EXTRA_GROUP = "extra"
FORM_FIELDS = (*TEXT_FIELDS[:2], *PARCEL_INPUTS, "location", *TEXT_FIELDS[2:], *PHOTO_FIELDS, EXTRA_GROUP, "meta")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INSTANCE_ID = re.compile(r"uuid:(.+)", re.IGNORECASE)


class XmlRefused(ValueError):
    """The document declares a DTD or entities, or is too deep: refused, never expanded."""


@dataclass(frozen=True)
class Submission:
    """One parsed instance: the sample id, the push ``data`` (without media) and the photo file names."""

    id: str
    form_id: str | None
    form_version: str | None
    data: dict[str, Any]
    photos: dict[str, str] = field(default_factory=dict)  # photo1 → "1700000000123.jpg"
    deprecated_id: str | None = None  # an edit (Collect ≥ v2025.2): the instance it replaces
    extra: dict[str, str] = field(default_factory=dict)  # the ``extra`` group's answers, as text

    @property
    def record(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data}


def invalid(fields: dict[str, list[str]], message: str = "The submission is invalid.") -> Problem:
    return Problem(400, "invalid_submission", message, fields=fields)


# --- safe XML --------------------------------------------------------------------------------

def parse_xml(raw: bytes) -> Element:
    """Parse ``raw`` into an Element tree with namespaces stripped; refuses DOCTYPE and entities.

    :raise XmlRefused: a DTD, an entity declaration, or nesting deeper than ``MAX_DEPTH``.
    :raise ValueError: not well-formed XML.
    """
    if len(raw) > MAX_XML_BYTES:
        raise XmlRefused(f"the XML is larger than {MAX_XML_BYTES} bytes")
    builder = TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = [0]

    def refuse(*_args: Any) -> None:
        raise XmlRefused("DOCTYPE and entity declarations are not accepted")

    def start(name: str, attrs: dict[str, str]) -> None:
        depth[0] += 1
        if depth[0] > MAX_DEPTH:
            raise XmlRefused(f"elements nested deeper than {MAX_DEPTH}")
        builder.start(_local(name), {_local(k): v for k, v in attrs.items()})

    def end(name: str) -> None:
        depth[0] -= 1
        builder.end(_local(name))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {expat.ErrorString(exc.code)} (line {exc.lineno})") from None
    return builder.close()


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _text(element: Element | None) -> str | None:
    """The element's text; empty (an unanswered question) is None."""
    if element is None:
        return None
    text = "".join(element.itertext())
    return text if text.strip() else None


# --- geopoint ----------------------------------------------------------------------------------

def parse_geopoint(text: str | None) -> dict[str, Any] | None:
    """``"lat lon [altitude [accuracy]]"`` (ODK geopoint) → ``{lat, lon, accuracy_m}``.

    Numbers are parsed strictly (no NaN, no exponent); range checks stay with the sample
    validation so that a push and a submission get the same messages. The altitude has no
    place in a sample and is dropped. A missing accuracy stays None (the sample is then
    flagged ``low_accuracy``).
    :raise ValueError: not 2 to 4 numbers.
    """
    if text is None or not text.strip():
        return None
    parts = text.split()
    if not 2 <= len(parts) <= 4:
        raise ValueError("Must be 'latitude longitude [altitude [accuracy]]'.")
    numbers = []
    for part in parts:
        if not _NUMBER.fullmatch(part):
            raise ValueError(f"{part!r} is not a number.")
        try:
            numbers.append(Decimal(part))
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise ValueError(f"{part!r} is not a number.") from None
    location: dict[str, Any] = {"lat": _plain(numbers[0]), "lon": _plain(numbers[1])}
    if len(numbers) == 4:
        location["accuracy_m"] = _plain(numbers[3])
    return location


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


# --- the instance ------------------------------------------------------------------------------

def parse_submission(raw: bytes, form_id: str | None = None) -> Submission:
    """Parse one submission XML.

    :raise Problem 400 xml_refused: DOCTYPE/entities (XXE, entity bombs) or too deep/large.
    :raise Problem 400 malformed_xml: not well-formed.
    :raise Problem 400 invalid_submission: another form, no ``meta/instanceID``, a bad geopoint,
        unknown fields; ``details.fields`` names them.
    """
    try:
        root = parse_xml(raw)
    except XmlRefused as exc:
        raise Problem(400, "xml_refused", f"The submission XML was refused: {exc}.") from None
    except ValueError as exc:
        raise Problem(400, "malformed_xml", f"The submission is not readable: {exc}.") from None
    errors: dict[str, list[str]] = {}
    found_id = root.get("id")
    if form_id is not None and found_id != form_id:
        errors["id"] = [f"this server takes the form {form_id!r}, not {found_id!r}"]
    children = {child.tag: child for child in root}
    for child in root:
        if child.tag not in FORM_FIELDS:
            errors.setdefault(child.tag, []).append("Unknown field (not in this form).")
    meta = root.find("meta")
    instance_id = _instance_id(meta, errors)
    deprecated_id = _deprecated_id(meta, errors)
    data: dict[str, Any] = {name: _text(children.get(name)) for name in TEXT_FIELDS}
    if data["parcel"] is None:  # a form without the calculate: the picked parcel, else the typed one
        data["parcel"] = _text(children.get("parcel_pick")) or _text(children.get("parcel_other"))
    extra = {}
    group = children.get(EXTRA_GROUP)
    for child in group if group is not None else ():
        if len(child):
            errors.setdefault(f"{EXTRA_GROUP}/{child.tag}", []).append("Must be a single value.")
        elif (value := _text(child)) is not None:
            extra[child.tag] = value.strip()
    try:
        data["location"] = parse_geopoint(_text(children.get("location")))
    except ValueError as exc:
        errors["location"] = [str(exc)]
    photos = {}
    for name in PHOTO_FIELDS:
        filename = _text(children.get(name))
        if filename is not None:
            photos[name] = filename.strip()
    if errors:
        raise invalid(errors)
    ordered = {k: data[k] for k in ("code", "parcel", "collected_at", "location", "depth_top_cm",
                                    "depth_bottom_cm", "sample_type", "land_use_observed", "note")}
    return Submission(instance_id, found_id, root.get("version"), ordered, photos,  # type: ignore[arg-type]
                      deprecated_id, extra)


def _instance_id(meta: Element | None, errors: dict[str, list[str]]) -> str | None:
    text = _text(meta.find("instanceID")) if meta is not None else None
    if text is None:
        errors["meta/instanceID"] = ["Is required (uuid:<UUID>)."]
        return None
    match = _INSTANCE_ID.fullmatch(text.strip())
    try:
        return str(uuid.UUID(match.group(1))) if match and len(text) <= 64 else _bad_id(errors)
    except ValueError:
        return _bad_id(errors)


def _deprecated_id(meta: Element | None, errors: dict[str, list[str]]) -> str | None:
    text = _text(meta.find("deprecatedID")) if meta is not None else None
    if text is None:
        return None
    match = _INSTANCE_ID.fullmatch(text.strip())
    try:
        if match and len(text) <= 64:
            return str(uuid.UUID(match.group(1)))
    except ValueError:
        pass
    errors["meta/deprecatedID"] = ["Must be uuid:<UUID>."]
    return None


def _bad_id(errors: dict[str, list[str]]) -> None:
    errors["meta/instanceID"] = ["Must be uuid:<UUID>."]
    return None
