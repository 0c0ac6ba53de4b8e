"""Lab imports over HTTP: dry run, all or nothing, idempotent re-upload, encodings, XLSX, held results, QC."""

from __future__ import annotations

import io
import uuid

import openpyxl
import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from tests.helpers import assert_problem

LONG_HEADER = "sample_code,analyte,value,unit,detection_limit,method\n"


# --- helpers shared with the other lab tests (plain functions, no fixtures) -------------------

def make_samples(app, *codes: str, county: str | None = None) -> dict[str, str]:
    """Insert Sample rows directly (sync builds them for real); returns code → id."""
    from fieldsvc.samples.models import Sample
    from fieldsvc.sequence import allocate

    ids = {}
    with app.app_context():
        for code in codes:
            sid = str(uuid.uuid4())
            db.session.add(Sample(id=sid, code=code, parcel_code="P-1", county_code=county, state="complete",
                                  flags=[], media=[], content_hash="0" * 64, version=1, seq=allocate()[0],
                                  created_by="test"))
            ids[code] = sid
        db.session.commit()
    return ids


def upload(client, account, content: bytes, filename: str = "results.csv", **query):
    return client.post("/api/v1/lab/imports", query_string=query, headers=account.headers,
                       data={"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


def results(client, account, **query) -> list[dict]:
    resp = client.get("/api/v1/lab/results", query_string={"limit": 1000, **query}, headers=account.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def lab(make_account):
    return make_account("lab")


# --- dry run, atomicity, idempotency ---------------------------------------------------------

def test_dry_run_reports_rows_and_writes_nothing(app, client, lab, official):
    from fieldsvc.lab.models import LabImport, LabResult

    make_samples(app, "S-001", "S-002")
    csv = (LONG_HEADER + "S-001,Cd,0.21,mg/kg,0.01,GB/T 17141\nS-002,Pb,<10,mg/kg,,\n"
           "S-999,Cd,0.3,mg/kg,,\n").encode()
    resp = upload(client, lab, csv, dry_run=1)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["dry_run"] is True and body["errors"] == []
    assert (body["rows"], body["accepted"], body["held"]) == (3, 2, 1)
    assert any("S-999" in w for w in body["warnings"])
    assert count_rows(app, LabImport) == 0 and count_rows(app, LabResult) == 0
    assert results(client, official) == []


def test_row_error_rejects_whole_file_naming_line_and_column(app, client, lab):
    from fieldsvc.lab.models import LabImport, LabResult

    make_samples(app, "S-001")
    csv = (LONG_HEADER + "S-001,Cd,0.21,mg/kg,,\nS-001,Pb,25,furlongs,,\nS-001,Zn,abc,mg/kg,,\n"
           "S-001,Unobtainium,1,mg/kg,,\n").encode()
    body = assert_problem(upload(client, lab, csv), 422, "validation_failed")
    rows = {r["line"]: r["errors"] for r in body["details"]["rows"]}
    assert set(rows) == {3, 4, 5}
    assert "unit" in rows[3] and "value" in rows[4] and "analyte" in rows[5]
    assert count_rows(app, LabImport) == 0 and count_rows(app, LabResult) == 0
    dry = upload(client, lab, csv, dry_run="true").get_json()  # the dry run shows the same errors, 200
    assert [e["line"] for e in dry["errors"]] == [3, 4, 5] and dry["accepted"] == 1


def test_same_file_again_returns_first_import_and_adds_nothing(app, client, lab, official):
    make_samples(app, "S-001")
    csv = (LONG_HEADER + "S-001,Cd,0.21,mg/kg,0.01,\nS-001,pH,6.5,,,\n").encode()
    first = upload(client, lab, csv)
    assert first.status_code == 201, first.get_json()
    assert {k: first.get_json()[k] for k in ("rows", "accepted", "held", "warnings")} == {
        "rows": 2, "accepted": 2, "held": 0, "warnings": []}
    again = upload(client, lab, csv, filename="renamed.csv")
    assert again.status_code == 200
    assert again.get_json()["import_id"] == first.get_json()["import_id"] and again.get_json()["duplicate"]
    items = results(client, official, sample="S-001")
    assert len(items) == 2 and {i["version"] for i in items} == {1}
    imports = client.get("/api/v1/lab/imports", headers=official.headers).get_json()["items"]
    assert [i["import_id"] for i in imports] == [first.get_json()["import_id"]]
    from fieldsvc.audit.services import events_for

    with app.app_context():
        events = events_for("lab_import", first.get_json()["import_id"])
        assert [(e.action, e.actor) for e in events] == [("import", f"user:{lab.username}")]


def test_result_item_has_contract_fields_with_exact_decimals(app, client, lab, official):
    ids = make_samples(app, "S-001")
    csv = (LONG_HEADER + "S-001,Cd,210,µg/kg,,HJ 680\nS-001,Hg,ND,mg/kg,0.002,\n"
           "S-001,OM,2.5,%,,\n").encode()
    assert upload(client, lab, csv).status_code == 201
    items = {i["analyte"]: i for i in results(client, official, sample=ids["S-001"])}
    cd, hg, om = items["Cd"], items["Hg"], items["OM"]
    contract = {"id", "sample_id", "sample_code", "analyte", "value", "unit", "qualifier", "detection_limit",
                "raw_value", "raw_unit", "method", "status", "version", "supersedes", "qc_flags"}
    assert contract <= set(cd)
    assert (cd["value"], cd["unit"], cd["qualifier"], cd["raw_value"], cd["raw_unit"]) == (
        "0.21", "mg/kg", "=", "210", "µg/kg")
    assert cd["sample_id"] == ids["S-001"] and cd["status"] == "pending" and cd["method"] == "HJ 680"
    assert (hg["value"], hg["qualifier"], hg["detection_limit"], hg["raw_value"]) == (None, "<", "0.002", "ND")
    assert (om["value"], om["unit"]) == ("25", "g/kg")
    assert isinstance(cd["id"], str) and cd["supersedes"] is None and cd["qc_flags"] == []


# --- encodings and layouts -------------------------------------------------------------------

def test_chinese_gb18030_csv_with_semicolons_and_decimal_commas(app, client, lab, official):
    make_samples(app, "TX-001")
    text = ("检测报告 2026\n样品编号;检测项目;检测结果;单位;检出限\n"
            "TX-001;镉;0,18;mg/kg;0,01\nTX-001;铅;未检出;mg/kg;0,1\nTX-001;有机质;23,4;g/kg;\n"
            "TX-001;pH值;5,8;无量纲;\n")
    resp = upload(client, lab, text.encode("gb18030"), filename="结果.csv")
    assert resp.status_code == 201, resp.get_json()
    items = {i["analyte"]: i for i in results(client, official, sample="TX-001")}
    assert set(items) == {"Cd", "Pb", "OM", "pH"}
    assert items["Cd"]["value"] == "0.18" and items["Cd"]["line"] == 3
    assert items["Pb"]["value"] is None and items["Pb"]["detection_limit"] == "0.1"
    assert items["pH"]["value"] == "5.8" and items["pH"]["unit"] == ""
    detail = client.get(f"/api/v1/lab/imports/{resp.get_json()['import_id']}", headers=official.headers)
    assert detail.get_json()["filename"] == "结果.csv"


def test_xlsx_wide_layout_uses_sheet_row_numbers(app, client, lab, official):
    make_samples(app, "W-1", "W-2")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["土壤检测结果"])
    sheet.append(["样品编号", "Cd (mg/kg)", "铅(mg/kg)", "pH"])
    sheet.append(["W-1", 0.3, "<5", 6.1])
    sheet.append(["W-2", "0.12", 31, "—"])
    buf = io.BytesIO()
    book.save(buf)
    resp = upload(client, lab, buf.getvalue(), filename="wide.xlsx")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["rows"] == 5  # pH of W-2 was not measured
    w1 = {i["analyte"]: i for i in results(client, official, sample="W-1")}
    assert (w1["Cd"]["value"], w1["Cd"]["line"], w1["Pb"]["qualifier"], w1["pH"]["value"]) == ("0.3", 3, "<", "6.1")
    assert [i["line"] for i in results(client, official, sample="W-2")] == [4, 4]


def test_bad_xlsx_cell_is_reported_on_its_sheet_row(app, client, lab):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["sample_code", "Cd (mg/kg)"])
    sheet.append(["W-1", 0.3])
    sheet.append(["W-2", "lots"])
    buf = io.BytesIO()
    book.save(buf)
    body = assert_problem(upload(client, lab, buf.getvalue(), filename="wide.xlsx"), 422, "validation_failed")
    assert body["details"]["rows"] == [{"line": 3, "errors": {"Cd (mg/kg)": body["details"]["rows"][0]["errors"]
                                                              ["Cd (mg/kg)"]}}]


# --- sample matching, held results, aliases --------------------------------------------------

def test_codes_match_regardless_of_case_and_spaces(app, client, lab, official):
    ids = make_samples(app, "AB-001")
    assert upload(client, lab, (LONG_HEADER + " ab-001 ,Cd,0.2,mg/kg,,\n").encode()).get_json()["held"] == 0
    (item,) = results(client, official, sample="AB-001")
    assert item["sample_id"] == ids["AB-001"] and item["sample_code"] == "AB-001" and item["held"] is False


def test_held_results_are_linked_when_the_sample_arrives(app, client, lab, official):
    from fieldsvc.lab.services import link_held_results
    from fieldsvc.samples.models import Sample

    resp = upload(client, lab, (LONG_HEADER + "NEW-7,Cd,0.2,mg/kg,,\nnew-7,Pb,30,mg/kg,,\n").encode())
    assert resp.status_code == 201 and resp.get_json()["held"] == 2 and resp.get_json()["accepted"] == 0
    assert "NEW-7" in resp.get_json()["warnings"][0]
    held = results(client, official, sample="NEW-7")
    assert len(held) == 2 and all(i["held"] and i["sample_id"] is None for i in held)
    approve = client.post(f"/api/v1/lab/results/{held[0]['id']}/approve", headers=official.headers)
    assert_problem(approve, 409, "held_result")
    ids = make_samples(app, "New-7")
    with app.app_context():
        assert link_held_results(db.session.get(Sample, ids["New-7"])) == 2
        db.session.commit()
        assert link_held_results(db.session.get(Sample, ids["New-7"])) == 0  # idempotent
        from fieldsvc.audit.services import events_for

        assert [e.action for e in events_for("lab_result", held[0]["id"])] == ["link"]
    linked = results(client, official, sample=ids["New-7"])
    assert {i["analyte"] for i in linked} == {"Cd", "Pb"} and all(i["sample_id"] == ids["New-7"] for i in linked)
    assert client.post(f"/api/v1/lab/results/{held[0]['id']}/approve", headers=official.headers).status_code == 200


def test_lab_id_alias_matches_later_files_by_lab_number(app, client, lab, official):
    ids = make_samples(app, "S-001")
    first = "sample_code,lab_id,analyte,value,unit\nS-001,L2026-17,Cd,0.2,mg/kg\n"
    assert upload(client, lab, first.encode()).status_code == 201
    retest = "样品编号,检测项目,检测结果,单位\nl2026-17,Cd,0.25,mg/kg\n"  # the lab's own number this time
    resp = upload(client, lab, retest.encode("utf-8-sig"))
    assert resp.status_code == 201 and resp.get_json()["held"] == 0
    items = results(client, official, sample=ids["S-001"])
    assert [(i["version"], i["value"], i["sample_code"]) for i in items] == [(1, "0.2", "S-001"), (2, "0.25", "S-001")]
    clash = "sample_code,lab_id,analyte,value,unit\nS-002,L2026-17,Pb,20,mg/kg\n"
    body = assert_problem(upload(client, lab, clash.encode()), 422, "validation_failed")
    assert "lab_id" in body["details"]["rows"][0]["errors"]


# --- QC --------------------------------------------------------------------------------------

QC_HEADER = "sample_code,analyte,value,unit,detection_limit,qc_type,duplicate_of,crm\n"


def test_failing_blank_holds_only_its_analyte_in_the_batch(app, client, lab, official):
    make_samples(app, "Q-1", "Q-2")
    csv = (QC_HEADER + "Q-1,Cd,0.2,mg/kg,0.01,,,\nQ-2,Cd,0.3,mg/kg,0.01,,,\nQ-1,Pb,20,mg/kg,0.1,,,\n"
           "BLK-1,Cd,0.05,mg/kg,0.01,blank,,\nBLK-1,Pb,ND,mg/kg,0.1,blank,,\n").encode()
    resp = upload(client, lab, csv)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["rows"], body["accepted"], body["qc_rows"], body["qc_held"]) == (5, 3, 2, 2)
    assert any("QC failed for Cd" in w for w in body["warnings"])
    items = results(client, official)
    cd = [i for i in items if i["analyte"] == "Cd" and i["qc_type"] is None]
    pb = next(i for i in items if i["analyte"] == "Pb" and i["qc_type"] is None)
    assert all(i["qc_hold"] and i["qc_flags"][0]["reason"] == "blank_above_detection_limit" for i in cd)
    assert cd[0]["qc_flags"][0]["line"] == 5 and cd[0]["status"] == "pending"
    assert pb["qc_hold"] is False and pb["qc_flags"] == []
    blank = next(i for i in items if i["qc_type"] == "blank" and i["analyte"] == "Cd")
    assert blank["qc_flags"][0]["status"] == "fail" and blank["held"] is False
    assert_problem(client.post(f"/api/v1/lab/results/{cd[0]['id']}/approve", headers=official.headers),
                   409, "qc_hold")
    assert_problem(client.post(f"/api/v1/lab/results/{blank['id']}/approve", headers=official.headers),
                   409, "qc_sample")
    ok = client.post(f"/api/v1/lab/results/{pb['id']}/approve", headers=official.headers)
    assert ok.status_code == 200 and ok.get_json()["status"] == "approved"


def test_crm_outside_certified_range_holds_its_analyte(app, client, lab, official):
    make_samples(app, "Q-1")
    rm = {"code": "GBW07405", "name": "soil GSS-5",
          "values": [{"analyte": "镉", "value": "450", "u": "60", "unit": "µg/kg"},
                     {"analyte": "Pb", "value": 552, "u": 29}]}
    created = client.post("/api/v1/lab/reference-materials", json=rm, headers=lab.headers)
    assert created.status_code == 201, created.get_json()
    listed = client.get("/api/v1/lab/reference-materials", headers=official.headers).get_json()["items"]
    assert listed == [{"code": "GBW07405", "name": "soil GSS-5", "values": [
        {"analyte": "Cd", "value": "0.45", "u": "0.06", "unit": "mg/kg", "reference_only": False},
        {"analyte": "Pb", "value": "552", "u": "29", "unit": "mg/kg", "reference_only": False}]}]
    assert_problem(client.post("/api/v1/lab/reference-materials", json=rm, headers=lab.headers), 409,
                   "duplicate_code")
    csv = (QC_HEADER + "Q-1,Cd,0.2,mg/kg,,,,\nQ-1,Pb,40,mg/kg,,,,\nCRM-A,Cd,0.60,mg/kg,,crm,,gbw07405\n"
           "CRM-A,Pb,560,mg/kg,,crm,,GBW07405\n").encode()
    body = upload(client, lab, csv).get_json()
    assert body["qc_held"] == 1
    held = {i["analyte"]: i["qc_hold"] for i in results(client, official, sample="Q-1")}
    assert held == {"Cd": True, "Pb": False}


@pytest.mark.parametrize(("body", "field"), [
    ({"code": "X", "values": [{"analyte": "Kryptonite", "value": "1", "u": "0.1"}]}, "values.0.analyte"),
    ({"code": "X", "values": [{"analyte": "Cd", "value": "1", "u": "0.1", "unit": "furlong"}]}, "values.0.unit"),
    ({"code": "X", "values": [{"analyte": "Cd", "value": "1"}]}, "values.0.u"),
    ({"code": "X", "values": []}, "values"),
    ({"values": [{"analyte": "Cd", "value": "1", "u": "0.1"}]}, "code"),
])
def test_reference_material_validation_names_the_field(client, lab, body, field):
    assert_problem(client.post("/api/v1/lab/reference-materials", json=body, headers=lab.headers), 422,
                   "validation_failed", field=field)


# --- bad input, roles, scoping ---------------------------------------------------------------

def test_bad_uploads_get_4xx_naming_the_problem(app, client, lab):
    from fieldsvc.lab.models import LabImport

    url = "/api/v1/lab/imports"
    assert_problem(client.post(url, data={}, headers=lab.headers, content_type="multipart/form-data"),
                   422, "validation_failed", field="file")
    assert_problem(upload(client, lab, b""), 422, "validation_failed", field="file")
    assert_problem(client.post(url, json={"file": "S-1,Cd,1"}, headers=lab.headers), 415, "unsupported_media_type")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    assert_problem(upload(client, lab, png, filename="photo.png"), 415, "unsupported_media_type")
    assert_problem(upload(client, lab, b"just words, no header\n"), 422, "validation_failed")
    assert_problem(upload(client, lab, b"PK\x03\x04broken", filename="r.xlsx"), 422, "unreadable_file")
    app.config["LAB_IMPORT_MAX_BYTES"] = 100
    body = assert_problem(upload(client, lab, (LONG_HEADER + "S-1,Cd,0.2,mg/kg,,\n" * 10).encode()),
                          413, "payload_too_large")
    assert body["details"]["max_bytes"] == 100
    big = assert_problem(upload(client, lab, b"x" * 200_000), 413, "payload_too_large")  # refused by its length
    assert big["details"]["max_bytes"] == 100
    app.config["LAB_IMPORT_MAX_BYTES"] = 10_000
    assert_problem(upload(client, lab, b"sample_code,analyte,value,unit\n"), 422, "validation_failed", field="file")
    assert_problem(upload(client, lab, LONG_HEADER.encode(), dry_run="maybe"), 422, "validation_failed",
                   field="dry_run")
    assert count_rows(app, LabImport) == 0


def test_roles_sampler_cannot_import_or_read_lab_cannot_approve(app, client, lab, make_account):
    make_samples(app, "S-001")
    sampler = make_account("sampler")
    csv = (LONG_HEADER + "S-001,Cd,0.2,mg/kg,,\n").encode()
    assert_problem(upload(client, sampler, csv), 403, "forbidden")
    assert_problem(client.get("/api/v1/lab/results", headers=sampler.headers), 403, "forbidden")
    assert_problem(client.post("/api/v1/lab/imports"), 401, "unauthorized")
    assert upload(client, lab, csv).status_code == 201
    (item,) = results(client, lab)
    assert_problem(client.post(f"/api/v1/lab/results/{item['id']}/approve", headers=lab.headers), 403, "forbidden")


def test_county_scoped_official_sees_only_own_county(app, client, lab, make_account):
    make_samples(app, "IN-1", county="110101")
    make_samples(app, "OUT-1", county="220202")
    assert upload(client, lab, (LONG_HEADER + "IN-1,Cd,0.2,mg/kg,,\nOUT-1,Cd,0.3,mg/kg,,\n"
                                "NOWHERE-1,Cd,0.1,mg/kg,,\n").encode()).status_code == 201
    scoped = make_account("official", county="110101")
    assert [i["sample_code"] for i in results(client, scoped)] == ["IN-1"]
    other = next(i for i in results(client, lab) if i["sample_code"] == "OUT-1")
    assert_problem(client.get(f"/api/v1/lab/results/{other['id']}", headers=scoped.headers), 404, "not_found")
    assert_problem(client.post(f"/api/v1/lab/results/{other['id']}/approve", headers=scoped.headers), 404,
                   "not_found")
