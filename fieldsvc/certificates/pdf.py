"""Printable PDFs: the A4 certificate and label sheets, laid out from ``qr_templates/``.

QR codes are drawn as one vector path per symbol on a white square that holds the 4-module
quiet zone, with modules never smaller than 0.4 mm, and the PDF asks viewers not to scale
when printing; otherwise "fit to page" shrinks modules below what phones can read. Every
QR and text box drawn is recorded (millimetres from the page's top-left corner), so tests
and callers can check the geometry instead of trusting it.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from reportlab.pdfbase.pdfmetrics import getAscentDescent, stringWidth
from reportlab.pdfgen.canvas import Canvas

from fieldsvc.certificates.codes import format_code
from fieldsvc.errors import Problem, validation_failed
from fieldsvc.render.fonts import MONO_FONT_NAME, cjk_font
from fieldsvc.render.qr import ECC_LEVELS, QUIET_ZONE_MODULES, QrMatrix, dark_runs, qr_matrix

MM = 72 / 25.4  # points per millimetre
MIN_MODULE_MM = 0.4
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "qr_templates"
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,64}")

SUBJECT_TYPES = {
    "parcel": ("地块", "Parcel"),
    "farm_park": ("农业园区", "Farm park"),
    "village": ("行政村", "Village"),
}
VERDICTS = {
    "qualified": ("合格", "Qualified"),
    "not_qualified": ("不合格", "Not qualified"),
    "indeterminate": ("无法判定", "Indeterminate"),
}
STATUSES = {
    "valid": ("有效", "Valid"),
    "revoked": ("已撤销", "Revoked"),
    "expired": ("已过期", "Expired"),
    "superseded": ("已被取代", "Superseded"),
}
GRADES = {
    "clean": "清洁 Clean",
    "still_clean": "尚清洁 Still clean",
    "A": "A 级 Grade A",
    "B": "B 级 Grade B",
    "C": "C 级 Grade C",
}
UNVERIFIED_NOTE = (
    "注意：本证书所用评价规则包的限值尚未与官方标准文本核对。",
    "Note: this rule pack's values have not yet been checked against the official standard text.",
)
LABEL_CAPTION = "扫码验证 Scan to verify"


class TemplateError(ValueError):
    """A template file in qr_templates/ is invalid (an operator problem)."""


@dataclass(frozen=True)
class CertificateView:
    """Everything printed on a certificate, as plain values (place at village level, no people)."""

    code: str
    verify_url: str
    token: str
    key_id: str
    subject_type: str  # parcel | farm_park | village
    subject_name: str
    subject_code: str
    county: str
    township: str | None
    village: str | None
    grade: str
    verdict: str  # qualified | not_qualified | indeterminate
    rule_pack_code: str
    rule_pack_version: str
    standard: str
    pack_verified: bool
    tested_on: date
    issued_at: date
    valid_until: date
    tested_from: date | None = None
    status: str = "valid"  # valid | revoked | expired | superseded
    status_reason: str | None = None
    grade_label: str | None = None
    issuer: str = "fieldsvc"
    issuer_contact: str | None = None
    issuer_short: str | None = None
    seal_png: bytes | None = None
    kind: str = "certificate"  # certificate | land_label
    conclusions: tuple[str, ...] = ()  # a land label's conclusions, one printed line each (zh + en)
    elements: tuple[ElementRow, ...] = ()  # a land label's element table (its second page)


@dataclass(frozen=True)
class ElementRow:
    """One row of a land label's element table, already in words (zh + en): value against its limit."""

    name: str  # e.g. "镉 Cd"
    value: str
    limit: str
    unit: str
    ratio: float | None  # value ÷ limit (None: no number), drawn as a bar
    basis: str  # "实测 measured" or "估算 estimated ±0.05"
    result: str  # "未超标 within" | "超标 over"
    over: bool


@dataclass(frozen=True)
class LabelView:
    code: str
    verify_url: str
    subject_name: str
    caption: str = LABEL_CAPTION
    issuer: str = ""  # the issuing institute's short (Chinese) name; empty when none is configured
    serial: str = ""  # this label's serial (also in its QR), empty for a sheet without serials


@dataclass(frozen=True)
class QrPlacement:
    """A drawn QR: ``x_mm, y_mm`` is the top-left of its quiet zone, from the page's top-left."""

    page: int
    x_mm: float
    y_mm: float
    module_mm: float
    modules: int
    text: str
    quiet_zone_modules: int = QUIET_ZONE_MODULES

    @property
    def box_mm(self) -> float:
        return (self.modules + 2 * self.quiet_zone_modules) * self.module_mm

    @property
    def symbol_mm(self) -> tuple[float, float, float, float]:
        """``(left, top, right, bottom)`` of the dark-module area."""
        q = self.quiet_zone_modules * self.module_mm
        return (self.x_mm + q, self.y_mm + q, self.x_mm + self.box_mm - q, self.y_mm + self.box_mm - q)


@dataclass(frozen=True)
class TextBox:
    page: int
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    text: str


@dataclass
class RenderedPdf:
    pdf: bytes
    page_mm: tuple[float, float]
    pages: int
    qr: list[QrPlacement] = field(default_factory=list)
    text: list[TextBox] = field(default_factory=list)
    watermark: str | None = None


# --- templates -------------------------------------------------------------------------------


def list_templates(directory: Path | None = None) -> list[str]:
    """Names of the layouts in ``qr_templates/``."""
    folder = Path(directory or TEMPLATE_DIR)
    return sorted(p.stem for p in folder.glob("*.json") if _TEMPLATE_NAME.fullmatch(p.stem))


def load_template(name: str, directory: Path | None = None) -> dict[str, Any]:
    """A validated template; an unknown name is a 422 ``unknown_template`` for the client."""
    available = list_templates(directory)
    if not isinstance(name, str) or name not in available:
        raise Problem(
            422,
            "unknown_template",
            "There is no label or certificate template with that name.",
            template=str(name)[:64],
            available=available,
        )
    path = Path(directory or TEMPLATE_DIR) / f"{name}.json"
    return copy.deepcopy(_read_template(path, path.stat().st_mtime_ns))


def label_templates(directory: Path | None = None) -> list[str]:
    """Names of the layouts a label sheet may be printed with: every template but the certificates'."""
    return [n for n in list_templates(directory) if load_template(n, directory).get("kind") != "certificate"]


@lru_cache(maxsize=32)
def _read_template(path: Path, _mtime_ns: int) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise TemplateError(f"{path.name}: not JSON ({exc})") from exc
    errors = validate_template(data, path.stem)
    if errors:
        raise TemplateError(f"{path.name}: " + "; ".join(errors))
    return data


def validate_template(data: Any, name: str) -> list[str]:
    """Every problem found in a template, empty when it is usable."""
    if not isinstance(data, dict):
        return ["must be a JSON object"]
    errors = []
    if data.get("name") != name:
        errors.append(f"name must be {name!r}, like the file")
    page = data.get("page_mm")
    if not (isinstance(page, list) and len(page) == 2 and all(_positive(v) for v in page)):
        return errors + ["page_mm must be [width, height], both positive"]
    kind = data.get("kind")
    if kind == "label_sheet":
        errors += _label_sheet_errors(data, page)
    elif kind == "certificate":
        errors += _certificate_errors(data, page)
    else:
        errors.append("kind must be label_sheet or certificate")
    return errors


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    )


def _non_negative(value: Any) -> bool:
    return _positive(value) or (isinstance(value, int | float) and not isinstance(value, bool) and value == 0)


def _qr_errors(qr: Any, where: str) -> list[str]:
    if not isinstance(qr, dict):
        return [f"{where} must be an object"]
    errors = []
    if qr.get("ecc") not in ECC_LEVELS:
        errors.append(f"{where}.ecc must be one of {sorted(ECC_LEVELS)}")
    if not all(_positive(qr.get(k)) for k in ("module_mm", "min_module_mm", "box_mm")):
        errors.append(f"{where} needs positive module_mm, min_module_mm and box_mm")
    elif qr["min_module_mm"] < MIN_MODULE_MM or qr["module_mm"] < qr["min_module_mm"]:
        errors.append(f"{where}: modules must be at least {MIN_MODULE_MM} mm")
    if qr.get("dpi") is not None and not (isinstance(qr["dpi"], int) and qr["dpi"] >= 72):
        errors.append(f"{where}.dpi must be null or a printer resolution")
    return errors


def _numbers(section: Any, keys: Sequence[str], where: str, check: Any = _positive) -> list[str]:
    if not isinstance(section, dict):
        return [f"{where} must be an object"]
    return [f"{where}.{k} must be a positive number" for k in keys if not check(section.get(k))]


def _label_sheet_errors(data: dict[str, Any], page: list[float]) -> list[str]:
    grid = data.get("grid")
    errors = _qr_errors(data.get("qr"), "qr")
    errors += _numbers(data.get("text"), ("gap_mm", "name_pt", "caption_pt", "code_pt", "min_pt"), "text")
    if not _non_negative(data.get("padding_mm")):
        errors.append("padding_mm must be a number >= 0")
    if not isinstance(grid, dict):
        return errors + ["grid must be an object"]
    if not all(isinstance(grid.get(k), int) and grid[k] >= 1 for k in ("columns", "rows")):
        return errors + ["grid.columns and grid.rows must be whole numbers >= 1"]
    label = grid.get("label_mm")
    if not (isinstance(label, list) and len(label) == 2 and all(_positive(v) for v in label)):
        return errors + ["grid.label_mm must be [width, height]"]
    gaps = ("margin_top_mm", "margin_left_mm", "column_gap_mm", "row_gap_mm")
    errors += _numbers(grid, gaps, "grid", _non_negative)
    if errors:
        return errors
    width = (
        grid["margin_left_mm"] + grid["columns"] * label[0] + (grid["columns"] - 1) * grid["column_gap_mm"]
    )
    height = grid["margin_top_mm"] + grid["rows"] * label[1] + (grid["rows"] - 1) * grid["row_gap_mm"]
    if width > page[0] + 0.01 or height > page[1] + 0.01:
        errors.append("the labels do not fit on the page")
    if 2 * data["padding_mm"] >= min(label):
        errors.append("padding_mm leaves no room on the label")
    return errors


def _certificate_errors(data: dict[str, Any], page: list[float]) -> list[str]:
    errors = []
    for key in ("verify_qr", "token_qr"):
        qr = data.get(key)
        errors += _qr_errors(qr, key)
        errors += _numbers(qr, ("x_mm", "y_mm"), key, _non_negative)
        if not errors and (qr["x_mm"] + qr["box_mm"] > page[0] or qr["y_mm"] + qr["box_mm"] > page[1]):
            errors.append(f"{key} does not fit on the page")
    sections = {
        "title": ("zh_y_mm", "zh_pt", "en_y_mm", "en_pt"),
        "code": ("y_mm", "pt"),
        "fields": ("top_mm", "row_mm", "value_x_mm", "label_pt", "label_en_pt", "value_pt", "min_pt"),
        "note": ("height_mm", "pt"),
        "caption": ("gap_mm", "pt", "small_pt"),
        "footer": ("y_mm", "pt"),
        "watermark": ("pt", "angle_deg"),
    }
    for section, keys in sections.items():
        errors += _numbers(data.get(section), keys, section)
    for key in ("margin_mm", "frame_inset_mm", "rule_y_mm"):
        if not _positive(data.get(key)):
            errors.append(f"{key} must be a positive number")
    return errors


# --- drawing ---------------------------------------------------------------------------------


def _new_canvas(out: io.BytesIO, page_mm: Sequence[float], title: str) -> Canvas:
    canvas = Canvas(out, pagesize=(page_mm[0] * MM, page_mm[1] * MM), pageCompression=1)
    canvas.setViewerPreference("PrintScaling", "None")
    canvas.setTitle(title)
    canvas.setAuthor("fieldsvc")
    canvas.setCreator("fieldsvc")
    return canvas


def _module_size(qr: dict[str, Any], modules: int, room_mm: float) -> float:
    """The template's module, snapped to whole printer dots, shrunk to fit, never below the minimum."""
    limit = min(qr["box_mm"], room_mm) / (modules + 2 * QUIET_ZONE_MODULES)
    dot = 25.4 / qr["dpi"] if qr.get("dpi") else None
    module = max(1, round(qr["module_mm"] / dot)) * dot if dot else qr["module_mm"]
    if module > limit:
        module = math.floor(limit / dot) * dot if dot else limit
    if module < max(qr["min_module_mm"], MIN_MODULE_MM) - 1e-9:
        raise Problem(
            422,
            "qr_too_dense",
            "The text needs a QR code too dense to print on this template.",
            modules=modules,
            module_mm=round(module, 3),
        )
    return module


class _Sheet:
    """A canvas addressed in millimetres from the top-left, recording what it draws."""

    def __init__(self, canvas: Canvas, page_mm: Sequence[float]) -> None:
        self.canvas = canvas
        self.height_mm = page_mm[1]
        self.page = 0
        self.qr: list[QrPlacement] = []
        self.text: list[TextBox] = []

    def next_page(self) -> None:
        self.canvas.showPage()
        self.page += 1

    def y(self, y_mm: float) -> float:
        return (self.height_mm - y_mm) * MM

    def draw_text(
        self, x_mm: float, baseline_mm: float, text: str, font: str, size: float, align: str = "left"
    ) -> TextBox:
        width = stringWidth(text, font, size) / MM
        left = {"left": x_mm, "center": x_mm - width / 2, "right": x_mm - width}[align]
        self.canvas.setFont(font, size)
        self.canvas.drawString(left * MM, self.y(baseline_mm), text)
        ascent, descent = getAscentDescent(font, size)
        box = TextBox(self.page, left, baseline_mm - ascent / MM, width, (ascent - descent) / MM, text)
        self.text.append(box)
        return box

    def draw_qr(self, x_mm: float, y_mm: float, matrix: QrMatrix, module_mm: float, text: str) -> QrPlacement:
        placed = QrPlacement(self.page, x_mm, y_mm, module_mm, matrix.size, text)
        canvas, m = self.canvas, module_mm * MM
        canvas.saveState()
        canvas.setFillColorRGB(1, 1, 1)
        canvas.rect(
            x_mm * MM, self.y(y_mm + placed.box_mm), placed.box_mm * MM, placed.box_mm * MM, stroke=0, fill=1
        )
        canvas.setFillColorRGB(0, 0, 0)
        # One path in module units; written directly because reportlab's per-number
        # formatting of ~1,000 rectangles costs more than the rest of the page.
        canvas.transform(m, 0, 0, m, placed.symbol_mm[0] * MM, self.y(placed.symbol_mm[1]))
        rects = " ".join(f"{col} {-row - 1} {length} 1 re" for row, col, length in dark_runs(matrix))
        canvas.addLiteral(f"{rects} f")
        canvas.restoreState()
        self.qr.append(placed)
        return placed


def _fit(text: str, font: str, size: float, width_mm: float, min_size: float) -> tuple[str, float]:
    """Shrink to fit the width, down to ``min_size``; past that, cut with an ellipsis."""
    text = " ".join(text.split())[:300]
    width = stringWidth(text, font, size) / MM
    if width <= width_mm:
        return text, size
    size = max(min_size, size * width_mm / width * 0.999)
    if stringWidth(text, font, size) / MM <= width_mm:
        return text, size
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if stringWidth(text[:mid].rstrip() + "…", font, size) / MM <= width_mm:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "…", size


def _line_mm(size_pt: float) -> float:
    return size_pt * 1.3 / MM


# --- labels ----------------------------------------------------------------------------------


def render_labels(labels: Sequence[LabelView], template: str, start_slot: int = 0) -> bytes:
    """A label sheet PDF; slots fill row by row from ``start_slot`` (0-based), then new pages."""
    return render_labels_with_layout(labels, template, start_slot).pdf


def render_labels_with_layout(labels: Sequence[LabelView], template: str, start_slot: int = 0) -> RenderedPdf:
    spec = load_template(template)
    if spec["kind"] != "label_sheet":
        raise Problem(422, "unknown_template", f"{template} is not a label template.", template=template)
    grid = spec["grid"]
    per_page = grid["columns"] * grid["rows"]
    if isinstance(start_slot, bool) or not isinstance(start_slot, int) or not 0 <= start_slot < per_page:
        raise validation_failed({"start_slot": [f"Must be a whole number from 0 to {per_page - 1}."]})
    if not labels:
        raise validation_failed({"labels": ["Give at least one label."]})
    out = io.BytesIO()
    canvas = _new_canvas(out, spec["page_mm"], f"fieldsvc labels ({template})")
    sheet = _Sheet(canvas, spec["page_mm"])
    font = cjk_font()
    slot = start_slot
    for label in labels:
        if slot == per_page:
            sheet.next_page()
            slot = 0
        row, col = divmod(slot, grid["columns"])
        x = grid["margin_left_mm"] + col * (grid["label_mm"][0] + grid["column_gap_mm"])
        y = grid["margin_top_mm"] + row * (grid["label_mm"][1] + grid["row_gap_mm"])
        _draw_label(sheet, spec, font, x, y, label)
        slot += 1
    canvas.showPage()
    canvas.save()
    return RenderedPdf(out.getvalue(), tuple(spec["page_mm"]), sheet.page + 1, sheet.qr, sheet.text)


def _draw_label(sheet: _Sheet, spec: dict[str, Any], font: str, x: float, y: float, label: LabelView) -> None:
    width, height = spec["grid"]["label_mm"]
    pad, style = spec["padding_mm"], spec["text"]
    matrix = qr_matrix(label.verify_url, spec["qr"]["ecc"])
    module = _module_size(spec["qr"], matrix.size, height - 2 * pad)
    box = (matrix.size + 2 * QUIET_ZONE_MODULES) * module
    placed = sheet.draw_qr(x + pad, y + (height - box) / 2, matrix, module, label.verify_url)
    text_x = placed.x_mm + box + style["gap_mm"]
    room = x + width - pad - text_x
    lines = [
        (*_fit(label.subject_name, font, style["name_pt"], room, style["min_pt"]), font),
        (*_fit(label.caption, font, style["caption_pt"], room, style["min_pt"]), font),
    ]
    if label.issuer:
        lines.append((*_fit(label.issuer, font, style["caption_pt"], room, style["min_pt"]), font))
    code = format_code(label.code)
    text, size = _fit(code, MONO_FONT_NAME, style["code_pt"], room, style["min_pt"])
    parts = [code] if text == code else [code[:9], code[10:]]  # too narrow: two lines of groups
    for part in parts:
        lines.append((*_fit(part, MONO_FONT_NAME, style["code_pt"], room, style["min_pt"]), MONO_FONT_NAME))
    if label.serial:
        serial = f"No. {label.serial[:-1]}-{label.serial[-1]}"
        lines.append((*_fit(serial, MONO_FONT_NAME, style["code_pt"], room, style["min_pt"]), MONO_FONT_NAME))
    block = sum(_line_mm(size) for _, size, _ in lines)
    baseline = y + (height - block) / 2
    for text, size, face in lines:
        baseline += _line_mm(size)
        sheet.draw_text(text_x, baseline - 0.3 * size / MM, text, face, size)


# --- certificate -----------------------------------------------------------------------------


def render_certificate(view: CertificateView) -> bytes:
    """The A4 certificate (zh + en) with the verify-URL QR and the signed-token QR."""
    return render_certificate_with_layout(view).pdf


def render_certificate_with_layout(view: CertificateView, template: str = "certificate_a4") -> RenderedPdf:
    spec = load_template(template)
    if spec["kind"] != "certificate":
        raise Problem(
            422, "unknown_template", f"{template} is not a certificate template.", template=template
        )
    font = cjk_font()
    out = io.BytesIO()
    canvas = _new_canvas(out, spec["page_mm"], f"Certificate {format_code(view.code)}")
    sheet = _Sheet(canvas, spec["page_mm"])
    watermark = None
    if view.status != "valid":
        zh, en = STATUSES.get(view.status, (view.status, view.status))
        watermark = f"{en.upper()} {zh}"
        _draw_watermark(sheet, spec, font, watermark)
    _draw_frame(sheet, spec)
    _draw_heading(sheet, spec, font, view)
    bottom = _draw_fields(sheet, spec, font, view)
    if not view.pack_verified:
        _draw_note(sheet, spec, font, bottom + 3)
    _draw_certificate_qrs(sheet, spec, font, view)
    footer = spec["footer"]
    issuer = f"签发机构 Issuer: {view.issuer} · 公钥 Public keys: /.well-known/fieldsvc-keys.json"
    room = spec["page_mm"][0] - 2 * spec["margin_mm"]
    text, size = _fit(issuer, font, footer["pt"], room, 5)
    sheet.draw_text(spec["page_mm"][0] / 2, footer["y_mm"], text, font, size, "center")
    if view.issuer_contact:
        text, size = _fit(view.issuer_contact, font, footer["pt"] * 0.85, room, 5)
        sheet.draw_text(spec["page_mm"][0] / 2, footer["y_mm"] + _line_mm(footer["pt"]), text, font, size, "center")
    if view.seal_png:
        _draw_seal(sheet, spec, view.seal_png)
    if view.kind == "land_label" and view.elements:
        sheet.next_page()
        if watermark:
            _draw_watermark(sheet, spec, font, watermark)
        _draw_frame(sheet, spec)
        _draw_elements_page(sheet, spec, font, view)
    canvas.showPage()
    canvas.save()
    return RenderedPdf(out.getvalue(), tuple(spec["page_mm"]), sheet.page + 1, sheet.qr, sheet.text, watermark)


# columns of the element table: (x in mm, align); the bar spans 0 to 1.5 × the limit (the page's bars)
_ELEMENT_COLUMNS = {"name": (0, "left"), "value": (48, "right"), "limit": (68, "right"), "unit": (71, "left"),
                    "bar": (88, "left"), "basis": (122, "left"), "result": (174, "right")}
_CELL_MM = {"name": 22, "value": 26, "limit": 16, "unit": 15, "basis": 30, "result": 21}
_BAR_MM, _BAR_SCALE = 30.0, 1.5


def _draw_elements_page(sheet: _Sheet, spec: dict[str, Any], font: str, view: CertificateView) -> None:
    """A land label's second page: each element's value against its limit (with a bar), whether it was
    measured or estimated (±σ), and over or within; then the conclusion per standard."""
    margin, centre = spec["margin_mm"], spec["page_mm"][0] / 2
    width = spec["page_mm"][0] - 2 * margin
    canvas = sheet.canvas
    canvas.setFillColorRGB(0.1, 0.3, 0.15)
    sheet.draw_text(centre, 30, "元素检测值与限值", font, 18, "center")
    sheet.draw_text(centre, 38, "Element values against their limits", font, 11, "center")
    canvas.setFillColorRGB(0.3, 0.3, 0.3)
    name = view.subject_name if view.subject_name == view.subject_code else f"{view.subject_name} ({view.subject_code})"
    subject = f"{name} · 证书编号 No. {format_code(view.code)}"
    text, size = _fit(subject, font, 9, width, 6)
    sheet.draw_text(centre, 46, text, font, size, "center")
    heads = {"name": "元素 Element", "value": "检测值 Value (±σ)", "limit": "限值 Limit", "unit": "单位 Unit",
             "bar": "占限值 vs limit", "basis": "依据 Basis", "result": "结论 Result"}
    y = spec["rule_y_mm"] + 9.0  # below the frame's rule
    canvas.setFillColorRGB(0.35, 0.35, 0.35)
    for key, (x, align) in _ELEMENT_COLUMNS.items():
        sheet.draw_text(margin + x, y, heads[key], font, 7.5, align)
    canvas.setStrokeColorRGB(0.6, 0.6, 0.6)
    canvas.setLineWidth(0.4)
    canvas.line(margin * MM, sheet.y(y + 2), (margin + width) * MM, sheet.y(y + 2))
    y += 8.5
    for row in view.elements[:24]:
        canvas.setFillColorRGB(0.7, 0.1, 0.1) if row.over else canvas.setFillColorRGB(0, 0, 0)
        cells = {"name": row.name, "value": row.value, "limit": row.limit, "unit": row.unit, "basis": row.basis,
                 "result": row.result}
        for key, value in cells.items():
            x, align = _ELEMENT_COLUMNS[key]
            text, size = _fit(value, font, 9.5, _CELL_MM.get(key, 40), 5.5)
            sheet.draw_text(margin + x, y, text, font, size, align)
        _draw_bar(sheet, margin + _ELEMENT_COLUMNS["bar"][0], y, row)
        y += 8.0
    canvas.setFillColorRGB(0, 0, 0)
    y += 6
    canvas.setFillColorRGB(0.1, 0.3, 0.15)
    sheet.draw_text(margin, y, "各标准结论 Conclusion per standard", font, 11)
    canvas.setFillColorRGB(0, 0, 0)
    for line in view.conclusions:
        y += 7.5
        text, size = _fit(line, font, 9.5, width, 6)
        sheet.draw_text(margin, y, text, font, size)
    note = ("一个村或园区的数值为其最不利地块的数值（不标出地块）。 For a village or park each value is its worst "
            "parcel's (no parcel named).") if view.subject_type != "parcel" else ""
    if note:
        text, size = _fit(note, font, 8, width, 5.5)
        canvas.setFillColorRGB(0.35, 0.35, 0.35)
        sheet.draw_text(margin, y + 9, text, font, size)
        canvas.setFillColorRGB(0, 0, 0)


def _draw_bar(sheet: _Sheet, x: float, baseline: float, row: ElementRow) -> None:
    """Value against limit: the limit mark at two thirds, the bar red past it."""
    canvas, top = sheet.canvas, baseline - 3.0
    canvas.saveState()
    canvas.setFillColorRGB(0.92, 0.92, 0.92)
    canvas.rect(x * MM, sheet.y(top + 3), _BAR_MM * MM, 3 * MM, stroke=0, fill=1)
    if row.ratio is not None:
        filled = min(max(row.ratio, 0.0), _BAR_SCALE) / _BAR_SCALE * _BAR_MM
        canvas.setFillColorRGB(0.75, 0.15, 0.15) if row.over else canvas.setFillColorRGB(0.2, 0.55, 0.3)
        canvas.rect(x * MM, sheet.y(top + 3), filled * MM, 3 * MM, stroke=0, fill=1)
    canvas.setStrokeColorRGB(0, 0, 0)
    canvas.setLineWidth(0.8)
    mark = x + _BAR_MM / _BAR_SCALE
    canvas.line(mark * MM, sheet.y(top - 0.8), mark * MM, sheet.y(top + 3.8))
    canvas.restoreState()


def _draw_seal(sheet: _Sheet, spec: dict[str, Any], png: bytes) -> None:
    """The institute's seal, 36 mm, between the two QR codes (where a stamp would go)."""
    from reportlab.lib.utils import ImageReader

    try:
        image = ImageReader(io.BytesIO(png))
    except Exception:  # noqa: BLE001 - a seal that cannot be read is left off, never a failed certificate
        return
    size = 36.0
    x = (spec["page_mm"][0] - size) / 2
    y = spec["verify_qr"]["y_mm"] + 8
    sheet.canvas.drawImage(image, x * MM, sheet.y(y + size), size * MM, size * MM, mask="auto",
                           preserveAspectRatio=True)


def _draw_watermark(sheet: _Sheet, spec: dict[str, Any], font: str, text: str) -> None:
    """Drawn first, so QR squares and text sit on top of it."""
    width, height = spec["page_mm"]
    size = min(spec["watermark"]["pt"], 0.75 * math.hypot(width, height) * MM / stringWidth(text, font, 1))
    canvas = sheet.canvas
    canvas.saveState()
    canvas.setFillColorRGB(0.97, 0.72, 0.72)
    canvas.translate(width / 2 * MM, height / 2 * MM)
    canvas.rotate(spec["watermark"]["angle_deg"])
    canvas.setFont(font, size)
    canvas.drawCentredString(0, -size / 3, text)
    canvas.restoreState()


def _draw_frame(sheet: _Sheet, spec: dict[str, Any]) -> None:
    width, height = spec["page_mm"]
    canvas, inset = sheet.canvas, spec["frame_inset_mm"]
    canvas.saveState()
    canvas.setStrokeColorRGB(0.18, 0.45, 0.25)
    for offset, line in ((0, 1.6), (1.6, 0.5)):
        canvas.setLineWidth(line)
        d = inset + offset
        canvas.rect(d * MM, d * MM, (width - 2 * d) * MM, (height - 2 * d) * MM, stroke=1, fill=0)
    canvas.setLineWidth(0.6)
    canvas.line(
        spec["margin_mm"] * MM,
        sheet.y(spec["rule_y_mm"]),
        (width - spec["margin_mm"]) * MM,
        sheet.y(spec["rule_y_mm"]),
    )
    canvas.restoreState()


def _draw_heading(sheet: _Sheet, spec: dict[str, Any], font: str, view: CertificateView) -> None:
    centre, title = spec["page_mm"][0] / 2, spec["title"]
    sheet.canvas.setFillColorRGB(0.1, 0.3, 0.15)
    zh, en = (("土地标识 · 土壤检测结论", "Land label: soil test conclusions") if view.kind == "land_label"
              else ("绿色食品产地土壤质量证书", "Green-food soil quality certificate"))
    sheet.draw_text(centre, title["zh_y_mm"], zh, font, title["zh_pt"], "center")
    sheet.draw_text(centre, title["en_y_mm"], en, font, title["en_pt"], "center")
    sheet.canvas.setFillColorRGB(0, 0, 0)
    code, grouped = spec["code"], format_code(view.code)
    prefix, prefix_pt = "证书编号 Certificate No. ", code["pt"] * 0.75
    width = (stringWidth(prefix, font, prefix_pt) + stringWidth(grouped, MONO_FONT_NAME, code["pt"])) / MM
    label = sheet.draw_text(centre - width / 2, code["y_mm"], prefix, font, prefix_pt)
    sheet.draw_text(label.x_mm + label.width_mm, code["y_mm"], grouped, MONO_FONT_NAME, code["pt"])


def _field_rows(view: CertificateView) -> list[tuple[str, str, str]]:
    kind_zh, kind_en = SUBJECT_TYPES.get(view.subject_type, (view.subject_type, view.subject_type))
    verdict_zh, verdict_en = VERDICTS.get(view.verdict, (view.verdict, view.verdict))
    status_zh, status_en = STATUSES.get(view.status, (view.status, view.status))
    status = f"{status_zh} {status_en}" + (f" — {view.status_reason}" if view.status_reason else "")
    place = " · ".join(p for p in (view.county, view.township, view.village) if p)
    tested = view.tested_on.isoformat()
    if view.tested_from and view.tested_from != view.tested_on:
        tested = f"{view.tested_from.isoformat()} – {tested}"
    if view.kind == "land_label":
        judged = [("结论" if i == 0 else "", "Conclusion" if i == 0 else "", line)
                  for i, line in enumerate(view.conclusions)]
    else:
        judged = [("土壤质量等级", "Soil grade", view.grade_label or GRADES.get(view.grade, view.grade)),
                  ("结论", "Verdict", f"{verdict_zh} {verdict_en}")]
    return [
        ("认证对象", "Subject", f"{kind_zh} {kind_en} · {view.subject_name} ({view.subject_code})"),
        ("所在地", "Location", place),
        *judged,
        ("评价依据", "Rule pack", f"{view.rule_pack_code} v{view.rule_pack_version} · {view.standard}"),
        ("土壤检测日期", "Soil tested", tested),
        ("签发日期", "Issued", view.issued_at.isoformat()),
        ("有效期至", "Valid until", view.valid_until.isoformat()),
        ("状态", "Status", status),
    ]


def _draw_fields(sheet: _Sheet, spec: dict[str, Any], font: str, view: CertificateView) -> float:
    """The label/value table; returns the bottom of the last row in mm."""
    f, margin = spec["fields"], spec["margin_mm"]
    room = spec["page_mm"][0] - margin - f["value_x_mm"]
    y = f["top_mm"]
    for label_zh, label_en, value in _field_rows(view):
        sheet.draw_text(margin, y, label_zh, font, f["label_pt"])
        sheet.canvas.setFillColorRGB(0.4, 0.4, 0.4)
        sheet.draw_text(margin, y + _line_mm(f["label_en_pt"]) + 0.4, label_en, font, f["label_en_pt"])
        sheet.canvas.setFillColorRGB(0, 0, 0)
        text, size = _fit(value, font, f["value_pt"], room, f["min_pt"])
        sheet.draw_text(f["value_x_mm"], y, text, font, size)
        y += f["row_mm"]
    return y - f["row_mm"] + _line_mm(f["label_en_pt"]) + 1


def _draw_note(sheet: _Sheet, spec: dict[str, Any], font: str, top: float) -> None:
    note, margin = spec["note"], spec["margin_mm"]
    width = spec["page_mm"][0] - 2 * margin
    canvas = sheet.canvas
    canvas.saveState()
    canvas.setStrokeColorRGB(0.8, 0.45, 0.0)
    canvas.setFillColorRGB(1.0, 0.96, 0.88)
    canvas.setLineWidth(0.8)
    canvas.rect(
        margin * MM, sheet.y(top + note["height_mm"]), width * MM, note["height_mm"] * MM, stroke=1, fill=1
    )
    canvas.setFillColorRGB(0.55, 0.25, 0.0)
    baseline = top + 1.5
    for line in UNVERIFIED_NOTE:
        baseline += _line_mm(note["pt"])
        text, size = _fit(line, font, note["pt"], width - 6, 6)
        sheet.draw_text(margin + 3, baseline, text, font, size)
    canvas.restoreState()


def _draw_certificate_qrs(sheet: _Sheet, spec: dict[str, Any], font: str, view: CertificateView) -> None:
    captions = {
        "verify_qr": (view.verify_url, "扫码在线验证 Scan to verify online", view.verify_url),
        "token_qr": (
            view.token,
            "离线验证签名 Signed token for offline checks",
            f"Ed25519 · 密钥 Key ID {view.key_id}",
        ),
    }
    cap, placed = spec["caption"], []
    for key, (payload, _, _) in captions.items():
        qr = spec[key]
        matrix = qr_matrix(payload, qr["ecc"])
        module = _module_size(qr, matrix.size, qr["box_mm"])
        box = (matrix.size + 2 * QUIET_ZONE_MODULES) * module
        placed.append(
            sheet.draw_qr(qr["x_mm"] + (qr["box_mm"] - box) / 2, qr["y_mm"], matrix, module, payload)
        )
    baseline = max(p.y_mm + p.box_mm for p in placed) + cap["gap_mm"]
    for key, (_, title, detail) in captions.items():
        qr = spec[key]
        centre = qr["x_mm"] + qr["box_mm"] / 2
        text, size = _fit(title, font, cap["pt"], qr["box_mm"], 6)
        sheet.draw_text(centre, baseline, text, font, size, "center")
        text, size = _fit(detail, font, cap["small_pt"], qr["box_mm"], 4.5)
        sheet.draw_text(centre, baseline + _line_mm(cap["pt"]), text, font, size, "center")
