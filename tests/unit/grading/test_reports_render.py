"""Report renderers: plain rows in, PDF / CSV / GeoJSON bytes out (no app, no database)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest
from PIL import Image

from fieldsvc.grading import reports

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")


def square(lon: float, lat: float, d: float = 0.0008) -> str:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


ROWS = [
    {"code": "P-1", "village": "360129101206", "farm_park": None, "land_use": "paddy", "crop": "水稻",
     "area_m2": 6400.5,
     "geometry_json": square(115.62, 28.18), "verdict": "qualified", "grade": "clean", "qualified": True,
     "limiting": [], "strict_control": False, "tested_on": "2026-11-20"},
    {"code": "P-2", "village": "360129101206", "farm_park": "FP-1", "land_use": "tea", "crop": "茶叶",
     "area_m2": 5000.0,
     "geometry_json": square(115.621, 28.18), "verdict": "not_qualified", "grade": "polluted", "qualified": False,
     "limiting": ["Cd", "Hg"], "strict_control": False, "tested_on": "2026-11-21"},
    {"code": "P-3", "village": "360129101206", "farm_park": None, "land_use": "orchard", "crop": None, "area_m2": 3000,
     "geometry_json": square(115.62, 28.181), "verdict": "not_graded", "grade": None, "qualified": False,
     "limiting": [], "strict_control": False, "tested_on": None},
    {"code": "P-4", "village": "360129101206", "farm_park": None, "land_use": "dryland", "crop": None, "area_m2": 2000,
     "geometry_json": square(115.621, 28.181), "verdict": "needs_sampling", "grade": None, "qualified": False,
     "limiting": ["Cd"], "strict_control": False, "tested_on": None, "basis": "estimated", "basis_analyte": "Cd",
     "sigma": 0.031, "neighbour_samples": 12, "basis_text": "estimated (Cd ± 0.031 mg/kg, from 12 samples)"},
]
SUMMARY = {
    "subject": {"type": "village", "code": "360129101206", "name": "新湖村", "name_en": "Xinhu Village"},
    "rule_pack": {"code": "green_food_soil", "version": "2021.1", "verified": False, "standard": "NY/T 391-2021",
                  "note": "The values of this rule pack have not yet been checked.", "note_zh": "尚未核对。"},
    "grade": "C", "qualified": False, "verdict": "not_qualified", "limiting": ["P-2", "P-3"],
    "explanation": {"grade": "C", "qualified_share": "0.4513", "coverage": "0.7891", "total_area_m2": "14400.5",
                    "graded_area_m2": "11400.5", "qualified_area_m2": "6400.5", "parcel_count": 3,
                    "graded_count": 2, "qualified_count": 1, "strict_control_count": 0,
                    "thresholds": {"A": "0.95", "B": "0.80"}},
    "computed_at": "2026-11-24T03:00:00Z",
}


def pdf_text(data: bytes, folder) -> str:
    (folder / "r.pdf").write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", "r.pdf", "-"], cwd=folder, check=True, capture_output=True)
    return out.stdout.decode()


def test_pdf_opens_and_carries_chinese_and_english_text(tmp_path):
    data = reports.render_pdf(SUMMARY, ROWS)
    assert data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    for needle in ("新湖村 土壤质量评价报告", "Soil grading report", "等级 Grade: C", "45.1 %", "78.9 %",
                   "尚未核对", "not yet been checked", "图例 Legend", "比例尺 scale", "不合格 not qualified",
                   "P-1", "P-2", "Cd, Hg", "水田 paddy"):
        assert needle in text, needle
    # the basis shows beside every verdict: measured, estimated with its sigma and samples, not assessed
    for needle in ("依据 Basis: 实测 measured: 2", "插值估算 estimated: 1", "未评价 not assessed: 1",
                   "实测 measured", "插值估算 estimated (Cd ± 0.031 mg/kg, from 12 samples)", "未评价 not assessed"):
        assert needle in text, needle
    fonts = subprocess.run(["pdffonts", "r.pdf"], cwd=tmp_path, check=True, capture_output=True).stdout.decode()
    cjk = [line.split() for line in fonts.splitlines() if "MicroHei" in line]
    assert cjk and all("+" in c[0] and c[-5:-2] == ["yes", "yes", "yes"] for c in cjk), fonts  # embedded subset


def test_pdf_map_draws_parcels_in_their_grade_colours(tmp_path):
    (tmp_path / "r.pdf").write_bytes(reports.render_pdf(SUMMARY, ROWS))
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", "r.pdf", "p"], cwd=tmp_path, check=True)
    (png,) = tmp_path.glob("p*.png")
    image = Image.open(png).convert("RGB")
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}

    def near(hex_colour: str) -> bool:
        target = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return any(sum(abs(a - b) for a, b in zip(c, target, strict=True)) < 12 for c in colours)

    assert near("#1a9850") and near("#d73027") and near("#bdbdbd")  # clean, not qualified, not assessed (grey)
    assert not near("#fdae61")  # nothing indeterminate, so its colour is absent


def test_pdf_with_no_parcels_and_many_parcels(tmp_path):
    empty = reports.render_pdf(SUMMARY, [])
    assert "No parcels to map" in pdf_text(empty, tmp_path)
    many = [dict(ROWS[i % 4], code=f"P-{i:05d}", geometry_json=square(115.62 + (i % 60) * 0.001,
                                                                     28.18 + (i // 60) * 0.001))
            for i in range(reports.MAX_TABLE_ROWS + 5)]
    text = pdf_text(reports.render_pdf(SUMMARY, many), tmp_path)
    assert f"Only the first {reports.MAX_TABLE_ROWS} of {len(many)} parcels" in text


def test_csv_rows_match_the_parcels():
    data = reports.render_csv(SUMMARY, ROWS)
    assert data.startswith("\ufeff".encode())  # spreadsheet programs then read UTF-8
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["code"] for r in rows] == ["P-1", "P-2", "P-3", "P-4"]
    assert (rows[3]["basis"], rows[3]["basis_analyte"], rows[3]["sigma"], rows[3]["neighbour_samples"],
            rows[3]["basis_text"]) == ("estimated", "Cd", "0.031", "12",
                                       "estimated (Cd ± 0.031 mg/kg, from 12 samples)")
    basis_keys = ("basis", "basis_analyte", "sigma", "neighbour_samples", "basis_text")
    assert {k: v for k, v in rows[1].items() if k not in basis_keys} == {
                       "code": "P-2", "village": "360129101206", "farm_park": "FP-1", "land_use": "tea",
                       "crop": "茶叶", "area_m2": "5000.0", "verdict": "not_qualified", "grade": "polluted",
                       "qualified": "false", "limiting": "Cd;Hg", "strict_control": "false",
                       "tested_on": "2026-11-21"}
    assert rows[2]["grade"] == "" and rows[2]["tested_on"] == ""


def test_geojson_is_a_feature_collection_with_grade_properties():
    doc = json.loads(reports.render_geojson(SUMMARY, ROWS))
    assert doc["type"] == "FeatureCollection" and doc["summary"]["grade"] == "C"
    assert [f["id"] for f in doc["features"]] == ["P-1", "P-2", "P-3", "P-4"]
    p2 = doc["features"][1]
    assert p2["type"] == "Feature" and p2["geometry"]["type"] == "Polygon"
    assert (p2["properties"]["verdict"], p2["properties"]["grade"], p2["properties"]["limiting"],
            p2["properties"]["category"]) == ("not_qualified", "polluted", ["Cd", "Hg"], "not_qualified")
    assert doc["features"][0]["properties"]["category"] == "clean"


@pytest.mark.parametrize("metres, expected", [(1.3, 1), (7, 5), (19.9, 10), (250, 200), (999, 500), (1000, 1000)])
def test_scale_bar_lengths_are_round(metres, expected):
    assert reports._nice_length(metres) == expected
