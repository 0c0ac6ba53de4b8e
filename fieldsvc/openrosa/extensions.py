"""Custom questions from an uploaded XLSForm (DESIGN §4.3), added to the soil-sample form under ``extra``.

An official uploads an XLSForm (``.xlsx``); pyxform converts it, and its questions of the types
below become the ``extra`` group of the served form. Each upload is a new version (the form's
version says which: ``2.x<N>.<hash>``); a submission's ``extra`` answers are checked against the
version its form carried, by type, and kept with the sample version (``OpenRosaSubmission.extra``).

The core questions cannot be changed by an upload (422 naming the row): a row may repeat a core
question only as it is (same name and type, no constraint, relevance or calculation of its own);
a row that takes a core question's label under another name is a rename; an upload that repeats
some core questions (a copy of the form) must repeat them all, or one was removed. Rows that
repeat a core question are not added again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import date
from typing import Any, Mapping, Sequence

from sqlalchemy import func, select

from ..audit.services import Change, record
from ..auth.principal import Actor
from ..errors import Problem, validation_failed
from ..extensions import db
from .models import FormExtension
from .submission import invalid, parse_geopoint
from .xform import EXTENSION_TYPES, LABELS

MAX_XLSFORM_BYTES = 2 * 1024 * 1024
MAX_QUESTIONS = 50
MAX_TEXT_CHARS = 2000
# core question → its XLSForm type (pyxform's JSON names)
CORE: dict[str, str] = {
    "code": "barcode", "parcel_pick": "select one", "parcel_other": "text", "parcel": "calculate",
    "location": "geopoint", "depth_top_cm": "decimal", "depth_bottom_cm": "decimal",
    "sample_type": "select one", "land_use_observed": "select one", "note": "text",
    "photo1": "photo", "photo2": "photo", "photo3": "photo", "collected_at": "start",
}
RESERVED = {*CORE, "extra", "meta", "instanceID", "deprecatedID"}
# pyxform's JSON type → the extension type
_TYPES = {"text": "text", "integer": "integer", "decimal": "decimal", "select one": "select_one",
          "select all that apply": "select_multiple", "date": "date", "photo": "image", "geopoint": "geopoint"}
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FILE_NAME = re.compile(r"[^/\\\x00-\x1f]{1,255}")


def newest() -> FormExtension | None:
    return db.session.scalar(select(FormExtension).order_by(FormExtension.version.desc()).limit(1))


def get_version(version: int) -> FormExtension | None:
    return db.session.scalar(select(FormExtension).where(FormExtension.version == version))


def questions_of(version: int) -> list[dict[str, Any]]:
    extension = get_version(version)
    return list(extension.questions) if extension is not None else []


def all_questions() -> list[dict[str, Any]]:
    """Every question any extension version asked, once by name: the newest version's definition,
    in its order, then questions only older versions asked (their answers are still kept)."""
    seen: dict[str, dict[str, Any]] = {}
    for extension in db.session.scalars(select(FormExtension).order_by(FormExtension.version.desc())):
        for question in extension.questions:
            seen.setdefault(question["name"], question)
    return list(seen.values())


def extension_dict(extension: FormExtension) -> dict[str, Any]:
    from ..dbtypes import isoformat

    return {"version": extension.version, "filename": extension.filename, "sha256": extension.sha256,
            "questions": extension.questions, "created_by": extension.created_by,
            "created_at": isoformat(extension.created_at)}


# --- the upload ---------------------------------------------------------------------------------

def upload(filename: str, content: bytes, actor: Actor) -> tuple[FormExtension, bool]:
    """Convert and store an XLSForm as the next extension version; ``(extension, created)``.

    The same file again is the version it made (a retried upload adds no version).
    :raise 413: larger than ``MAX_XLSFORM_BYTES``. :raise 422: not an XLSForm pyxform can read, a
        question type not offered, or a core question changed (naming the row).
    """
    if len(content) > MAX_XLSFORM_BYTES:
        raise Problem(413, "payload_too_large", f"The XLSForm is larger than {MAX_XLSFORM_BYTES} bytes.",
                      max_bytes=MAX_XLSFORM_BYTES)
    sha = hashlib.sha256(content).hexdigest()
    same = db.session.scalar(select(FormExtension).where(FormExtension.sha256 == sha)
                             .order_by(FormExtension.version.desc()).limit(1))
    latest = newest()
    if same is not None and latest is not None and same.version == latest.version:
        return same, False
    rows = _survey_rows(content)
    survey = _convert(content)
    questions = _questions(survey, rows)
    version = (db.session.scalar(select(func.max(FormExtension.version))) or 0) + 1
    extension = FormExtension(version=version, filename=(filename or "form.xlsx")[:255], sha256=sha,
                              questions=questions, xform_json=json.dumps(survey, ensure_ascii=False),
                              created_by=actor.label)
    db.session.add(extension)
    db.session.flush()
    record(actor.label, Change("form_extension", str(version), "upload",
                               after={"filename": extension.filename, "sha256": sha,
                                      "questions": [q["name"] for q in questions]}))
    return extension, True


def _survey_rows(content: bytes) -> dict[str, int]:
    """name → spreadsheet row number of the ``survey`` sheet (for messages naming the row)."""
    import openpyxl

    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise validation_failed({"file": ["must be an XLSForm saved as .xlsx"]})
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise validation_failed({"file": ["is not a readable .xlsx workbook"]}) from None
    if "survey" not in book.sheetnames:
        raise validation_failed({"file": ["has no 'survey' sheet"]})
    rows = book["survey"].iter_rows(values_only=True)
    header = [str(c or "").strip().lower() for c in next(rows, ())]
    if "name" not in header:
        raise validation_failed({"file": ["the 'survey' sheet has no 'name' column"]})
    column = header.index("name")
    found: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if column < len(row) and row[column] is not None:
            found.setdefault(str(row[column]).strip(), number)
    book.close()
    return found


def _convert(content: bytes) -> dict[str, Any]:
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    try:
        result = convert(xlsform=content, file_type=".xlsx", form_name="data", validate=False)
    except PyXFormError as exc:
        raise validation_failed({"file": [f"pyxform could not convert it: {exc}"]}) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise validation_failed({"file": [f"pyxform could not convert it: {exc}"]}) from None
    return result._pyxform


def _row(rows: Mapping[str, int], name: str) -> str:
    return f"survey row {rows[name]}" if name in rows else "survey"


def _labels(node: Mapping[str, Any], key: str = "label") -> tuple[str, str]:
    """(English, Chinese) from pyxform's label (a string, or by language)."""
    value = node.get(key)
    if isinstance(value, str) or value is None:
        return (value or "", value or "")
    en = zh = ""
    for lang, text in value.items():
        if any(m in lang.lower() for m in ("zh", "chinese", "中文")):
            zh = zh or str(text)
        else:
            en = en or str(text)
    return (en or zh, zh or en)


def _questions(survey: Mapping[str, Any], rows: Mapping[str, int]) -> list[dict[str, Any]]:
    errors: dict[str, list[str]] = {}
    core_labels = {text.strip().lower(): name for name in CORE if name in LABELS for text in LABELS[name]}
    seen_core: list[str] = []
    questions: list[dict[str, Any]] = []
    for node in survey.get("children", []):
        name, kind = node.get("name"), node.get("type")
        if name == "meta" and kind == "group":
            continue
        where = _row(rows, name)
        if name in CORE:
            seen_core.append(name)
            bind = node.get("bind") or {}
            if kind != CORE[name]:
                errors.setdefault(where, []).append(
                    f"'{name}' is a core question ({CORE[name]}); an upload cannot change its type")
            if any(k in bind for k in ("constraint", "relevant", "calculate")) or node.get("calculation"):
                errors.setdefault(where, []).append(
                    f"'{name}' is a core question; an upload cannot change its bindings")
            continue
        if name in RESERVED:
            errors.setdefault(where, []).append(f"'{name}' is reserved by the soil-sample form")
            continue
        en, zh = _labels(node)
        renamed = core_labels.get(en.strip().lower()) or core_labels.get(zh.strip().lower())
        if renamed:
            errors.setdefault(where, []).append(
                f"'{name}' carries the label of the core question '{renamed}': core questions cannot be renamed")
            continue
        if kind not in _TYPES:
            errors.setdefault(where, []).append(
                f"type {kind!r} is not offered; use one of: {', '.join(EXTENSION_TYPES)}")
            continue
        question: dict[str, Any] = {"name": name, "type": _TYPES[kind], "label_en": en or name,
                                    "label_zh": zh or en or name,
                                    "required": str((node.get("bind") or {}).get("required", "")).lower()
                                    in ("yes", "true", "true()")}
        hint_en, hint_zh = _labels(node, "hint")
        if hint_en or hint_zh:
            question.update(hint_en=hint_en, hint_zh=hint_zh)
        if question["type"] in ("select_one", "select_multiple"):
            choices = node.get("choices") or (survey.get("choices") or {}).get(node.get("itemset") or "") or []
            question["choices"] = [{"name": str(c["name"]), "label_en": _labels(c)[0] or str(c["name"]),
                                    "label_zh": _labels(c)[1] or str(c["name"])} for c in choices]
            if not question["choices"]:
                errors.setdefault(where, []).append(f"'{name}' has no choices")
        questions.append(question)
    if seen_core:
        missing = [name for name in CORE if name not in seen_core and name != "collected_at"]
        for name in missing:
            errors.setdefault("survey", []).append(
                f"the core question '{name}' is missing: core questions cannot be removed or renamed")
    if not questions and not errors:
        errors["file"] = ["has no questions to add"]
    if len(questions) > MAX_QUESTIONS:
        errors["file"] = [f"at most {MAX_QUESTIONS} extra questions"]
    if errors:
        raise validation_failed(errors, "The XLSForm cannot extend the soil-sample form.")
    return questions


# --- answers ------------------------------------------------------------------------------------

def version_of_form(form_version: str | None) -> int | None:
    """The extension version a served form version carries (``2.x3.abc`` → 3)."""
    match = re.search(r"\.x([0-9]{1,9})\.", form_version or "")
    return int(match.group(1)) if match else None


def check_answers(answers: Mapping[str, str], form_version: str | None) -> tuple[dict[str, Any], int | None]:
    """The ``extra`` answers checked by type against the extension the form version carried.

    :raise Problem 400 invalid_submission: an unknown question or a value of the wrong type,
        naming ``extra/<question>``.
    """
    version = version_of_form(form_version)
    if not answers:
        return {}, None
    extension = get_version(version) if version is not None else None
    if extension is None:
        raise invalid({"extra": ["this form version has no extra questions"]})
    by_name = {q["name"]: q for q in extension.questions}
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, text in answers.items():
        question = by_name.get(name)
        if question is None:
            errors[f"extra/{name}"] = ["Unknown question (not in this form version)"]
            continue
        try:
            clean[name] = _typed(question, text)
        except ValueError as exc:
            errors[f"extra/{name}"] = [str(exc)]
    if errors:
        raise invalid(errors)
    return clean, extension.version


def check_values(answers: Mapping[str, Any], version: int,
                 cache: dict[int, dict[str, dict[str, Any]] | None] | None = None) -> tuple[dict[str, Any],
                                                                                      dict[str, list[str]]]:
    """The ``extra`` answers of a sync push (JSON values) typed against extension ``version``.

    Returns ``(clean, errors)``; errors are keyed by question name (the caller prefixes them).
    Text answers go through the same rules as a Collect submission's (``_typed``), so both
    clients store the same value for the same answer; JSON numbers, lists (select multiple) and
    ``{lat, lon, accuracy_m}`` objects (geopoint) are taken as they are, checked the same way, and
    ``check_values`` of its own output gives that output again. ``cache`` (version → questions by
    name) saves a lookup per record in a batch.
    """
    if cache is not None and version in cache:
        by_name = cache[version]
    else:
        extension = get_version(version)
        by_name = {q["name"]: q for q in extension.questions} if extension is not None else None
        if cache is not None:
            cache[version] = by_name
    if by_name is None:
        return {}, {"": [f"There is no form extension version {version}."]}
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in answers.items():
        question = by_name.get(name)
        if question is None:
            errors[name] = [f"Unknown question (not in form extension version {version})."]
            continue
        try:
            clean[name] = _typed_value(question, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    return clean, errors


def _typed_value(question: Mapping[str, Any], value: Any) -> Any:
    kind = question["type"]
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("Must not contain control characters")
        if kind == "select_multiple":
            return _typed(question, value)
        return _typed(question, value.strip() if kind != "text" else value)
    if isinstance(value, bool):
        raise ValueError("Must not be true or false")
    if kind == "integer" and isinstance(value, int):
        if abs(value) >= 10**18:
            raise ValueError("Must be a whole number")
        return value
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "decimal" and isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Must be a number")
        return value
    if kind == "select_multiple" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _typed(question, " ".join(value))
    if kind == "geopoint" and isinstance(value, Mapping):
        lat, lon, accuracy = value.get("lat"), value.get("lon"), value.get("accuracy_m")
        numbers = [v for v in (lat, lon, accuracy) if v is not None]
        if lat is None or lon is None or any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
            raise ValueError("Must be {lat, lon, accuracy_m} in numbers")
        if set(value) - {"lat", "lon", "accuracy_m"}:
            raise ValueError("Only lat, lon and accuracy_m")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (accuracy is not None and accuracy < 0):
            raise ValueError("Latitude or longitude out of range")
        return {"lat": lat, "lon": lon, **({"accuracy_m": accuracy} if accuracy is not None else {})}
    raise ValueError(_EXPECTED.get(kind, "Has the wrong type"))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EXPECTED = {"text": "Must be text", "integer": "Must be a whole number", "decimal": "Must be a number",
             "select_one": "Must be one of the choices' names", "select_multiple": "Must be a list of choice names",
             "date": "Must be a date YYYY-MM-DD", "image": "Must be a file name",
             "geopoint": "Must be {lat, lon, accuracy_m}"}


def definition(extension: FormExtension | None) -> dict[str, Any] | None:
    """What a field app needs to offer the extension's questions offline: version and questions."""
    if extension is None:
        return None
    return {"version": extension.version, "questions": extension.questions}


def _typed(question: Mapping[str, Any], text: str) -> Any:
    kind = question["type"]
    if kind == "text":
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"At most {MAX_TEXT_CHARS} characters")
        return text
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError("Must be a whole number")
        return int(text)
    if kind == "decimal":
        if not _DECIMAL.fullmatch(text):
            raise ValueError("Must be a number")
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    codes = {c["name"] for c in question.get("choices") or ()}
    if kind == "select_one":
        if text not in codes:
            raise ValueError(f"Must be one of: {', '.join(sorted(codes))}")
        return text
    if kind == "select_multiple":
        picked = text.split()
        if not set(picked) <= codes:
            raise ValueError(f"Each must be one of: {', '.join(sorted(codes))}")
        return picked
    if kind == "date":
        try:
            if not _DATE.fullmatch(text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("Must be a date YYYY-MM-DD") from None
    if kind == "geopoint":
        location = parse_geopoint(text)
        lat, lon = location["lat"], location["lon"]  # type: ignore[index]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("Latitude or longitude out of range")
        return location
    if kind == "image":
        if not _FILE_NAME.fullmatch(text):
            raise ValueError("Must be a file name")
        return text
    raise ValueError(f"Unknown type {kind}")  # pragma: no cover - the upload allows only the types above


def image_answers(questions: Sequence[Mapping[str, Any]], clean: Mapping[str, Any]) -> list[str]:
    """File names the ``image`` answers name (their files join the sample's media)."""
    kinds = {q["name"]: q["type"] for q in questions}
    return [value for name, value in clean.items() if kinds.get(name) == "image"]


def _is_point(value: Mapping[str, Any]) -> bool:
    return all(isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool) for k in ("lat", "lon"))


def describe_answers(answers: Mapping[str, Any] | None, version: int | None, language: str) -> list[tuple[str, str]]:
    """``(question label, answer text)`` in ``language`` ("zh" or "en") for showing kept answers."""
    if not answers:
        return []
    questions = {q["name"]: q for q in questions_of(version)} if version else {}
    index = 1 if language == "zh" else 0
    out = []
    order = {name: i for i, name in enumerate(questions)}  # the form's order, not the answers' order
    for name, value in sorted(answers.items(), key=lambda item: order.get(item[0], len(order))):
        question = questions.get(name)
        if question is None:
            out.append((name, str(value)))
            continue
        label = (question["label_en"], question["label_zh"])[index]
        choices = {c["name"]: (c["label_en"], c["label_zh"])[index] for c in question.get("choices") or ()}
        if isinstance(value, list):
            text = "、".join(choices.get(v, v) for v in value) if index else ", ".join(choices.get(v, v) for v in value)
        elif isinstance(value, dict):
            text = f"{float(value['lat']):.6f}, {float(value['lon']):.6f}" if _is_point(value) else str(value)
            if value.get("accuracy_m") is not None:
                text += f" (± {float(value['accuracy_m']):.0f} m)"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = choices.get(value, str(value)) if isinstance(value, str) else str(value)
        out.append((label, text))
    return out
