"""Area reports as bytes: PDF (summary, map of parcels coloured by grade, table), CSV and GeoJSON.

Plain rows in, bytes out; no Flask or database. The map is drawn from the parcels' own polygons
as vector paths (no tile server), projected equirectangularly around the area's mean latitude,
with a legend, a north arrow and a scale bar. Text uses the embedded CJK font, subset by reportlab.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from reportlab.lib.colors import Color, HexColor, black, white
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from fieldsvc import csvout
from fieldsvc.grading.basis import ESTIMATED, MEASURED, NOT_ASSESSED, WORDS
from fieldsvc.render.fonts import cjk_font

MM = 72 / 25.4
MAX_TABLE_ROWS = 2000  # parcels listed in the PDF table; the CSV and GeoJSON have all of them
MAX_MAP_PARCELS = 100_000
EARTH_M_PER_DEG = 111_320.0

CATEGORIES = (  # key, colour, Chinese, English
    ("clean", HexColor("#1a9850"), "合格·清洁", "qualified, clean"),
    ("still_clean", HexColor("#91cf60"), "合格·尚清洁", "qualified, still clean"),
    ("qualified", HexColor("#66bd63"), "合格", "qualified"),
    ("not_qualified", HexColor("#d73027"), "不合格", "not qualified"),
    ("indeterminate", HexColor("#fdae61"), "无法判定", "indeterminate"),
    ("needs_sampling", HexColor("#f6e08a"), "待采样", "needs sampling"),
    ("not_assessed", HexColor("#bdbdbd"), "未评价", "not assessed"),  # grey, never red
)
_COLOUR = {k: c for k, c, _, _ in CATEGORIES}
SUBJECT_NAMES = {"village": ("行政村", "Village"), "farm_park": ("农业园区", "Farm park"),
                 "county": ("县", "County"), "parcel": ("地块", "Parcel")}
LAND_USE_ZH = {"dryland": "旱地", "paddy": "水田", "vegetable": "菜地", "orchard": "果园", "tea": "茶园",
               "grassland": "草地", "paddy_dryland_rotation": "水旱轮作"}
CSV_FIELDS = ("code", "village", "farm_park", "land_use", "crop", "area_m2", "verdict", "grade", "qualified",
              "limiting", "strict_control", "tested_on",
              # what the verdict rests on (grading.basis): measured, estimated (± σ from N samples), not assessed
              "basis", "basis_analyte", "sigma", "neighbour_samples", "basis_text")


def category(row: Mapping[str, Any]) -> str:
    """The map colour class of a parcel row."""
    verdict = row.get("verdict") or "not_assessed"
    if verdict == "qualified":
        return row.get("grade") if row.get("grade") in ("clean", "still_clean") else "qualified"
    if verdict in ("not_qualified", "indeterminate", "needs_sampling"):
        return verdict
    return "not_assessed" if verdict in ("not_graded", "not_assessed") else "indeterminate"


# --- CSV and GeoJSON --------------------------------------------------------------------------

def render_csv(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One line per parcel; UTF-8 with a BOM so that spreadsheet programs read the Chinese crops."""
    buf = io.StringIO()
    writer = csvout.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow([_csv_value(k, r.get(k)) for k in CSV_FIELDS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _csv_value(key: str, value: Any) -> Any:
    if key == "limiting":
        return ";".join(value or [])
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def render_geojson(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A FeatureCollection of the parcels with their grade properties; the summary as a foreign member."""
    features = []
    for r in rows:
        props = {k: r.get(k) for k in CSV_FIELDS}
        props["category"] = category(r)
        features.append(f'{{"type":"Feature","id":{json.dumps(r["code"], ensure_ascii=False)},'
                        f'"geometry":{r["geometry_json"]},'
                        f'"properties":{json.dumps(props, ensure_ascii=False, separators=(",", ":"))}}}')
    head = {"type": "FeatureCollection", "summary": _summary_json(summary)}
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    return (text + ',"features":[' + ",".join(features) + "]}").encode("utf-8")


def _summary_json(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in ("subject", "rule_pack", "grade", "qualified", "verdict", "explanation",
                                        "computed_at")}


# --- PDF ----------------------------------------------------------------------------------------

class _Pdf:
    def __init__(self, title: str) -> None:
        self.buf = io.BytesIO()
        self.c = Canvas(self.buf, pagesize=A4, pageCompression=1)
        self.c.setTitle(title)
        self.c.setAuthor("fieldsvc")
        self.font = cjk_font()
        self.w, self.h = A4
        self.page = 1

    def text(self, x_mm: float, y_mm: float, text: str, size: float = 9, colour: Color = black) -> None:
        """Text at (x, y) millimetres from the page's top-left corner (baseline)."""
        self.c.setFillColor(colour)
        self.c.setFont(self.font, size)
        self.c.drawString(x_mm * MM, self.h - y_mm * MM, text)

    def width_mm(self, text: str, size: float) -> float:
        return self.c.stringWidth(text, self.font, size) / MM

    def new_page(self) -> None:
        self.footer()
        self.c.showPage()
        self.page += 1

    def footer(self) -> None:
        self.text(15, 290, f"fieldsvc · 第 {self.page} 页 page {self.page}", 7, HexColor("#666666"))

    def bytes(self) -> bytes:
        self.footer()
        self.c.save()
        return self.buf.getvalue()


def render_pdf(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A4 portrait: title and summary, the map, then the parcel table over as many pages as needed."""
    subject = summary.get("subject") or {}
    zh, en = SUBJECT_NAMES.get(subject.get("type"), ("", ""))
    name = subject.get("name") or subject.get("code", "")
    pdf = _Pdf(f"{name} — soil grading report")
    pdf.text(15, 18, f"{name} 土壤质量评价报告", 16)
    pdf.text(15, 25, f"Soil grading report · {en} {subject.get('name_en') or ''} ({zh} {subject.get('code')})", 10)
    y = _summary_block(pdf, summary, 34)
    y = _basis_line(pdf, rows, y)
    _map(pdf, rows, top_mm=y + 2, height_mm=150)
    pdf.new_page()
    _table(pdf, rows)
    return pdf.bytes()


def _fmt_share(value: Any) -> str:
    try:
        return f"{float(value) * 100:.1f} %"
    except (TypeError, ValueError):
        return "—"


def _fmt_area(value: Any) -> str:
    try:
        return f"{float(value) / 10_000:,.2f} ha"
    except (TypeError, ValueError):
        return "—"


def _summary_block(pdf: _Pdf, summary: Mapping[str, Any], y: float) -> float:
    ex = summary.get("explanation") or {}
    pack = summary.get("rule_pack") or {}
    grade = summary.get("grade") or "—"
    shown_grade = "未评价 not assessed" if grade == "not_assessed" else grade
    if summary.get("qualified"):
        verdict = "合格 qualified (grade A)"
    elif grade == "not_assessed":  # too little area valued from samples: not a failing grade
        verdict = (f"未评价 not assessed: 覆盖率低于 coverage below {_fmt_share(ex.get('min_coverage'))}"
                   " (not a failing grade)")
    else:
        verdict = "未达 A 级 not at grade A"
    lines = [
        (f"等级 Grade: {shown_grade}", 13),
        (f"结论 Verdict: {verdict}", 9),
        (f"规则 Rule: {ex.get('rule', 'area share, fieldsvc design')}", 9),
        (f"合格面积占比 Qualified share of area: {_fmt_share(ex.get('qualified_share'))}   "
         f"覆盖率 Coverage (assessed / total area): {_fmt_share(ex.get('coverage'))}", 9),
        (f"总面积 Total area: {_fmt_area(ex.get('total_area_m2'))}   地块 Parcels: {ex.get('parcel_count', 0)}   "
         f"已评价 graded: {ex.get('graded_count', 0)}   合格 qualified: {ex.get('qualified_count', 0)}   "
         f"严格管控 strict control: {ex.get('strict_control_count', 0)}", 9),
        (f"评价依据 Rule pack: {pack.get('code')} {pack.get('version')} ({pack.get('standard') or ''})   "
         f"分级阈值 thresholds A ≥ {_fmt_share((ex.get('thresholds') or {}).get('A'))}, "
         f"B ≥ {_fmt_share((ex.get('thresholds') or {}).get('B'))}", 9),
        (f"计算时间 Computed at: {summary.get('computed_at') or '—'}", 9),
    ]
    for text, size in lines:
        pdf.text(15, y, text, size)
        y += 6 if size > 10 else 5
    if not pack.get("verified"):
        pdf.text(15, y, "注意：" + (pack.get("note_zh") or "本规则包的限值尚未与官方标准文本核对。"), 8,
                 HexColor("#b35806"))
        y += 4.5
        pdf.text(15, y, "Note: " + (pack.get("note") or "rule pack not verified"), 8, HexColor("#b35806"))
        y += 5
    holding = list(summary.get("limiting") or [])
    if holding:
        text = "未合格的最大地块 Largest parcels holding it back: " + ", ".join(holding)
        pdf.text(15, y, _clip(pdf, text, 7, 180), 7)
        y += 5
    return y


def _basis_line(pdf: _Pdf, rows: Sequence[Mapping[str, Any]], y: float) -> float:
    """How many parcels are valued from their own samples, estimated from neighbours, or not assessed."""
    counts = {MEASURED: 0, ESTIMATED: 0, NOT_ASSESSED: 0}
    for r in rows:
        counts[_row_basis(r)] += 1
    zh, en = WORDS["zh"], WORDS["en"]
    text = "依据 Basis: " + "   ".join(f"{zh[k]} {en[k]}: {n}" for k, n in counts.items()) \
        + "   （未评价不计为不合格 not assessed never counts as failing）"
    pdf.text(15, y, _clip(pdf, text, 7.5, 180), 7.5)
    return y + 5


def _row_basis(r: Mapping[str, Any]) -> str:
    basis = r.get("basis")
    if basis in (MEASURED, ESTIMATED, NOT_ASSESSED):
        return basis
    return NOT_ASSESSED if category(r) == "not_assessed" else MEASURED  # rows without a basis: before estimation


def _rings(geometry: Mapping[str, Any]) -> list[list[list[float]]]:
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return list(coords)
    if kind == "MultiPolygon":
        return [ring for poly in coords for ring in poly]
    return []


def _map(pdf: _Pdf, rows: Sequence[Mapping[str, Any]], top_mm: float, height_mm: float) -> None:
    c = pdf.c
    left_mm, width_mm = 15.0, 180.0
    frame = (left_mm * MM, pdf.h - (top_mm + height_mm) * MM, width_mm * MM, height_mm * MM)
    c.setStrokeColor(HexColor("#888888"))
    c.setLineWidth(0.5)
    c.rect(*frame)
    shapes = []
    for r in rows[:MAX_MAP_PARCELS]:
        try:
            rings = _rings(json.loads(r["geometry_json"]))
        except (TypeError, ValueError):
            continue
        if rings:
            shapes.append((category(r), rings))
    if not shapes:
        pdf.text(left_mm + 4, top_mm + 8, "没有地块 No parcels to map", 9)
        return
    xs = [p[0] for _, rings in shapes for ring in rings for p in ring]
    ys = [p[1] for _, rings in shapes for ring in rings for p in ring]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)
    kx = math.cos(math.radians((min_y + max_y) / 2))  # metres per degree of longitude shrink with latitude
    span_x = max((max_x - min_x) * kx, 1e-9)
    span_y = max(max_y - min_y, 1e-9)
    legend_mm, bar_mm = 34, 12  # the legend's column on the right, the scale bar's strip at the bottom
    inner_w, inner_h = (width_mm - 8 - legend_mm) * MM, (height_mm - 8 - bar_mm) * MM
    scale = min(inner_w / span_x, inner_h / span_y)  # points per degree (of latitude)
    ox = frame[0] + 4 * MM + (inner_w - span_x * scale) / 2
    oy = frame[1] + (4 + bar_mm) * MM + (inner_h - span_y * scale) / 2

    def pt(lon: float, lat: float) -> tuple[float, float]:
        return ox + (lon - min_x) * kx * scale, oy + (lat - min_y) * scale

    c.setLineWidth(0.15)
    c.setStrokeColor(white)
    for key in _COLOUR:  # one path per category keeps the file small
        path = c.beginPath()
        used = False
        for cat, rings in shapes:
            if cat != key:
                continue
            for ring in rings:
                x0, y0 = pt(*ring[0][:2])
                path.moveTo(x0, y0)
                for p in ring[1:]:
                    path.lineTo(*pt(*p[:2]))
                path.close()
                used = True
        if used:
            c.setFillColor(_COLOUR[key])
            c.drawPath(path, stroke=1 if len(shapes) < 5000 else 0, fill=1, fillMode=1)
    _legend(pdf, frame, legend_mm, shapes)
    _north_arrow(c, frame[0] + frame[2] - 12 * MM, frame[1] + frame[3] - 20 * MM)
    metres_per_point = EARTH_M_PER_DEG / scale
    _scale_bar(pdf, frame[0] + 5 * MM, frame[1] + 5 * MM, metres_per_point)


def _legend(pdf: _Pdf, frame: tuple, legend_mm: float, shapes: list) -> None:
    c = pdf.c
    counts: dict[str, int] = {}
    for cat, _ in shapes:
        counts[cat] = counts.get(cat, 0) + 1
    x = frame[0] + frame[2] - legend_mm * MM
    y = frame[1] + frame[3] - 30 * MM
    c.setFillColor(black)
    c.setFont(pdf.font, 8)
    c.drawString(x, y, "图例 Legend")
    for key, colour, zh, en in CATEGORIES:
        if key not in counts:
            continue
        y -= 9 * MM
        c.setFillColor(colour)
        c.setStrokeColor(HexColor("#555555"))
        c.rect(x, y, 4 * MM, 3 * MM, stroke=1, fill=1)
        c.setFillColor(black)
        c.setFont(pdf.font, 7)
        c.drawString(x + 5 * MM, y + 1.6 * MM, f"{zh} ({counts[key]})")
        c.drawString(x + 5 * MM, y - 1.4 * MM, en)


def _north_arrow(c: Canvas, x: float, y: float) -> None:
    c.setFillColor(black)
    c.setStrokeColor(black)
    path = c.beginPath()
    path.moveTo(x, y + 12 * MM)
    path.lineTo(x - 3 * MM, y)
    path.lineTo(x, y + 3 * MM)
    path.lineTo(x + 3 * MM, y)
    path.close()
    c.drawPath(path, stroke=1, fill=1)
    c.setFont("Helvetica-Bold", 10)
    c.drawCentredString(x, y + 13.5 * MM, "N")


def _nice_length(max_metres: float) -> float:
    """The largest 1-2-5 × 10^k metres not longer than ``max_metres``."""
    exp = math.floor(math.log10(max_metres))
    for step in (5, 2, 1):
        if step * 10 ** exp <= max_metres:
            return step * 10 ** exp
    return 10 ** exp


def _scale_bar(pdf: _Pdf, x: float, y: float, metres_per_point: float) -> None:
    c = pdf.c
    metres = _nice_length(40 * MM * metres_per_point)
    length = metres / metres_per_point
    for i in range(4):
        c.setFillColor(black if i % 2 == 0 else white)
        c.setStrokeColor(black)
        c.rect(x + i * length / 4, y, length / 4, 1.5 * MM, stroke=1, fill=1)
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    c.setFillColor(black)
    c.setFont(pdf.font, 7)
    c.drawString(x, y + 2.5 * MM, "0")
    c.drawString(x + length + 1.5 * MM, y, label)
    c.drawString(x + length + 14 * MM, y, "比例尺 scale")


TABLE_COLUMNS = (  # header, key, x (mm), width (mm)
    ("地块 Parcel", "code", 15, 30), ("用途 Land use", "land_use", 46, 23), ("面积 m²", "area_m2", 70, 16),
    ("结论 Verdict", "verdict", 87, 25), ("依据 Basis", "basis", 113, 55), ("等级 Grade", "grade", 169, 14),
    ("限制 Limit", "limiting", 184, 12),
)
VERDICT_ZH = {"qualified": "合格", "not_qualified": "不合格", "indeterminate": "无法判定", "not_graded": "未评价",
              "needs_sampling": "待采样", "not_assessed": "未评价"}


def _table(pdf: _Pdf, rows: Sequence[Mapping[str, Any]]) -> None:
    pdf.text(15, 15, "地块评价明细 Parcel grades", 12)
    y = _table_header(pdf, 23)
    for i, r in enumerate(rows[:MAX_TABLE_ROWS]):
        if y > 282:
            pdf.new_page()
            y = _table_header(pdf, 15)
        if i % 2:
            pdf.c.setFillColor(HexColor("#f2f2f2"))
            pdf.c.rect(14 * MM, pdf.h - (y + 3.1) * MM, 182 * MM, 4.6 * MM, stroke=0, fill=1)
        cells = {"code": r.get("code", ""),
                 "land_use": f"{LAND_USE_ZH.get(r.get('land_use'), '')} {r.get('land_use') or ''}",
                 "area_m2": f"{float(r.get('area_m2') or 0):,.1f}",
                 "verdict": _verdict_cell(r),
                 "basis": _basis_cell(r),
                 "grade": r.get("grade") or "—", "limiting": ", ".join(r.get("limiting") or []) or "—"}
        for _, key, x, width in TABLE_COLUMNS:
            colour = _COLOUR.get(category(r), black) if key == "verdict" else black
            if key == "verdict" and category(r) in ("still_clean", "clean", "qualified"):
                colour = HexColor("#1a7837")
            if key == "basis" and _row_basis(r) == NOT_ASSESSED:
                colour = HexColor("#757575")  # grey, never red
            size = 6 if key == "basis" else 7
            pdf.text(x, y + 2, _clip(pdf, str(cells[key]), size, width), size, colour)
        y += 4.6
    if len(rows) > MAX_TABLE_ROWS:
        pdf.text(15, y + 5, f"仅列出前 {MAX_TABLE_ROWS} 个地块，完整列表见 CSV。 Only the first {MAX_TABLE_ROWS} of "
                            f"{len(rows)} parcels are listed; the CSV has all of them.", 8)


def _verdict_cell(r: Mapping[str, Any]) -> str:
    verdict = "not_assessed" if category(r) == "not_assessed" else (r.get("verdict") or "")
    return f"{VERDICT_ZH.get(verdict, '')} {verdict.replace('_', ' ')}"


def _basis_cell(r: Mapping[str, Any]) -> str:
    """"实测 measured", "插值估算 estimated (Cd ± 0.031 mg/kg, from 12 samples)", "未评价 not assessed"."""
    basis = _row_basis(r)
    if basis == ESTIMATED and r.get("basis_text"):
        return f"{WORDS['zh'][ESTIMATED]} {r['basis_text']}"
    return f"{WORDS['zh'][basis]} {WORDS['en'][basis]}"


def _table_header(pdf: _Pdf, y: float) -> float:
    pdf.c.setFillColor(HexColor("#dddddd"))
    pdf.c.rect(14 * MM, pdf.h - (y + 3.8) * MM, 182 * MM, 5.5 * MM, stroke=0, fill=1)
    for header, _, x, _ in TABLE_COLUMNS:
        pdf.text(x, y + 2.4, header, 7.5)
    return y + 6


def _clip(pdf: _Pdf, text: str, size: float, max_mm: float) -> str:
    if pdf.width_mm(text, size) <= max_mm:
        return text
    while text and pdf.width_mm(text + "…", size) > max_mm:
        text = text[:-1]
    return text + "…"
