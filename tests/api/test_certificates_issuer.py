"""Issuer identity: set once by CLI (versions kept, audited), printed, shown, published and signed as ``iss``."""

from __future__ import annotations

import struct
import subprocess
import zlib

import pytest
from sqlalchemy import func, select

from fieldsvc.audit.models import AuditEvent
from fieldsvc.certificates import issuer as issuer_service
from fieldsvc.certificates.models import Certificate, Issuer
from fieldsvc.certificates.signing import Claims, sign_claims, verify_token
from fieldsvc.extensions import db
from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issued

grading = _grading


def png(rgb=(200, 20, 20), size=8) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


IDENTITY = ["--id", "JXSSRI", "--name-zh", "江西省土壤研究所", "--name-en", "Jiangxi Soil Research Institute",
            "--address", "南昌市青山湖区 1 号", "--contact", "0791-0000000"]


def set_issuer(app, tmp_path, *extra: str, seal: bytes | None = None):
    args = list(IDENTITY) + list(extra)
    if seal is not None:
        path = tmp_path / "seal.png"
        path.write_bytes(seal)
        args += ["--seal", str(path)]
    return app.test_cli_runner().invoke(args=["issuer", "set", *args])


def test_issuer_set_keeps_versions_audits_and_refuses_bad_input(app, tmp_path):
    first = set_issuer(app, tmp_path, seal=png())
    assert first.exit_code == 0 and "JXSSRI:1" in first.output, first.output
    same = set_issuer(app, tmp_path)  # no seal given: the stored one is kept, nothing changed
    assert same.exit_code == 0 and "unchanged" in same.output
    co = set_issuer(app, tmp_path, "--co-issuer-zh", "县农业农村局", "--co-issuer-en", "County Agriculture Bureau")
    assert co.exit_code == 0 and "JXSSRI:2" in co.output
    bad = app.test_cli_runner().invoke(args=["issuer", "set", *IDENTITY[:-2], "--contact", " ",
                                             "--co-issuer-zh", "只有中文"])
    assert bad.exit_code != 0 and "contact" in bad.output and "co_issuer" in bad.output
    not_png = set_issuer(app, tmp_path, seal=b"GIF89a....")
    assert not_png.exit_code != 0 and "seal" in not_png.output
    with app.app_context():
        rows = issuer_service.all_issuers()
        assert [r.version for r in rows] == [2, 1]
        assert rows[0].seal_png == rows[1].seal_png == png()  # the seal carried over to version 2
        assert rows[0].co_issuer == {"name_zh": "县农业农村局", "name_en": "County Agriculture Bureau"}
        audits = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.entity_type == "issuer"))
        assert audits == 2
    assert "JXSSRI:2" in app.test_cli_runner().invoke(args=["issuer", "show"]).output


def test_certificate_signs_iss_and_shows_the_issuer_everywhere(app, client, official, county, grading, tmp_path):
    assert set_issuer(app, tmp_path, seal=png()).exit_code == 0
    cert = issued(client, official, county)
    assert cert["issuer"]["iss"] == "JXSSRI:1" and cert["issuer"]["name_en"] == "Jiangxi Soil Research Institute"
    verify = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert verify["genuine"] and verify["claims"]["iss"] == "JXSSRI:1" and verify["claims"]["kind"] == "certificate"
    offline = client.post("/api/v1/verify/token", json={"token": cert["token"]}).get_json()
    assert offline["claims"]["iss"] == "JXSSRI:1"
    keys = client.get("/.well-known/fieldsvc-keys.json").get_json()
    assert keys["issuer"]["iss"] == "JXSSRI:1" and keys["issuer"]["address"] == "南昌市青山湖区 1 号"
    assert keys["issuers"][0]["seal_url"] == "/.well-known/fieldsvc-issuer-seal/1.png" and keys["keys"]
    seal = client.get("/.well-known/fieldsvc-issuer-seal/1.png")
    assert seal.status_code == 200 and seal.mimetype == "image/png" and seal.data == png()
    assert client.get("/.well-known/fieldsvc-issuer-seal/9.png").status_code == 404
    zh = client.get(f"/C/{cert['code']}?lang=zh").get_data(as_text=True)
    en = client.get(f"/C/{cert['code']}?lang=en").get_data(as_text=True)
    assert "江西省土壤研究所" in zh and 'src="/.well-known/fieldsvc-issuer-seal/1.png"' in zh and "0791-0000000" in zh
    assert "Jiangxi Soil Research Institute" in en and "江西省土壤研究所" not in en
    # a new identity version changes what new certificates sign; the issued one keeps its own
    set_issuer(app, tmp_path, "--co-issuer-zh", "县农业农村局", "--co-issuer-en", "County Agriculture Bureau")
    again = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert again["claims"]["iss"] == "JXSSRI:1" and again["issuer"]["version"] == 1
    second = issued(client, official, county, index=1)
    assert second["issuer"]["iss"] == "JXSSRI:2"
    assert "联合签发" in client.get(f"/C/{second['code']}?lang=zh").get_data(as_text=True)


def pdf_tool(tool: str, body: bytes, tmp_path, *args: str) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(body)
    return subprocess.run([tool, *args, str(path), "-"] if tool == "pdftotext" else [tool, *args, str(path)],
                          capture_output=True, check=True, text=True).stdout


def test_certificate_pdf_prints_the_issuer_and_seal(app, client, official, county, grading, tmp_path):
    assert set_issuer(app, tmp_path, seal=png()).exit_code == 0
    cert = issued(client, official, county)
    body = client.get(f"/api/v1/certificates/{cert['code']}.pdf", headers=official.headers).data
    text = pdf_tool("pdftotext", body, tmp_path)
    assert "Jiangxi Soil Research Institute" in text and "0791-0000000" in text
    images = [line for line in pdf_tool("pdfimages", body, tmp_path, "-list").splitlines()[2:] if line.strip()]
    assert len(images) >= 1  # the seal (and its mask)
    labels = client.get(f"/api/v1/labels.pdf?codes={cert['code']}", headers=official.headers)
    assert "江西省土壤研究所" in pdf_tool("pdftotext", labels.data, tmp_path)


def test_without_an_issuer_nothing_is_claimed_and_old_tokens_still_verify(app, client, official, county, grading):
    cert = issued(client, official, county)
    assert cert["issuer"] is None
    assert client.get(f"/api/v1/verify/{cert['code']}").get_json()["claims"]["iss"] is None
    # a version 1 token (no kind, no iss), as certificates issued before this change carry
    from fieldsvc.certificates import services
    from fieldsvc.certificates.codes import crockford_b32encode
    from fieldsvc.certificates.signing import _FIXED, _days, _put_str, code_to_bytes

    with app.app_context():
        ring = services.keyring(app.config)
        row = db.session.scalar(select(Certificate).where(Certificate.code == cert["code"]))
        claims = verify_token(row.token, ring).claims
        fixed = _FIXED.pack(code_to_bytes(claims.code), 1, _days(claims.tested_on, "t"),
                            _days(claims.valid_until, "v"))
        body = (bytes([1]) + ring.current.kid_bytes + fixed + _put_str(claims.subject_code, "s")
                + _put_str(claims.grade, "g") + _put_str(claims.rule_pack, "r"))
        v1 = crockford_b32encode(body + ring.current.sign(body))
        row.token = v1
        db.session.commit()
        assert verify_token(v1, ring).claims == Claims(**{**claims.__dict__, "iss": "", "kind": "certificate"})
        assert sign_claims(claims, ring) != v1
    verify = client.get(f"/api/v1/verify/{cert['code']}").get_json()
    assert verify["genuine"] and verify["claims"]["iss"] is None and verify["claims"]["kind"] == "certificate"
    assert client.post("/api/v1/verify/token", json={"token": v1}).status_code == 200


@pytest.mark.parametrize("field", ["name_zh", "address"])
def test_issuer_service_names_the_missing_field(app, field):
    from fieldsvc.errors import Problem

    data = {"ident": "X1", "name_zh": "甲", "name_en": "A", "address": "addr", "contact": "c", field: ""}
    with app.app_context(), pytest.raises(Problem) as caught:
        issuer_service.set_issuer(data, "test")
    assert caught.value.status == 422 and field in caught.value.details["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Issuer)) == 0
