"""How the console writes values for people: local times, rounded numbers, words for codes.

Every template gets these helpers (a context processor on the console blueprint), so a page never
prints a stored value as the machine keeps it: a UTC ISO time becomes the county's local time to the
minute, a ratio a percentage, an index two decimals, an actor id ("user:wang") a name, a code
(a status, a conflict kind, an audit action, a sample field) the catalogue's word. The formatting
functions are plain (no Flask); ``_helpers`` binds them to the page's language.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

from ..certificates.codes import format_code
from ..lab.analytes import ANALYTES
from . import i18n

ZONE = ZoneInfo("Asia/Shanghai")  # every county fieldsvc serves keeps China Standard Time
COORD_FIELDS = ("lat", "lon")


def word(key: str, lang: str, fallback: str | None = None) -> str:
    """The catalogue's word for ``key`` (English if Chinese lacks it), else ``fallback`` (else the key)."""
    text = i18n.STRINGS[lang].get(key) or i18n.STRINGS["en"].get(key)
    return text if text is not None else (key if fallback is None else fallback)


def local_minute(value: Any) -> str:
    """A stored time (datetime or ISO text, UTC unless it says otherwise) in the county's zone, to the minute.

    A bare date stays a date; an unparsable text is returned as it is (it was typed by a person)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return text
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def local_day(value: Any) -> str:
    """The local date of a stored time."""
    text = local_minute(value)
    return text[:10] if text != "—" else text


def measured(value: Any) -> str:
    """A measured value as the lab reported it: its own decimals (0.10 stays 0.10), never a float's binary tail.

    A float (a value that went through JSON) is cut to at most four decimals."""
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if number.is_nan() or number.is_infinite():
        return str(value)
    if -number.as_tuple().exponent > 4:  # type: ignore[operator]
        number = number.quantize(Decimal("0.0001"))
    return f"{number:f}"  # its own trailing zeros kept: 0.10 was measured to two decimals


def fixed(value: Any, places: int = 2) -> str:
    """An index or a ratio to ``places`` decimals (an index: two)."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):.{places}f}"
    except (InvalidOperation, ValueError):
        return str(value)


def percent(value: Any) -> str:
    """A share (0..1) as a percentage: whole percents, one decimal below 10 %."""
    if value is None or value == "":
        return "—"
    try:
        share = float(value) * 100
    except (TypeError, ValueError):
        return str(value)
    return f"{share:.1f} %" if 0 < share < 10 else f"{share:.0f} %"


def dms(value: float, positive: str, negative: str) -> str:
    """A coordinate in degrees, minutes and seconds to a tenth (about 3 m): 28°10′49.2″N."""
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = round((minutes_full - minutes) * 60, 1)
    if seconds >= 60:
        minutes, seconds = minutes + 1, 0.0
    if minutes >= 60:
        degrees, minutes = degrees + 1, 0
    return f"{degrees}°{minutes:02d}′{seconds:04.1f}″{hemisphere}"


def location_text(loc: Any, lang: str) -> str:
    """A sample's recorded location: the point in DMS, its accuracy, a mock-location warning."""
    if not isinstance(loc, dict):
        return "—"
    try:
        lat, lon = float(loc["lat"]), float(loc["lon"])
    except (KeyError, TypeError, ValueError):
        return "—"
    text = f"{dms(lat, 'N', 'S')} {dms(lon, 'E', 'W')}"
    if loc.get("accuracy_m") is not None:
        text += f" ±{measured(loc['accuracy_m'])} m"
    if loc.get("mock"):
        text += " · " + word("flag_mock_location", lang)
    return text


def actor_name(actor: Any, lang: str) -> str:
    """Who did it, as people say it: ``user:wang`` → wang; ``device:dev_x`` → 设备 dev_x; system → 系统."""
    if not actor:
        return "—"
    text = str(actor)
    kind, _, name = text.partition(":")
    if not name:
        kind, name = "user", text
    if name in ("system", "test", "cli") or kind == "system":
        return word("actor_system", lang)
    if kind == "device":
        return f"{word('device', lang)} {name}"
    return name


def analyte_name(key: Any, lang: str) -> str:
    """An analyte's name with its symbol: 镉 (Cd), cadmium (Cd); pH stays pH."""
    a = ANALYTES.get(str(key))
    if a is None:
        return str(key)
    name = a.name_zh if lang == "zh" else a.name_en
    return str(key) if name == key else f"{name} ({key})"


def unit_text(unit: Any, lang: str) -> str:
    """A unit as written in the catalogue (mg/kg stays mg/kg; pH has none)."""
    if not unit:
        return ""
    return word(f"unit_{unit}", lang, str(unit))


def pack_name(pack: Any, lang: str, packs: list[dict[str, Any]] | None = None) -> str:
    """A rule pack by its standard's name and edition, e.g. 绿色食品 产地环境质量 (NY/T 391-2021)."""
    if isinstance(pack, dict):
        code = pack.get("code")
    else:
        code = pack
    if not code:
        return "—"
    summary = next((p for p in packs or [] if p.get("code") == code), None)
    if summary is None:
        from ..grading.rules import load_pack  # a lazy import: the catalogue of packs loads from disk once

        try:
            summary = load_pack(str(code)).to_summary()
        except Exception:  # noqa: BLE001 - an unknown or removed pack is still shown by its code
            return str(code)
    name = summary.get("name_zh") if lang == "zh" else summary.get("name")
    name = name or summary.get("name") or str(code)
    standard = summary.get("standard")
    return f"{name} ({standard})" if standard and standard not in name else name


def value_text(name: str, value: Any, lang: str) -> str:
    """One field of a stored record (a sample, a parcel, a region) in words, for the conflict and audit pages."""
    if value is None or value == "" or value == []:
        return "—"
    if name == "location":
        return location_text(value, lang)
    if isinstance(value, bool):
        return word("yes" if value else "no", lang)
    if name in ("land_use", "land_use_observed"):
        return word(f"lu_{value}", lang, str(value))
    if name == "sample_type":
        return word(f"stype_{value}", lang, str(value))
    if name == "level":
        return word(str(value), lang)
    if name == "geometry" and isinstance(value, dict):
        rings = value.get("coordinates") or []
        points = sum(len(r) for r in rings if isinstance(r, list)) if value.get("type") == "Polygon" else 0
        return word("polygon_points", lang).format(n=max(points - len(rings), 0))
    if name == "media" and isinstance(value, list):
        return word("n_photos", lang).format(n=len(value))
    if name == "flags" and isinstance(value, list):
        return ", ".join(word(f"flag_{f}", lang, str(f)) for f in value)
    if isinstance(value, float) or (isinstance(value, str) and _is_number(value) and "." in value):
        return measured(value)
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        return local_minute(value)
    if isinstance(value, dict):
        return "; ".join(f"{field_label(k, lang)}: {value_text(k, v, lang)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(value_text(name, v, lang) for v in value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def field_label(name: str, lang: str) -> str:
    """A record field's label: ``depth_bottom_cm`` → 采样深度下限 (cm); an answer to a custom question
    (``extra.<question>``, as merges and conflicts name it) → the question's label."""
    name = name.removeprefix("pick.")  # the conflict page's per-field choice names its field
    if name.startswith("extra."):
        from ..openrosa.extensions import all_questions  # (call-time: only pages showing answers ask)

        question = next((q for q in all_questions() if q["name"] == name[6:]), None)
        if question is not None:
            return question["label_zh"] if lang == "zh" else question["label_en"]
    return word(f"fld_{name}", lang, name.replace("_", " "))


def record_rows(data: Any, lang: str) -> list[tuple[str, str]]:
    """A stored record (a version's data) as label/value rows; a GeoJSON feature shows its properties."""
    if not isinstance(data, dict):
        return [("", value_text("", data, lang))]
    if data.get("type") == "Feature" and isinstance(data.get("properties"), dict):
        rows = [(field_label(k, lang), value_text(k, v, lang)) for k, v in data["properties"].items()]
        return rows + [(field_label("geometry", lang), value_text("geometry", data.get("geometry"), lang))]
    if isinstance(data.get("extra"), dict):  # custom answers by their questions' labels
        from ..openrosa.extensions import describe_answers

        answers = "; ".join(f"{label}: {text}" for label, text in
                            describe_answers(data["extra"], data.get("extension_version"), lang))
        return [(field_label(k, lang), answers if k == "extra" else value_text(k, v, lang))
                for k, v in data.items()]
    return [(field_label(k, lang), value_text(k, v, lang)) for k, v in data.items()]


_WARNINGS = (
    ("warn_repeat", re.compile(r"^Line (?P<line>\d+) repeats line (?P<first>\d+); kept once\.$")),
    ("warn_held", re.compile(r"^(?P<n>\d+) results for (?P<codes>\d+) sample codes not yet synced are held "
                             r"until the samples arrive: (?P<shown>.*)\.$")),
    ("warn_qc", re.compile(r"^QC failed for (?P<analyte>\S+) \(.*\); (?P<n>\d+) \S+ results held by QC\.$")),
)


def import_warning(text: str, lang: str) -> str:
    """An import's warning (the lab service writes English sentences) in the page's language."""
    return _sentence(_WARNINGS, text, lang)


def _sentence(table: tuple[tuple[str, re.Pattern[str]], ...], text: str, lang: str) -> str:
    """An English sentence of the lab service in the page's language: the first pattern of ``table``
    that matches names the catalogue key, its groups fill it (an analyte by its name); none: as written."""
    for key, pattern in table:
        m = pattern.match(text)
        if m:
            values = m.groupdict()
            if "analyte" in values:
                values["analyte"] = analyte_name(values["analyte"], lang)
            return word(key, lang).format(**values)
    return text


def transitions(changed: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """A grading run's changes summed by (verdict before, verdict after), most frequent first: the
    run page leads with these few lines instead of one row per parcel of a county."""
    counts: dict[tuple[str, str], int] = {}
    for c in changed or []:
        before = (c.get("previous") or {}).get("verdict") or "first"
        key = (before, c.get("verdict") or "not_graded")
        counts[key] = counts.get(key, 0) + 1
    return sorted(((b, a, n) for (b, a), n in counts.items()), key=lambda item: -item[2])


# The importer's per-cell messages (``lab.importing`` and ``lab.values`` write English sentences for
# the API); the console's check report shows them in the page's language. An unknown one stays English.
_LAB_MESSAGES = (
    ("lm_unknown_analyte", re.compile(r"^Unknown analyte (?P<text>'.*')\.$")),
    ("lm_unknown_analyte_hint", re.compile(r"^Unknown analyte; use a name such as .*$")),
    ("lm_analyte_empty", re.compile(r"^Analyte is empty\.$")),
    ("lm_sample_code_empty", re.compile(r"^Sample code is empty\.$")),
    ("lm_unknown_unit", re.compile(r"^Unknown unit (?P<unit>'.*') for (?P<analyte>\S+)\.$")),
    ("lm_wrong_unit", re.compile(r"^Unit (?P<unit>'.*') cannot express (?P<analyte>\S+) "
                                 r"\(expected (?P<expected>.*)\)\.$")),
    ("lm_impossible", re.compile(r"^(?P<text>'.*') (?P<unit>\S*) is impossible for (?P<analyte>\S+) "
                                 r"\(above (?P<bound>\S+) (?P<bound_unit>\S+)\)\.$")),
    ("lm_cells", re.compile(r"^The row has (?P<cells>\d+) cells but the header has (?P<width>\d+);.*$")),
    ("lm_duplicate_of", re.compile(r"^A duplicate must name its original sample in duplicate_of\.$")),
    ("lm_crm", re.compile(r"^A CRM row must name its reference material in the crm column\.$")),
    ("lm_mixed_separators", re.compile(r"^\S+ (?P<text>'.*') mixes ',' and '\.'.*$")),
    ("lm_negative", re.compile(r"^\S+ (?P<text>'.*') is negative;.*$")),
    ("lm_not_a_number", re.compile(r"^\S+ (?P<text>'.*') is not a number\.$")),
    ("lm_out_of_range", re.compile(r"^\S+ (?P<text>'.*') is out of range.*$")),
    ("lm_dl_zero", re.compile(r"^detection_limit must be above zero\.$")),
    ("lm_censored_zero", re.compile(r"^A censored value needs a limit above zero.*$")),
    ("lm_value_empty", re.compile(r"^value is empty\.$")),
    ("lm_above_range", re.compile(r"^(?P<text>'.*') is above the working range.*$")),
    ("lm_needs_dl", re.compile(r"^(?P<text>'.*') needs a detection limit.*$")),
)


def lab_message(text: str, lang: str) -> str:
    """One of the importer's cell messages in the page's language (English stays as written)."""
    return text if lang == "en" else _sentence(_LAB_MESSAGES, text, lang)


def duration(seconds: Any, lang: str) -> str:
    """A clock skew or a wait as people say it: under a minute, minutes, hours, days (never 86399.6 s)."""
    if seconds is None or seconds == "":
        return "—"
    try:
        span = abs(float(seconds))
    except (TypeError, ValueError):
        return str(seconds)
    zh = lang == "zh"
    if span < 60:
        return "不到 1 分钟" if zh else "under a minute"
    if span < 3600:
        return f"{span / 60:.0f} " + ("分钟" if zh else "min")
    if span < 86400 * 2:
        return f"{span / 3600:.1f} ".replace(".0 ", " ") + ("小时" if zh else "h")
    return f"{span / 86400:.0f} " + ("天" if zh else "days")


def helpers(lang: str) -> dict[str, Callable[..., str] | Any]:
    """The template helpers for one page in ``lang``."""
    return {
        "when": local_minute, "day": local_day, "num": measured, "fixed": fixed, "pct": percent,
        "who": lambda actor: actor_name(actor, lang),
        "analyte_name": lambda key: analyte_name(key, lang),
        "unit": lambda u: unit_text(u, lang),
        "pack": lambda p, packs=None: pack_name(p, lang, packs),
        "code_word": lambda prefix, code: word(f"{prefix}{code}", lang, str(code)),
        "field_label": lambda name: field_label(name, lang),
        "value_text": lambda name, value: value_text(name, value, lang),
        "record_rows": lambda data: record_rows(data, lang),
        "location_text": lambda loc: location_text(loc, lang),
        "import_warning": lambda text: import_warning(text, lang),
        "lab_message": lambda text: lab_message(text, lang),
        "cert_code": format_code,
        "transitions": transitions,
        "duration": lambda seconds: duration(seconds, lang),
    }
