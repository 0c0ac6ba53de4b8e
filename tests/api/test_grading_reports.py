"""Reports over HTTP: signed-in roles only, PDF/CSV/GeoJSON agree with the stored grades."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest

from tests.api.test_grading_api import CLEAN, FAIL_CD, parcels_by, put_results, put_sample
from tests.api.test_grading_rollup import run_county
from tests.helpers import assert_problem


@pytest.fixture
def graded(app, client, official, county):
    village = county.regions[-1]["code"]
    parcels = parcels_by(county, village=village)
    for i, p in enumerate(parcels[:-1]):  # the last parcel stays ungraded
        put_results(app, put_sample(app, p["code"]), FAIL_CD if i == 0 else CLEAN)
    run_county(client, official, county)
    return village, parcels


def get(client, account, path: str):
    return client.get(path, headers=account.headers if account else {})


def test_csv_and_geojson_match_the_grades(client, official, county, graded):
    village, parcels = graded
    resp = get(client, official, f"/api/v1/reports/village/{village}.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert sorted(r["code"] for r in rows) == sorted(p["code"] for p in parcels)
    by_code = {r["code"]: r for r in rows}
    assert (by_code[parcels[0]["code"]]["verdict"], by_code[parcels[0]["code"]]["limiting"]) == ("not_qualified",
                                                                                                 "Cd")
    assert by_code[parcels[1]["code"]]["grade"] == "clean"
    assert by_code[parcels[-1]["code"]]["verdict"] == "not_assessed"
    for r in rows:  # each row says what GET /grades says
        body = get(client, official, f"/api/v1/grades/parcel/{r['code']}").get_json()
        assert (r["verdict"], r["grade"] or None) == (body["verdict"], body["grade"])

    doc = get(client, official, f"/api/v1/reports/village/{village}.geojson")
    assert doc.mimetype == "application/geo+json"
    data = doc.get_json(force=True)
    assert data["type"] == "FeatureCollection" and len(data["features"]) == len(parcels)
    assert data["summary"]["grade"] == get(client, official, f"/api/v1/grades/village/{village}").get_json()["grade"]
    verdicts = sorted(f["properties"]["verdict"] for f in data["features"])
    assert verdicts == sorted(["not_qualified", "not_assessed"] + ["qualified"] * (len(parcels) - 2))


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_pdf_report_for_county_and_park(client, official, county, graded, tmp_path):
    for path, name in ((f"/api/v1/reports/county/{county.county}.pdf", "青禾县"),
                       (f"/api/v1/reports/farm-park/{county.farm_parks[0]['code']}.pdf",
                        county.farm_parks[0]["name"])):
        resp = get(client, official, path)
        assert resp.status_code == 200 and resp.mimetype == "application/pdf"
        (tmp_path / "r.pdf").write_bytes(resp.data)
        text = subprocess.run(["pdftotext", "r.pdf", "-"], cwd=tmp_path, check=True,
                              capture_output=True).stdout.decode()
        assert f"{name} 土壤质量评价报告" in text and "Soil grading report" in text and "Parcel grades" in text
        subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "1", "r.pdf", "p"], cwd=tmp_path, check=True)


def test_reports_need_sign_in_and_respect_scope(client, official, make_account, county, graded):
    village, _ = graded
    path = f"/api/v1/reports/village/{village}.csv"
    assert_problem(client.get(path), 401, "unauthorized")
    assert_problem(get(client, make_account("official", county="360130"), path), 404, "not_found")
    assert get(client, make_account("lab"), path).status_code == 200
    assert_problem(get(client, official, f"/api/v1/reports/parcel/{village}.csv"), 404, "not_found")
    assert_problem(get(client, official, f"/api/v1/reports/village/{village}.docx"), 404, "not_found")
    assert_problem(get(client, official, "/api/v1/reports/village/360129999999.pdf"), 404, "not_found")
    assert_problem(get(client, official, f"/api/v1/reports/village/{village}.pdf?rule_pack=nope"), 422,
                   "validation_failed", field="rule_pack")
