"""Label sheets decode to the issued verify URLs; template, cap and status checks; the CLI."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import zxingcpp
from PIL import Image
from sqlalchemy import select

from fieldsvc.certificates.models import Certificate
from fieldsvc.extensions import db
from tests.api.test_certificates_api import FakeQualification, issued, parcel_of
from tests.api.test_certificates_api import grading as _grading
from tests.helpers import assert_problem

grading = _grading  # the stand-in for grading's qualification(), shared with test_certificates_api


def pdf_text(data: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(data)
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                              text=True, timeout=60).stdout


def decode_pdf(data: bytes, dpi: int = 300) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(data)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(path), str(Path(tmp) / "page")],
                       check=True, timeout=120)
        found = []
        for page in sorted(Path(tmp).glob("page*.png")):
            found += [r.text for r in zxingcpp.read_barcodes(Image.open(page))]
        return found


def test_label_sheet_decodes_to_the_issued_verify_urls(client, official, county, grading):
    certs = [issued(client, official, county, index=i) for i in range(3)]
    codes = ",".join(c["code"] for c in certs)
    resp = client.get("/api/v1/labels.pdf", query_string={"codes": codes, "template": "a4_3x7", "start_slot": 4},
                      headers=official.headers)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf", resp.data[:300]
    assert sorted(decode_pdf(resp.data)) == sorted(c["verify_url"] for c in certs)


def test_label_requests_are_checked(client, official, county, grading, app):
    cert = issued(client, official, county)
    url = "/api/v1/labels.pdf"
    assert_problem(client.get(url, query_string={"codes": cert["code"], "template": "nope"},
                              headers=official.headers), 422, "unknown_template")
    assert_problem(client.get(url, query_string={"codes": cert["code"], "template": "certificate_a4"},
                              headers=official.headers), 422, "unknown_template")
    assert_problem(client.get(url, query_string={"codes": cert["code"], "start_slot": 21},
                              headers=official.headers), 422, "validation_failed", "start_slot")
    assert_problem(client.get(url, query_string={"codes": "garbage"}, headers=official.headers), 422,
                   "validation_failed", "codes")
    assert_problem(client.get(url, headers=official.headers), 422, "validation_failed", "codes")
    app.config["LABELS_MAX_CODES"] = 5
    assert_problem(client.get(url, query_string={"codes": ",".join([cert["code"]] * 6)}, headers=official.headers),
                   422, "validation_failed", "codes")
    from fieldsvc.certificates.services import DUMMY_CODE

    assert_problem(client.get(url, query_string={"codes": DUMMY_CODE}, headers=official.headers), 422,
                   "validation_failed", "codes")
    client.post(f"/api/v1/certificates/{cert['code']}/revoke", json={"reason": "lost"}, headers=official.headers)
    body = assert_problem(client.get(url, query_string={"codes": cert["code"]}, headers=official.headers), 409,
                          "certificate_not_valid")
    assert body["details"]["certificates"] == {cert["code"]: "revoked"}


def test_cli_issues_for_qualifying_parcels_and_reports_the_others(app, county, grading):
    village = parcel_of(county)["village"]
    parcels = [f["properties"]["code"] for f in county.parcels if f["properties"]["village"] == village]
    assert len(parcels) >= 2
    grading[("parcel", parcels[0])] = FakeQualification(qualified=False, verdict="indeterminate",
                                                        reasons=["Cd: detection limit above the limit"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["certificates", "issue", "--village", village, "--parcels"])
    assert result.exit_code == 0, result.output
    assert f"not qualified {parcels[0]}: Cd: detection limit above the limit" in result.output
    with app.app_context():
        stored = set(db.session.scalars(select(Certificate.subject_code)))
    assert stored == set(parcels[1:])
    code = next(line.split()[1] for line in result.output.splitlines() if line.startswith("issued "))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "labels.pdf"
        result = runner.invoke(args=["certificates", "labels", "--codes", code, "--template", "thermal_50x30",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert decode_pdf(out.read_bytes()) == [f"{app.config['PUBLIC_BASE_URL']}/C/{code}".upper()]
    result = runner.invoke(args=["certificates", "issue", "--village", village, "--farm-park", "X"])
    assert result.exit_code != 0


def test_cli_keys_list_and_rotate(app, client, official, county, grading):
    cert = issued(client, official, county)
    runner = app.test_cli_runner()
    before = runner.invoke(args=["keys", "list"]).output.split()
    assert before[:2] == [cert["key_id"], "current"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and cert["key_id"] not in result.output
    rows = [line.split() for line in runner.invoke(args=["keys", "list"]).output.splitlines()]
    assert [r[1] for r in rows] == ["current", "retired"] and rows[1][0] == cert["key_id"]
    # the old certificate still verifies; a new one is signed with the new key
    resp = client.post("/api/v1/verify/token", json={"token": cert["token"]})
    assert resp.status_code == 200 and resp.get_json()["key_status"] == "retired"
    fresh = issued(client, official, county, index=1)
    assert fresh["key_id"] == rows[0][0]
    keys = client.get("/.well-known/fieldsvc-keys.json").get_json()["keys"]
    assert {k["kid"]: k["status"] for k in keys} == {rows[0][0]: "current", cert["key_id"]: "retired"}
    folder = Path(app.instance_path) / "keys"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.glob("signing-key-*.pem"))


def test_demo_certificates_issue_parcels_and_a_park_and_revoke_one(app, county, grading):
    from fieldsvc.certificates.services import issue_demo_certificates

    with app.app_context():
        summary = issue_demo_certificates(county.county, app.config, max_parcels=3)
        db.session.commit()
        rows = {c.code: c for c in db.session.scalars(select(Certificate))}
    assert len(summary["parcel_certificates"]) == 3 and summary["farm_park_certificate"] in rows
    assert rows[summary["revoked"]].status == "revoked" and rows[summary["revoked"]].reason
    assert sum(c.status == "valid" for c in rows.values()) == 3  # two parcels and the park
