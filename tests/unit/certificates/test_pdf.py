from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from fieldsvc.certificates.codes import format_code, new_code, verify_url
from fieldsvc.certificates.pdf import (
    MIN_MODULE_MM,
    TEMPLATE_DIR,
    CertificateView,
    LabelView,
    list_templates,
    load_template,
    render_certificate,
    render_certificate_with_layout,
    render_labels,
    render_labels_with_layout,
    validate_template,
)
from fieldsvc.certificates.signing import Claims, KeyRing, sign_claims
from fieldsvc.errors import Problem
from fieldsvc.render import fonts

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")

BASE = "https://fieldsvc.example"
RING = KeyRing.generate()
DPI = 300


def make_view(**changes) -> CertificateView:
    code = new_code()
    claims = Claims(
        code, "parcel", "P330106-0421", "clean", "nyt391-green@3", date(2025, 4, 10), date(2028, 5, 1)
    )
    view = CertificateView(
        code=code,
        verify_url=verify_url(BASE, code),
        token=sign_claims(claims, RING),
        key_id=RING.current.kid,
        subject_type="parcel",
        subject_name="东山村三组茶园地块",
        subject_code="P330106-0421",
        county="临安区",
        township="青山湖街道",
        village="东山村",
        grade="clean",
        verdict="qualified",
        rule_pack_code="nyt391-green",
        rule_pack_version="3",
        standard="NY/T 391-2021 绿色食品 产地环境质量",
        pack_verified=True,
        tested_on=date(2025, 4, 10),
        tested_from=date(2025, 3, 2),
        issued_at=date(2025, 5, 1),
        valid_until=date(2028, 5, 1),
    )
    return replace(view, **changes)


def make_labels(count: int, name: str = "东山村三组茶园地块") -> list[LabelView]:
    return [LabelView(code, verify_url(BASE, code), name) for code in (new_code() for _ in range(count))]


def rasterise(pdf: bytes, folder: Path) -> list[Image.Image]:
    (folder / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "doc.pdf", "page"], cwd=folder, check=True)
    return [Image.open(p).convert("L") for p in sorted(folder.glob("page-*.png"))]


def scanned(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def pdf_text(pdf: bytes, folder: Path) -> str:
    (folder / "text.pdf").write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "text.pdf", "-"], cwd=folder, check=True, capture_output=True
    ).stdout.decode()


@pytest.fixture(scope="module")
def revoked():
    view = make_view(status="revoked", status_reason="复检不合格 Re-test failed (Cd)", pack_verified=False)
    return view, render_certificate_with_layout(view)


@pytest.fixture(scope="module")
def sheet():
    labels = make_labels(30)
    return labels, render_labels_with_layout(labels, "a4_3x7", start_slot=5)


@pytest.fixture(scope="module")
def thermal():
    labels = make_labels(3)
    return labels, render_labels_with_layout(labels, "thermal_50x30")


# --- the printed QR codes scan -----------------------------------------------------------------


def test_printed_certificate_scans_to_the_issued_url_and_token(revoked, tmp_path):
    view, rendered = revoked
    [page] = rasterise(rendered.pdf, tmp_path)
    assert Counter(scanned(page)) == Counter([view.verify_url, view.token])


def test_printed_a4_sheet_from_slot_5_scans_every_label_on_the_right_page(sheet, tmp_path):
    labels, rendered = sheet
    pages = rasterise(rendered.pdf, tmp_path)
    assert len(pages) == rendered.pages == 2
    urls = [label.verify_url for label in labels]
    assert Counter(scanned(pages[0])) == Counter(urls[:16])  # slots 5..20
    assert Counter(scanned(pages[1])) == Counter(urls[16:])


def test_printed_thermal_labels_scan_one_per_page(thermal, tmp_path):
    labels, rendered = thermal
    pages = rasterise(rendered.pdf, tmp_path)
    assert len(pages) == 3
    for page in pages:
        assert page.size[0] == pytest.approx(50 / 25.4 * DPI, abs=1)
        assert page.size[1] == pytest.approx(30 / 25.4 * DPI, abs=1)
    assert [scanned(p) for p in pages] == [[label.verify_url] for label in labels]


def test_scanned_symbol_size_matches_the_drawn_module_size(thermal, tmp_path):
    _, rendered = thermal
    page = rasterise(rendered.pdf, tmp_path)[0]
    [result] = zxingcpp.read_barcodes(page, formats=zxingcpp.BarcodeFormat.QRCode)
    placed = rendered.qr[0]
    top_left, top_right = result.position.top_left, result.position.top_right
    width_px = np.hypot(top_right.x - top_left.x, top_right.y - top_left.y)
    measured_module_mm = (
        width_px / (placed.modules - 1) * 25.4 / DPI
    )  # corners sit on module centres or edges
    assert measured_module_mm == pytest.approx(placed.module_mm, rel=0.06)
    assert measured_module_mm >= MIN_MODULE_MM


# --- geometry: module size, quiet zone, placement ---------------------------------------------------


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _quiet_box(p) -> tuple[float, float, float, float]:
    return (p.x_mm, p.y_mm, p.x_mm + p.box_mm, p.y_mm + p.box_mm)


@pytest.mark.parametrize("which", ["revoked", "sheet", "thermal"])
def test_modules_are_at_least_0_4_mm_and_quiet_zones_are_clear_of_text(which, request):
    _, rendered = request.getfixturevalue(which)
    assert rendered.qr and rendered.text
    for placed in rendered.qr:
        assert placed.module_mm >= MIN_MODULE_MM
        assert placed.quiet_zone_modules == 4
        box = _quiet_box(placed)
        assert 0 <= box[0] and box[2] <= rendered.page_mm[0] and 0 <= box[1] and box[3] <= rendered.page_mm[1]
        for text in rendered.text:
            if text.page == placed.page:
                area = (text.x_mm, text.y_mm, text.x_mm + text.width_mm, text.y_mm + text.height_mm)
                assert not _overlaps(area, box), (text.text, placed)
        for other in rendered.qr:
            if other is not placed and other.page == placed.page:
                assert not _overlaps(_quiet_box(other), box)


def test_quiet_zones_are_white_on_the_printed_page_even_under_the_watermark(revoked, tmp_path):
    _, rendered = revoked
    assert rendered.watermark == "REVOKED 已撤销"
    pixels = np.asarray(rasterise(rendered.pdf, tmp_path)[0])
    px = DPI / 25.4
    for placed in rendered.qr:
        left, top, right, bottom = (round(v * px) for v in _quiet_box(placed))
        s_left, s_top, s_right, s_bottom = (round(v * px) for v in placed.symbol_mm)
        edge = 2  # anti-aliasing at the edges
        quiet = np.zeros(pixels.shape, dtype=bool)
        quiet[top + edge : bottom - edge, left + edge : right - edge] = True
        quiet[s_top - edge : s_bottom + edge, s_left - edge : s_right + edge] = False
        assert quiet.sum() > 0.5 * (bottom - top) ** 2 * (1 - (placed.modules / (placed.modules + 8)) ** 2)
        assert pixels[quiet].min() >= 250
        assert pixels[s_top:s_bottom, s_left:s_right].min() <= 5  # the symbol itself is black


def test_watermark_is_printed_only_when_not_valid(revoked, tmp_path):
    def pink_pixels(pdf: bytes, folder: Path) -> int:
        (folder / "w.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "40", "-png", "w.pdf", "w"], cwd=folder, check=True)
        rgb = np.asarray(Image.open(next(folder.glob("w-*.png"))).convert("RGB")).astype(int)
        return int(((rgb[..., 0] > 200) & (rgb[..., 0] - rgb[..., 1] > 25) & (rgb[..., 2] < 230)).sum())

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert pink_pixels(revoked[1].pdf, tmp_path / "a") > 500
    assert pink_pixels(render_certificate(make_view()), tmp_path / "b") == 0


def test_a4_sheet_places_labels_on_the_avery_l7160_grid(sheet):
    _, rendered = sheet
    first = rendered.qr[0]  # slot 5: row 1, column 2
    cell_x, cell_y = 7.25 + 2 * (63.5 + 2.5), 15.15 + 38.1
    assert cell_x < first.x_mm and first.x_mm + first.box_mm < cell_x + 63.5
    assert cell_y < first.y_mm and first.y_mm + first.box_mm < cell_y + 38.1
    second_page = [p for p in rendered.qr if p.page == 1]
    assert len(second_page) == 14
    assert second_page[0].x_mm == pytest.approx(7.25 + 1.5)


@pytest.mark.parametrize(("start", "first_row", "first_col"), [(0, 0, 0), (1, 0, 1), (5, 1, 2), (20, 6, 2)])
def test_start_slot_fills_from_that_slot_row_by_row(start, first_row, first_col):
    rendered = render_labels_with_layout(make_labels(2), "a4_3x7", start_slot=start)
    placed = rendered.qr[0]
    col = int((placed.x_mm - 7.25) // (63.5 + 2.5))
    row = int((placed.y_mm - 15.15) // 38.1)
    assert (row, col) == (first_row, first_col)
    assert rendered.pages == (2 if start == 20 else 1)


def test_thermal_module_is_four_printer_dots_at_203_dpi(thermal):
    _, rendered = thermal
    assert {round(p.module_mm * 203 / 25.4, 6) for p in rendered.qr} == {4.0}


def test_long_names_are_shortened_inside_the_label(tmp_path):
    rendered = render_labels_with_layout(make_labels(1, name="很长的地块名称" * 20), "a4_3x7")
    right_edge = 7.25 + 63.5
    assert all(t.x_mm + t.width_mm <= right_edge for t in rendered.text)
    assert any(t.text.endswith("…") for t in rendered.text)


# --- PDF properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["revoked", "sheet", "thermal"])
def test_pdf_asks_for_no_print_scaling(which, request):
    _, rendered = request.getfixturevalue(which)
    assert b"/PrintScaling /None" in rendered.pdf


def test_cjk_font_is_embedded_as_a_subset(revoked, tmp_path):
    (tmp_path / "c.pdf").write_bytes(revoked[1].pdf)
    listing = subprocess.run(
        ["pdffonts", "c.pdf"], cwd=tmp_path, check=True, capture_output=True
    ).stdout.decode()
    rows = [line.split() for line in listing.splitlines() if "WenQuanYi" in line]
    assert rows
    for row in rows:
        assert "+" in row[0]  # subset tag ABCDEF+
        assert row[-5:-2] == ["yes", "yes", "yes"]  # emb sub uni


def test_certificate_text_has_titles_code_place_grade_and_dates(revoked, tmp_path):
    view, rendered = revoked
    text = pdf_text(rendered.pdf, tmp_path)
    for expected in [
        "绿色食品产地土壤质量证书",
        "Green-food soil quality certificate",
        format_code(view.code),
        "东山村三组茶园地块",
        "临安区 · 青山湖街道 · 东山村",
        "清洁 Clean",
        "合格 Qualified",
        "nyt391-green v3",
        "2025-03-02 – 2025-04-10",
        "2028-05-01",
        "Re-test failed (Cd)",
        "Key ID " + view.key_id,
        "尚未与官方标准文本核对",
        "已撤销 Revoked",
    ]:
        assert expected in text, expected


def test_valid_certificate_with_verified_pack_has_no_watermark_or_note(tmp_path):
    rendered = render_certificate_with_layout(make_view())
    assert rendered.watermark is None
    text = pdf_text(rendered.pdf, tmp_path)
    assert "尚未与官方标准文本核对" not in text
    assert "有效 Valid" in text


@pytest.mark.parametrize(
    ("status", "watermark"),
    [("revoked", "REVOKED 已撤销"), ("expired", "EXPIRED 已过期"), ("superseded", "SUPERSEDED 已被取代")],
)
def test_status_other_than_valid_is_watermarked(status, watermark):
    assert render_certificate_with_layout(make_view(status=status)).watermark == watermark


def test_render_certificate_returns_pdf_bytes():
    pdf = render_certificate(make_view())
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")


def test_a_thousand_labels_render_on_48_pages_in_order():
    """(How fast: ``bench/certificates.py``, target ≤ 5 s for 1,000 labels; not timed here.)"""
    labels = make_labels(1000)
    rendered = render_labels_with_layout(labels, "a4_3x7")
    assert rendered.pages == 48 and len(rendered.qr) == 1000
    assert [p.text for p in rendered.qr] == [label.verify_url for label in labels]


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "start"),
    [
        ("a4_3x7", -1),
        ("a4_3x7", 21),
        ("a4_3x7", True),
        ("a4_3x7", "3"),
        ("a4_3x7", 2.0),
        ("thermal_50x30", 1),
    ],
)
def test_start_slot_out_of_range_is_a_422_naming_it(template, start):
    with pytest.raises(Problem) as caught:
        render_labels(make_labels(1), template, start_slot=start)
    assert caught.value.status == 422
    assert "start_slot" in caught.value.details["fields"]


def test_no_labels_is_a_422():
    with pytest.raises(Problem) as caught:
        render_labels([], "a4_3x7")
    assert caught.value.status == 422


@pytest.mark.parametrize("name", ["nope", "../qr_templates/a4_3x7", "A4_3X7", "", "a4_3x7.json", None])
def test_unknown_template_is_a_422(name):
    with pytest.raises(Problem) as caught:
        load_template(name)
    assert (caught.value.status, caught.value.code) == (422, "unknown_template")
    assert "a4_3x7" in caught.value.details["available"]


def test_certificate_template_cannot_print_labels():
    with pytest.raises(Problem) as caught:
        render_labels(make_labels(1), "certificate_a4")
    assert caught.value.code == "unknown_template"


def test_url_too_dense_for_the_label_is_refused_not_printed_small():
    label = LabelView(new_code(), "HTTPS://" + "X" * 200 + ".EXAMPLE/C/X", "名称")
    with pytest.raises(Problem) as caught:
        render_labels([label], "thermal_50x30")
    assert caught.value.code == "qr_too_dense"


# --- templates ----------------------------------------------------------------------------------


def test_shipped_templates_are_listed_and_valid():
    assert {"a4_3x7", "thermal_50x30", "certificate_a4"} <= set(list_templates())
    for name in list_templates():
        data = json.loads((TEMPLATE_DIR / f"{name}.json").read_text("utf-8"))
        assert validate_template(data, name) == []


def test_a4_3x7_template_is_the_avery_l7160_geometry():
    grid = load_template("a4_3x7")["grid"]
    assert grid["label_mm"] == [63.5, 38.1] and (grid["columns"], grid["rows"]) == (3, 7)
    width = 2 * grid["margin_left_mm"] + 3 * 63.5 + 2 * grid["column_gap_mm"]
    height = 2 * grid["margin_top_mm"] + 7 * 38.1
    assert (width, height) == (pytest.approx(210), pytest.approx(297))


def _broken(path: tuple[str, ...], value):
    data = json.loads((TEMPLATE_DIR / "a4_3x7.json").read_text("utf-8"))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("qr", "module_mm"), 0.3, "at least 0.4"),
        (("qr", "min_module_mm"), 0.3, "at least 0.4"),
        (("qr", "ecc"), "X", "ecc"),
        (("grid", "columns"), 4, "do not fit"),
        (("grid", "label_mm"), [63.5], "label_mm"),
        (("kind",), "poster", "kind"),
        (("name",), "other", "name"),
        (("page_mm",), [210], "page_mm"),
        (("padding_mm",), 30, "padding"),
    ],
)
def test_broken_templates_are_explained(path, value, fragment):
    errors = validate_template(_broken(path, value), "a4_3x7")
    assert any(fragment in e for e in errors), errors


def test_missing_configured_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(fonts.FONT_ENV, str(tmp_path / "missing.ttc"))
    with pytest.raises(fonts.CjkFontMissing, match=fonts.FONT_ENV):
        fonts.find_cjk_font()


def test_configured_font_path_wins(monkeypatch):
    real = fonts.find_cjk_font()
    monkeypatch.setenv(fonts.FONT_ENV, str(real))
    assert fonts.find_cjk_font() == real
