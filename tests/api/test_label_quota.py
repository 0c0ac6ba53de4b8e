"""Label quotas: area × expected yield ÷ package; past it 409 quota_exceeded unless an audited override."""

from __future__ import annotations

from sqlalchemy import select

from fieldsvc.audit.models import AuditEvent
from fieldsvc.extensions import db
from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issue, parcel_of
from tests.api.test_label_serials import print_sheet, printed_serials
from tests.helpers import assert_problem

grading = _grading


def test_quota_from_area_and_crop_refuses_past_it_and_allows_an_audited_override(app, client, official, county,
                                                                                 grading):
    # 100 m² of rice: 100 × 0.6 kg ÷ 5 kg = 12 labels
    resp = issue(client, official, county=county, area_m2=100, crop="水稻")
    assert resp.status_code == 201, resp.get_json()
    cert = resp.get_json()
    assert cert["area_m2"] == 100 and cert["crop"] == "水稻" and cert["labels"] == {"printed": 0, "quota": 12}
    assert print_sheet(client, official, [cert["code"]], 10).status_code == 200
    refused = assert_problem(print_sheet(client, official, [cert["code"]], 3), 409, "quota_exceeded")
    assert refused["details"]["certificates"] == {cert["code"]: {"printed": 10, "quota": 12, "asked": 3}}
    assert len(printed_serials(app, cert["code"])) == 10  # nothing printed, nothing counted
    read = client.get(f"/api/v1/certificates/{cert['code']}", headers=official.headers).get_json()
    assert read["labels"] == {"printed": 10, "quota": 12}
    assert print_sheet(client, official, [cert["code"]], 2).status_code == 200  # exactly up to the quota
    assert_problem(print_sheet(client, official, [cert["code"]], 1, override_reason="x"), 422,
                   "validation_failed", "override_reason")
    ok = print_sheet(client, official, [cert["code"]], 5, override_reason="second harvest, county letter 12")
    assert ok.status_code == 200
    read = client.get(f"/api/v1/certificates/{cert['code']}", headers=official.headers).get_json()
    assert read["labels"] == {"printed": 17, "quota": 12} and len(printed_serials(app, cert["code"])) == 17
    with app.app_context():
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.entity_key == cert["code"],
                                                            AuditEvent.action == "quota_override")).all()
        assert len(audit) == 1 and audit[0].actor.endswith(official.username)


def test_parcel_area_and_crop_are_taken_from_the_parcel_and_unlisted_crops_have_no_quota(app, client, official,
                                                                                       county, grading):
    parcel = parcel_of(county)
    cert = issue(client, official, county=county).get_json()
    assert cert["area_m2"] == parcel["area_m2"] and cert["crop"] == parcel.get("crop")
    app.config["LABEL_QUOTA_CROPS"] = {}
    other = issue(client, official, county=county, code=parcel_of(county, 1)["code"], area_m2=5, crop="玉米")
    assert other.get_json()["labels"] == {"printed": 0, "quota": None}
    assert print_sheet(client, official, [other.get_json()["code"]], 30).status_code == 200
    # plain labels (no serial: the certificate's own code, as its A4 certificate prints it) count nothing
    quota = issue(client, official, county=county, code=parcel_of(county, 2)["code"], area_m2=10, crop="rice")
    app.config["LABEL_QUOTA_CROPS"] = {"rice": {"yield_kg_per_m2": 0.5, "package_kg": 1}}
    capped = issue(client, official, county=county, code=parcel_of(county, 3)["code"], area_m2=4, crop="rice")
    assert quota.status_code == 201 and capped.get_json()["labels"]["quota"] == 2
    code = capped.get_json()["code"]
    for _ in range(2):
        plain = client.get("/api/v1/labels.pdf", query_string={"codes": f"{code},{code}"}, headers=official.headers)
        assert plain.status_code == 200
    assert client.get(f"/api/v1/certificates/{code}", headers=official.headers).get_json()["labels"]["printed"] == 0
    sheet = client.post("/api/v1/label-sheets", json={"codes": f"{code},{code}"}, headers=official.headers)
    assert sheet.status_code == 201 and sheet.get_json()["labels"] == 2 and sheet.get_json()["serials_per_code"] == 1
    assert_problem(client.post("/api/v1/label-sheets", json={"codes": [code]}, headers=official.headers), 409,
                   "quota_exceeded")


def confirm_key(html: str) -> str:
    return html.split('name="idempotency_key" value="')[1].split('"')[0]


def test_console_shows_printed_over_quota_and_the_flagged_serials(app, client, official, county, grading):
    from tests.api.test_console_pages import Console

    app.config["SERIAL_WARN_CHECKS"] = 1
    cert = issue(client, official, county=county, area_m2=100, crop="水稻").get_json()
    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    confirm = console.get("/console/label-sheets/new", query_string={"codes": cert["code"], "serials": 3})
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and '<td class="labels-quota">0 / 12</td>' in html
    assert '<td class="labels-after">3 / 12</td>' in html and printed_serials(app, cert["code"]) == []
    form = {"codes": cert["code"], "serials": "3", "template": "a4_3x7", "start_slot": "0",
            "idempotency_key": confirm_key(html)}
    made = console.post("/console/label-sheets", data=form)
    assert made.status_code == 303 and "/console/label-sheets/" in made.headers["Location"]
    assert console.post("/console/label-sheets", data=form).headers["Location"] == made.headers["Location"]
    sheet = console.get(made.headers["Location"] + ".pdf")
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    over = console.get("/console/label-sheets/new", query_string={"codes": cert["code"], "serials": 10})
    assert 'id="over-quota"' in over.get_data(as_text=True) and "disabled" in over.get_data(as_text=True)
    refused = console.post("/console/label-sheets", data={**form, "serials": "10", "idempotency_key": "other"})
    assert refused.status_code == 409
    serial = printed_serials(app, cert["code"])[0]
    for _ in range(2):
        client.get(f"/C/{cert['code']}/{serial}")
    page = console.get("/console/certificates").get_data(as_text=True)
    assert '<td class="labels-quota">3 / 12</td>' in page
    flagged = page.split('id="flagged-serials"')[1].split("</table>")[0]
    assert serial in flagged and printed_serials(app, cert["code"])[1] not in flagged
    one = console.get(f"/console/certificates/{cert['code']}").get_data(as_text=True)
    assert '<td id="labels-quota">3 / 12</td>' in one
