"""The public side: scan page zh/en, verify JSON, offline tokens, keys, privacy, rate limit."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text, update

from fieldsvc.certificates import codes
from fieldsvc.certificates.i18n import negotiate
from fieldsvc.certificates.models import Certificate
from fieldsvc.certificates.signing import Claims, KeyRing, sign_claims
from fieldsvc.dbtypes import utcnow
from fieldsvc.extensions import db
from fieldsvc.places.models import Region
from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issued, parcel_of
from tests.helpers import assert_problem

grading = _grading  # the stand-in for grading's qualification(), shared with test_certificates_api

MOBILE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0 Mobile Safari/537.36")
ADDRESS = "203.0.113.77"


def page(client, code, **headers):
    return client.get(f"/C/{code}", headers={"User-Agent": MOBILE_UA, **headers},
                      environ_base={"REMOTE_ADDR": ADDRESS})


@pytest.mark.parametrize(("header", "override", "expected"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"),
    ("en-US,en;q=0.9", None, "en"),
    ("fr", None, "zh"),
    ("fr-FR, en;q=0.5", None, "en"),
    ("en;q=0.4, zh-TW;q=0.8", None, "zh"),
    ("", None, "zh"),
    (None, None, "zh"),
    ("en;q=abc", None, "zh"),
    ("zh-CN", "en", "en"),
    ("en-US", "zh", "zh"),
    ("en-US", "de", "en"),
    ("x" * 5000, None, "zh"),
])
def test_language_negotiation(header, override, expected):
    assert negotiate(header, override) == expected


def test_valid_page_in_chinese_then_english(client, official, county, grading):
    cert = issued(client, official, county)
    resp = page(client, cert["code"], **{"Accept-Language": "zh-CN,zh;q=0.9"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert '<html lang="zh-CN">' in html and "真实有效" in html and 'id="status"' in html
    assert cert["place"]["village"] in html and "2026-09-14" in html and "NY/T 391" in html
    assert "尚未与官方标准文本核对" in html  # the pack is unverified
    assert resp.headers["Cache-Control"] == "no-store" and "Accept-Language" in resp.headers["Vary"]
    english = page(client, cert["code"], **{"Accept-Language": "fr"}).get_data(as_text=True)
    assert "真实有效" in english  # unknown language: Chinese
    english = client.get(f"/C/{cert['code']}?lang=en", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Genuine and valid" in english
    assert "not yet been verified against the official text" in english
    assert 'href="?lang=zh"' in english  # the visible switch back
    village = next(r for r in county.regions if r["name"] == cert["place"]["village"])
    assert village["name_en"] in english and village["name"] not in english  # place names in English too


@pytest.mark.parametrize("spelling", ["lower", "hyphens", "lowercase_path"])
def test_codes_are_matched_case_insensitively(client, official, county, grading, spelling):
    cert = issued(client, official, county)
    code = {"lower": cert["code"].lower(), "hyphens": codes.format_code(cert["code"]),
            "lowercase_path": cert["code"].lower()}[spelling]
    url = f"/c/{code}" if spelling == "lowercase_path" else f"/C/{code}"
    assert client.get(url).status_code == 200


def test_revoked_expired_superseded_pages_and_json(app, client, official, county, grading):
    revoked = issued(client, official, county, index=0)
    client.post(f"/api/v1/certificates/{revoked['code']}/revoke", json={"reason": "复检镉超标 <re-test>"},
                headers=official.headers)
    body = client.get(f"/api/v1/verify/{revoked['code']}").get_json()
    assert body["genuine"] is True and body["status"] == "revoked" and body["reason"] == "复检镉超标 <re-test>"
    assert set(body) >= {"genuine", "status", "reason", "replaced_by", "valid_until", "subject", "grade", "claims",
                         "signature", "key_id"}
    assert body["claims"]["code"] == revoked["code"] and body["key_id"] == revoked["key_id"]
    html = page(client, revoked["code"]).get_data(as_text=True)
    assert "已撤销" in html and "复检镉超标 &lt;re-test&gt;" in html

    old = issued(client, official, county, index=1)
    new = issued(client, official, county, index=1)
    body = client.get(f"/api/v1/verify/{old['code']}").get_json()
    assert body["status"] == "superseded" and body["replaced_by"] == new["code"]
    html = page(client, old["code"], **{"Accept-Language": "en"}).get_data(as_text=True)
    assert "Superseded" in html and f'href="/C/{new["code"]}?lang=en"' in html

    expired = issued(client, official, county, index=2)
    with app.app_context():
        db.session.execute(update(Certificate).where(Certificate.code == expired["code"])
                           .values(valid_until=utcnow() - timedelta(days=1)))
        db.session.commit()
    assert client.get(f"/api/v1/verify/{expired['code']}").get_json()["status"] == "expired"
    assert "已过期" in page(client, expired["code"]).get_data(as_text=True)


def test_unknown_and_malformed_codes_get_the_same_page(client, official, county, grading):
    issued(client, official, county)
    unknown = codes.new_code()
    answers = [page(client, c) for c in (unknown, "not-a-code", "<script>", "0" * 64, unknown[:-1] + "Z"
                                         if unknown[-1] != "Z" else unknown[:-1] + "Y")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1
    assert "无法验证" in answers[0].get_data(as_text=True)
    assert unknown not in answers[0].get_data(as_text=True)
    assert_problem(client.get(f"/api/v1/verify/{unknown}"), 404, "not_found")
    assert_problem(client.get("/api/v1/verify/nonsense"), 404, "not_found")


def test_page_escapes_place_names(app, client, official, county, grading):
    village_code = parcel_of(county)["village"]
    with app.app_context():
        db.session.execute(update(Region).where(Region.code == village_code)
                           .values(name='<script>alert("x")</script>村'))
        db.session.commit()
    cert = issued(client, official, county)
    html = page(client, cert["code"]).get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;村" in html


def test_page_shows_no_coordinates(client, official, county, grading):
    feature = county.parcels[0]
    cert = issued(client, official, county)
    html = page(client, cert["code"]).get_data(as_text=True)
    body = json.dumps(client.get(f"/api/v1/verify/{cert['code']}").get_json())
    numbers = {round(v, 3) for ring in feature["geometry"]["coordinates"] for pt in ring for v in pt}
    for value in numbers:
        whole, frac = f"{value:.3f}".split(".")
        assert not re.search(rf"{whole}\.{frac[:2]}", html), value
        assert not re.search(rf"{whole}\.{frac[:2]}", body), value


def test_scans_are_counted_by_client_class_and_no_address_is_stored(app, client, official, county, grading):
    cert = issued(client, official, county)
    page(client, cert["code"])
    page(client, cert["code"])
    client.get(f"/C/{cert['code']}", headers={"User-Agent": "Googlebot/2.1"})
    client.get(f"/C/{cert['code']}", headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"})
    read = client.get(f"/api/v1/certificates/{cert['code']}", headers=official.headers).get_json()
    assert read["scans"]["count"] == 4
    assert read["scans"]["by_client"] == {"mobile": 2, "desktop": 1, "bot": 1, "other": 0}
    assert read["scans"]["first_on"] == read["scans"]["last_on"] == utcnow().date().isoformat()
    with app.app_context():
        dump = []
        for table in inspect(db.engine).get_table_names():
            dump += [str(tuple(r)) for r in db.session.execute(text(f"SELECT * FROM {table}"))]
    assert not any(ADDRESS in row for row in dump)


def test_rate_limit_gives_429_page_with_retry_after(app, client, official, county, grading):
    cert = issued(client, official, county)
    app.config["VERIFY_RATE_LIMIT"] = 3
    statuses = [page(client, cert["code"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = page(client, cert["code"])
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.mimetype == "text/html" and "请求过于频繁" in limited.get_data(as_text=True)
    assert_problem(client.get(f"/api/v1/verify/{cert['code']}", environ_base={"REMOTE_ADDR": ADDRESS}), 429,
                   "rate_limited")
    assert page(client, "garbage").status_code == 429  # unknown codes count too: no free enumeration
    other = client.get(f"/C/{cert['code']}", environ_base={"REMOTE_ADDR": "198.51.100.2"})
    assert other.status_code == 200
    read = client.get(f"/api/v1/certificates/{cert['code']}", headers=official.headers).get_json()
    assert read["scans"]["count"] == 4  # refused requests are not scans


def _flip(token: str, positions: tuple[int, ...]) -> str:
    chars = list(token)
    for i in positions:
        chars[i] = "0" if chars[i] != "0" else "1"
    return "".join(chars)


def test_token_endpoint(app, client, official, county, grading, tmp_path):
    cert = issued(client, official, county)
    token = cert["token"]
    ok = client.post("/api/v1/verify/token", json={"token": token})
    assert ok.status_code == 200
    assert ok.get_json()["genuine"] is True and ok.get_json()["status"] == "valid"
    assert ok.get_json()["claims"]["code"] == cert["code"] and ok.get_json()["claims"]["grade"] == "clean"
    assert client.post("/api/v1/verify/token", json={"token": token.lower()}).status_code == 200
    foreign_ring = KeyRing.load_or_create(tmp_path / "other-keys")
    with app.app_context():
        claims = Claims(code=cert["code"], subject_type="parcel", subject_code=cert["subject"]["code"],
                        grade="clean", rule_pack="green_food_soil:2021.1",
                        tested_on=utcnow().date(), valid_until=utcnow().date())
    foreign = sign_claims(claims, foreign_ring)
    cases = [
        (_flip(token, (40, 41, 60)), 422, "invalid_signature"),
        (_flip(token, (len(token) - 9,)), 422, "invalid_signature"),
        # 5 bytes shorter: still Base32, the signature no longer fits
        (codes.crockford_b32encode(codes.crockford_b32decode(token)[:-5]), 422, "invalid_signature"),
        (token[:30], 400, "malformed"),
        (foreign, 422, "unknown_issuer_key"),
        ("hello, world!", 400, "malformed"),
        ("", 422, "validation_failed"),
    ]
    for bad, status, code in cases:
        body = assert_problem(client.post("/api/v1/verify/token", json={"token": bad}), status, code)
        assert "claims" not in body
    assert_problem(client.post("/api/v1/verify/token", json={"token": "A" * 50_000}), 413, "payload_too_large")
    assert_problem(client.post("/api/v1/verify/token", json={"token": 12}), 422, "validation_failed", "token")
    assert_problem(client.post("/api/v1/verify/token", data="{", content_type="application/json"), 400,
                   "malformed_json")
    client.post(f"/api/v1/certificates/{cert['code']}/revoke", json={"reason": "re-test"},
                headers=official.headers)
    after = client.post("/api/v1/verify/token", json={"token": token}).get_json()
    assert after["genuine"] is True and after["status"] == "revoked" and after["reason"] == "re-test"


def test_keys_document_lists_public_keys_only(app, client, official, county, grading):
    cert = issued(client, official, county)
    resp = client.get("/.well-known/fieldsvc-keys.json")
    keys = resp.get_json()["keys"]
    assert [k["kid"] for k in keys] == [cert["key_id"]] and keys[0]["status"] == "current"
    assert keys[0]["alg"] == "Ed25519" and "PRIVATE" not in resp.get_data(as_text=True)
    assert "max-age" in resp.headers["Cache-Control"]


def test_configured_pem_signs_and_old_folder_keys_still_verify(app, client, official, county, grading, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    old = issued(client, official, county)
    pem = tmp_path / "signing.pem"
    pem.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    app.config["SIGNING_KEY_PATH"] = str(pem)
    new = issued(client, official, county, index=1)
    assert new["key_id"] != old["key_id"]
    assert client.post("/api/v1/verify/token", json={"token": old["token"]}).status_code == 200
    assert client.get(f"/api/v1/verify/{old['code']}").get_json()["genuine"] is True
    statuses = {k["kid"]: k["status"] for k in client.get("/.well-known/fieldsvc-keys.json").get_json()["keys"]}
    assert statuses == {new["key_id"]: "current", old["key_id"]: "retired"}


def test_public_routes_are_declared_public(app):
    for endpoint in ("certificates_public.page", "verify.verify_code", "verify.verify_token", "verify.public_keys"):
        assert app.view_functions[endpoint].fieldsvc_roles == ("public",)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Certificate)) == 0
