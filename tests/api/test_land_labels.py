"""Land labels: a soil passport for any graded parcel, village or farm park, pass or fail (real grading)."""

from __future__ import annotations

import subprocess

from sqlalchemy import select

from fieldsvc.certificates.models import Certificate
from fieldsvc.extensions import db
from tests.api.test_grading_api import CLEAN, FAIL_CD, paddy, put_results, put_sample, regrade
from tests.helpers import assert_problem


def label(client, official, subject_type, code):
    return client.post("/api/v1/land-labels", json={"subject_type": subject_type, "code": code},
                       headers=official.headers)


def graded(app, parcel: str, values: dict[str, str]) -> str:
    sid = put_sample(app, parcel)
    put_results(app, sid, values)
    regrade(app, sid)
    return sid


def retest(app, sid: str, values: dict[str, str]) -> None:
    """A re-test: the sample's results get a second, approved version that supersedes the first."""
    from fieldsvc.lab.models import LabResult

    with app.app_context():
        for r in db.session.scalars(select(LabResult).where(LabResult.sample_id == sid)):
            if r.analyte in values:
                r.status = "rejected"
        db.session.commit()
    put_results(app, sid, values, version=2)
    regrade(app, sid)


def test_failing_parcel_gets_a_label_that_says_it_does_not_meet_nyt391(app, client, official, county, tmp_path):
    parcel = paddy(county)["code"]
    graded(app, parcel, FAIL_CD)
    # a certificate is refused, a land label is not
    cert = client.post("/api/v1/certificates", json={"subject_type": "parcel", "code": parcel},
                       headers=official.headers)
    assert_problem(cert, 409, "not_qualified")
    resp = label(client, official, "parcel", parcel)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["kind"] == "land_label" and body["verify_url"].endswith(f"/C/{body['code']}")
    head = body["conclusion"]
    assert head["standard"].startswith("NY/T 391") and head["verdict"] == "does_not_meet"
    assert head["failing"] == ["Cd"] and head["basis"] == "measured"
    cd = next(e for e in body["elements"] if e["analyte"] == "Cd")
    assert cd["value"] == "0.45" and cd["limit"] == "0.30" and cd["unit"] == "mg/kg"
    # the same subject again: its one live label, not a second
    again = label(client, official, "parcel", parcel)
    assert again.status_code == 200 and again.get_json()["code"] == body["code"]
    verify = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert verify["genuine"] and verify["kind"] == "land_label" and verify["claims"]["kind"] == "land_label"
    assert verify["conclusions"][0]["failing"] == ["Cd"] and {"analyte", "value", "unit", "limit"} <= set(
        verify["elements"][0])
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：不符合绿色食品产地环境质量（NY/T 391）标准，超标元素：镉。" in zh
    en = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert "does not meet the green-food production soil standard (NY/T 391)" in en and "Cadmium" in en
    assert 'data-analyte="Cd"' in en and "over" in en
    pdf = client.get(f"/api/v1/certificates/{body['code']}.pdf", headers=official.headers)
    path = tmp_path / "label.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "不符合 Does not meet" in text and "Cd" in text and "Land label" in text
    sheet = client.get(f"/api/v1/labels.pdf?codes={body['code']}", headers=official.headers)
    path.write_bytes(sheet.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "结论：不符合NY/T 391" in text


def test_a_retest_flips_the_page_on_the_next_scan_and_the_code_stays(app, client, official, county):
    parcel = paddy(county)["code"]
    sid = graded(app, parcel, FAIL_CD)
    body = label(client, official, "parcel", parcel).get_json()
    retest(app, sid, {"Cd": "0.10"})
    verify = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert verify["conclusion"]["verdict"] == "meets" and verify["conclusion"]["failing"] == []
    assert [h["verdict"] for h in verify["history"]] == ["meets", "does_not_meet"]
    assert verify["since"] == verify["history"][0]["at"]
    html = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：符合绿色食品产地环境质量（NY/T 391）标准。" in html and "历次结论" in html
    # the label stays valid (a land label says pass or fail), a certificate would have been revoked
    with app.app_context():
        row = db.session.scalar(select(Certificate).where(Certificate.code == body["code"]))
        assert row.status == "valid" and row.kind == "land_label"


def test_village_label_uses_its_worst_parcel_and_names_no_parcel(app, client, official, county):
    first, second = paddy(county, 0), paddy(county, 1)
    assert first["village"] == second["village"]
    graded(app, first["code"], CLEAN)
    graded(app, second["code"], {**CLEAN, "Pb": "45"})
    resp = label(client, official, "village", first["village"])
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    pb = next(e for e in body["elements"] if e["analyte"] == "Pb")
    assert pb["value"] == "45"  # the worst parcel's value, not the first one's
    html = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert first["code"] not in html and second["code"] not in html


SE_CLEAN = {**CLEAN, "Ni": "30", "Zn": "100"}  # every GB 15618 element, so its screening class is judged


def graded_all_packs(app, parcel: str, values: dict[str, str]) -> str:
    """Graded by NY/T 391 (the default), then GB 15618 and DZ/T 0380 (what a county run of each pack does)."""
    from fieldsvc.grading.regrade import regrade_parcels

    sid = graded(app, parcel, values)
    with app.app_context():
        for pack in ("gb15618_2018", "dzt0380_se_rich"):
            regrade_parcels([parcel], pack)
        db.session.commit()
    return sid


def pdf_text(client, official, code: str, tmp_path) -> str:
    path = tmp_path / f"{code}.pdf"
    path.write_bytes(client.get(f"/api/v1/certificates/{code}.pdf", headers=official.headers).data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def test_selenium_rich_only_where_the_pack_says_the_values_qualify(app, client, official, county, tmp_path):
    """DZ/T 0380 as the pack encodes it: pH ≤ 7.5 needs Se ≥ 0.40 mg/kg (inclusive); 0.39 is not Se-rich."""
    rich, poor = paddy(county, 0)["code"], paddy(county, 1)["code"]
    graded_all_packs(app, rich, {**SE_CLEAN, "Se": "0.40"})
    graded_all_packs(app, poor, {**SE_CLEAN, "Se": "0.39"})
    body = label(client, official, "parcel", rich).get_json()
    se = next(c for c in body["conclusions"] if c["pack"] == "dzt0380_se_rich")
    assert (se["standard"], se["verdict"], se["grade"], se["basis"]) == (
        "DZ/T 0380-2021", "meets", "green_se_rich", "measured")
    element = next(e for e in body["elements"] if e["analyte"] == "Se")
    assert (element["value"], element["limit"], element["bound"]) == ("0.40", "0.40", "min")
    en = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert "<strong>Natural selenium-rich land</strong> (DZ/T 0380-2021): Meets · Green selenium-rich land" in en
    assert "basis: measured" in en.split("Natural selenium-rich land</strong>")[1].split("</li>")[0]
    se_bar = en.split('data-analyte="Se"')[1].split("</div>\n  </div>")[0]
    assert "Se-rich threshold ≥ 0.40 mg/kg" in se_bar and "over" not in en.split('data-analyte="Se"')[0][-40:]
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "<strong>天然富硒土地</strong> (DZ/T 0380-2021): 符合 · 绿色富硒土地" in zh
    text = pdf_text(client, official, body["code"], tmp_path)
    assert "DZ/T 0380-2021: 符合 Meets · 绿色富硒土地 Green selenium-rich land (实测)" in text
    se_row = next(line for line in text.splitlines() if "硒 Se" in line)
    assert "0.40" in se_row and "≥0.40" in se_row and "实测 measured" in se_row and "达到 reaches" in se_row
    # one just below the threshold: nothing about selenium on its page or its PDF
    other = label(client, official, "parcel", poor).get_json()
    assert "dzt0380_se_rich" not in [c["pack"] for c in other["conclusions"]]
    assert [c["pack"] for c in other["conclusions"]] == ["green_food_soil", "gb15618_2018"]  # the others judged
    for lang in ("en", "zh"):
        page = client.get(f"/C/{other['code']}?lang={lang}").get_data(as_text=True)
        # (the demo farm park's name says 富硒 / Se-rich: the page names the park, not a conclusion)
        assert "0380" not in page and "富硒土地" not in page and "selenium-rich land" not in page.lower()
        assert 'data-analyte="Se"' not in page
    text = pdf_text(client, official, other["code"], tmp_path)
    assert "0380" not in text and "富硒土地" not in text and "硒 Se" not in text


def village_parcels(county, village: str) -> set[str]:
    return {f["properties"]["code"] for f in county.parcels if f["properties"]["village"] == village}


def test_a_village_too_little_of_which_is_graded_is_not_said_to_fail(app, client, official, county):
    first, second = paddy(county, 0), paddy(county, 1)
    assert len(village_parcels(county, first["village"])) > 2
    graded(app, first["code"], FAIL_CD)
    graded(app, second["code"], CLEAN)
    body = label(client, official, "village", first["village"]).get_json()
    assert body["conclusion"]["verdict"] == "not_assessed" and body["conclusion"]["grade"] == "not_assessed"
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：尚未评价（按绿色食品产地环境质量（NY/T 391）标准" in zh and "不符合" not in zh
    en = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert "is not yet assessed against the green-food production soil standard (NY/T 391)" in en
    assert "does not meet" not in en


def test_failing_village_says_it_does_not_meet_nyt391_naming_the_elements_and_a_retest_flips_it(
        app, client, official, county, tmp_path):
    first, second = paddy(county, 0), paddy(county, 1)
    assert first["village"] == second["village"]
    cd_sample = graded(app, first["code"], FAIL_CD)
    as_sample = graded(app, second["code"], {**CLEAN, "As": "25"})  # 25 / 20 > 1
    for other in village_parcels(county, first["village"]) - {first["code"], second["code"]}:
        graded(app, other, CLEAN)  # the whole village graded: its conclusion is a verdict, not "not assessed"
    body = label(client, official, "village", first["village"]).get_json()
    head = body["conclusion"]
    assert (head["verdict"], head["failing"]) == ("does_not_meet", ["As", "Cd"]), head
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：不符合绿色食品产地环境质量（NY/T 391）标准，超标元素：砷、镉。" in zh
    en = client.get(f"/C/{body['code']}?lang=en").get_data(as_text=True)
    assert "does not meet the green-food production soil standard (NY/T 391); above the limit: Arsenic, Cadmium." in en
    assert first["code"] not in en and second["code"] not in en
    text = pdf_text(client, official, body["code"], tmp_path)
    assert "NY/T 391-2021: 不符合 Does not meet" in text and "超标 over: 砷 As、镉 Cd" in text
    rows = {line.split()[1]: line for line in text.splitlines() if line.strip().startswith(("砷 As", "镉 Cd", "铅 Pb"))}
    assert "25" in rows["As"] and "超标 over" in rows["As"] and "0.45" in rows["Cd"] and "超标 over" in rows["Cd"]
    assert "未超标 within" in rows["Pb"]
    sheet = client.get(f"/api/v1/labels.pdf?codes={body['code']}", headers=official.headers)
    (tmp_path / "sheet.pdf").write_bytes(sheet.data)
    assert "结论：不符合NY/T 391" in subprocess.run(["pdftotext", str(tmp_path / "sheet.pdf"), "-"],
                                                 capture_output=True, check=True, text=True).stdout
    # a re-test of both samples: the next scan of the same code says it meets
    retest(app, cd_sample, {"Cd": "0.10"})
    retest(app, as_sample, {"As": "10"})
    zh = client.get(f"/C/{body['code']}?lang=zh").get_data(as_text=True)
    assert "结论：符合绿色食品产地环境质量（NY/T 391）标准。" in zh and "超标元素" not in zh
    verify = client.get(f"/api/v1/verify/{body['code']}").get_json()
    assert verify["code"] == body["code"] and [h["verdict"] for h in verify["history"]][:2] == [
        "meets", "does_not_meet"]


def test_ungraded_subject_and_bad_input(client, official, county, make_account):
    parcel = paddy(county)["code"]
    assert_problem(label(client, official, "parcel", parcel), 409, "not_graded")
    assert_problem(label(client, official, "house", parcel), 422, "validation_failed", "subject_type")
    assert_problem(label(client, official, "parcel", "NOPE-1"), 404, "not_found")
    lab = make_account("lab")
    resp = client.post("/api/v1/land-labels", json={"subject_type": "parcel", "code": parcel}, headers=lab.headers)
    assert resp.status_code == 403


def test_estimated_values_say_so_with_their_sigma_on_the_pdf_and_the_page(app):
    """An element whose value was estimated (kriged or IDW) prints ±σ and "estimated" wherever it shows."""
    from fieldsvc.certificates.public import _land_context
    from fieldsvc.certificates.services import element_rows

    elements = [{"analyte": "Hg", "value": "0.12", "limit": "0.30", "unit": "mg/kg", "verdict": "pass",
                 "basis": "estimated", "sigma": "0.031"},
                {"analyte": "Cd", "value": "0.45", "limit": "0.30", "unit": "mg/kg", "verdict": "exceeds",
                 "basis": "measured", "sigma": None},
                {"analyte": "Se", "value": "0.52", "limit": "0.40", "unit": "mg/kg", "verdict": "pass",
                 "basis": "measured", "bound": "min"}]
    hg, cd, se = element_rows(elements)
    assert (hg.value, hg.basis, hg.result, hg.over) == ("0.12 ±0.031", "插值估算 estimated", "未超标 within", False)
    assert (cd.value, cd.basis, cd.result, cd.over) == ("0.45", "实测 measured", "超标 over", True)
    assert (se.limit, se.result, se.over) == ("≥0.40", "达到 reaches", False)  # past a threshold is good
    with app.test_request_context():
        shown = _land_context({"elements": elements, "conclusions": [], "conclusion": None}, "en", "Parcel")
    by = {e["analyte"]: e for e in shown["elements"]}
    assert by["Hg"]["estimated"] and by["Hg"]["basis"] == "estimated" and by["Hg"]["sigma"] == "0.031"
    assert by["Cd"]["over"] and not by["Se"]["over"] and by["Se"]["minimum"]
