"""Exports (DESIGN §4.9): files read back with openpyxl and GDAL (pyogrio) equal the API's data; CSV
cells that a spreadsheet would run are escaped; filters, roles and county scoping."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pyogrio
import pyogrio.raw
import pytest

from tests.api.test_console_pages import build_scene
from tests.helpers import assert_problem

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def graded(app, client, county, make_account):
    """The console scene (samples, a conflict, a held sample, results) approved and graded."""
    importer, reviewer = make_account("official"), make_account("official")
    scene = build_scene(client, county, importer.headers, make_account("sampler").username)
    resp = client.post("/api/v1/lab/results/approve", json={"ids": scene.result_ids}, headers=reviewer.headers)
    assert resp.get_json()["done"] == len(scene.result_ids)
    run = client.post("/api/v1/grading/runs", json={"scope": {"county": scene.county}}, headers=reviewer.headers)
    assert run.status_code in (200, 201), run.get_json()
    return scene, reviewer


def export(client, account, name, **query):
    resp = client.get(f"/api/v1/exports/{name}", query_string=query, headers=account.headers)
    assert resp.status_code == 200, (resp.status_code, resp.get_data()[:300])
    return resp


def api_items(client, account, path, **query):
    items, cursor = [], None
    while True:
        body = client.get(path, query_string={"limit": 1000, **query, **({"cursor": cursor} if cursor else {})},
                          headers=account.headers).get_json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def sheet_rows(data: bytes) -> tuple[list[str], list[dict]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header = list(rows[0])
    return header, [dict(zip(header, r, strict=True)) for r in rows[1:]]


def local_minute(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ZONE)
    return moment.replace(tzinfo=None, second=0, microsecond=0)


def test_results_xlsx_equals_the_api(client, graded):
    _, reviewer = graded
    resp = export(client, reviewer, "results.xlsx", lang="zh")
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    header, rows = sheet_rows(resp.data)
    assert header[:5] == ["结果ID", "样品ID", "样品袋编号", "地块", "检测项目"] and "导入时间（北京时间）" in header
    expected = [i for i in api_items(client, reviewer, "/api/v1/lab/results", current=1) if i["qc_type"] is None]
    assert len(rows) == len(expected) == 8  # seven results and one held result
    by_id = {r["结果ID"]: r for r in rows}
    for item in expected:
        row = by_id[item["id"]]
        assert (row["样品袋编号"], row["检测项目"], row["单位"] or "", row["审核状态"], row["版本"]) == (
            item["sample_code"], item["analyte"], item["unit"], item["status"], item["version"])
        if item["value"] is None:
            assert row["检测值"] is None
        else:
            assert isinstance(row["检测值"], (int, float)) and Decimal(str(row["检测值"])) == Decimal(item["value"])
        assert row["导入时间（北京时间）"] == local_minute(item["created_at"])
    english, _ = sheet_rows(export(client, reviewer, "results.xlsx", lang="en").data)
    assert english[:3] == ["Result id", "Sample id", "Bag code"] and "Imported (China time)" in english


def test_samples_xlsx_and_geojson_equal_the_api(client, graded):
    scene, reviewer = graded
    expected = {s["code"]: s for s in api_items(client, reviewer, "/api/v1/samples")}
    _, rows = sheet_rows(export(client, reviewer, "samples.xlsx").data)
    assert {r["Bag code"] for r in rows} == set(expected)
    for row in rows:
        item = expected[row["Bag code"]]
        assert (row["Sample id"], row["Parcel"], row["State"], row["Version"]) == (
            item["id"], item["parcel"], item["state"], item["version"])
        # (a spreadsheet keeps 15 significant digits)
        assert row["Latitude (°)"] == pytest.approx(item["location"]["lat"], rel=1e-14, abs=0)
        assert row["GPS accuracy (m)"] == item["location"]["accuracy_m"]
        assert row["Received (China time)"] == local_minute(item["received_at"])
    features = export(client, reviewer, "samples.geojson").get_json()
    assert features["type"] == "FeatureCollection" and "crs" not in features
    got = {f["properties"]["code"]: f for f in features["features"]}
    assert set(got) == set(expected)
    clean = got[scene.clean_sample]
    loc = expected[scene.clean_sample]["location"]
    assert clean["geometry"] == {"type": "Point", "coordinates": [loc["lon"], loc["lat"]]}
    assert clean["properties"]["received_at"] == expected[scene.clean_sample]["received_at"]


def test_grades_geopackage_has_the_features_and_crs(app, client, graded, tmp_path):
    scene, reviewer = graded
    path = tmp_path / "grades.gpkg"
    path.write_bytes(export(client, reviewer, "grades.gpkg", county=scene.county).data)
    info = pyogrio.read_info(path, layer="grades")
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "MultiPolygon"
    assert info["features"] == 60
    meta, _, geometry, fields = pyogrio.raw.read(path, layer="grades")
    data = dict(zip(meta["fields"], fields, strict=True))
    verdicts = dict(zip(data["parcel"], data["verdict"], strict=True))
    api = client.get(f"/api/v1/grades/parcel/{scene.clean_parcel}", headers=reviewer.headers).get_json()
    assert verdicts[scene.clean_parcel] == api["verdict"] == "qualified"
    import shapely

    shape = shapely.from_wkb(geometry[list(data["parcel"]).index(scene.clean_parcel)])
    parcel = client.get(f"/api/v1/parcels/{scene.clean_parcel}", headers=reviewer.headers).get_json()
    assert shape.equals(shapely.geometry.shape(parcel["geometry"]))
    assert all(-180 <= x <= 180 for x in shape.bounds[::2])  # longitudes first: EPSG:4326 as GIS reads it
    empty = tmp_path / "none.gpkg"
    empty.write_bytes(export(client, reviewer, "grades.gpkg", county="999999").data)
    assert pyogrio.read_info(empty, layer="grades")["features"] == 0


def test_csv_cells_a_spreadsheet_would_run_are_escaped(app, client, county, make_account):
    from tests.api.test_lab_imports import make_samples, upload

    make_samples(app, "S-1")
    lab, official = make_account("lab"), make_account("official")
    text = ("sample_code,analyte,value,unit,detection_limit,method\n"
            'S-1,Cd,0.2,mg/kg,,"=HYPERLINK(""http://x"",""y"")"\nS-1,Pb,20,mg/kg,,@SUM(A1)\n'
            "S-1,Cu,20,mg/kg,,+cmd\nS-1,Zn,60,mg/kg,,-2+3\nS-1,Ni,20,mg/kg,,GB/T 17141\n")
    assert upload(client, lab, text.encode()).status_code == 201
    resp = export(client, official, "results.csv", lang="en")
    assert resp.mimetype == "text/csv" and resp.data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    methods = {r["Analyte"]: r["Method"] for r in rows}
    assert methods == {"Cd": "'=HYPERLINK(\"http://x\",\"y\")", "Pb": "'@SUM(A1)", "Cu": "'+cmd", "Zn": "'-2+3",
                       "Ni": "GB/T 17141"}
    assert {r["Analyte"]: r["Value"] for r in rows}["Cd"] == "0.2"  # exact text, not 0.200000000001
    _, sheet = sheet_rows(export(client, official, "results.xlsx").data)
    assert {r["Analyte"]: r["Method"] for r in sheet}["Cd"] == '=HYPERLINK("http://x","y")'  # a string cell


def test_filters_roles_and_scope(app, client, graded, make_account):
    scene, reviewer = graded
    assert_problem(client.get("/api/v1/exports/certificates.csv?state=held", headers=reviewer.headers), 422,
                   "validation_failed", field="state")
    assert_problem(client.get("/api/v1/exports/samples.csv?lang=fr", headers=reviewer.headers), 422,
                   "validation_failed", field="lang")
    assert_problem(client.get("/api/v1/exports/samples.pdf", headers=reviewer.headers), 404, "not_found")
    assert_problem(client.get("/api/v1/exports/certificates.csv", headers=make_account("lab").headers), 403,
                   "forbidden")
    assert_problem(client.get("/api/v1/exports/samples.csv", headers=make_account("sampler").headers), 403,
                   "forbidden")
    assert_problem(client.get("/api/v1/exports/samples.csv"), 401, "unauthorized")
    held = list(csv.DictReader(io.StringIO(export(client, reviewer, "samples.csv", state="held")
                                           .data.decode("utf-8-sig"))))
    assert [r["Bag code"] for r in held] == [scene.held_sample]
    outsider = make_account("official", county="999999")
    assert export(client, outsider, "samples.geojson").get_json()["features"] == []
    assert export(client, outsider, "grades.csv").data.decode("utf-8-sig").count("\n") == 1  # the header only
