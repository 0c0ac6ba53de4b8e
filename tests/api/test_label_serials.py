"""Per-label serials: printed in each QR, checked per label (first check, count), warnings, concurrency."""

from __future__ import annotations

import threading
import urllib.request

from sqlalchemy import select

from fieldsvc.certificates import codes
from fieldsvc.certificates.models import LabelSerial
from fieldsvc.extensions import db
from fieldsvc.render.qr import qr_matrix
from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issued
from tests.api.test_certificates_labels import decode_pdf, pdf_text
from tests.helpers import assert_problem

grading = _grading


def print_sheet(client, official, code_list, serials, key=None, **body):
    """Print labels the one way that counts them: a label sheet (POST), then its PDF (GET, counts nothing)."""
    headers = {**official.headers, **({"Idempotency-Key": key} if key else {})}
    made = client.post("/api/v1/label-sheets", json={"codes": list(code_list), "serials": serials, **body},
                       headers=headers)
    if made.status_code not in (200, 201):
        return made
    return client.get(made.get_json()["pdf_url"], headers=official.headers)


def decode_pdf_symbols(data: bytes, dpi: int = 300) -> list[tuple[str, int, str, str]]:
    """Every QR on the rendered pages: (text, version, ECC level, symbology id) as zxing-cpp reads them."""
    import subprocess
    import tempfile
    from pathlib import Path

    import zxingcpp
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "doc.pdf").write_bytes(data)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(Path(tmp) / "doc.pdf"),
                        str(Path(tmp) / "page")], check=True, timeout=120)
        return [(r.text, int(r.extra["Version"]), r.extra["ECLevel"], r.symbology_identifier)
                for page in sorted(Path(tmp).glob("page*.png")) for r in zxingcpp.read_barcodes(Image.open(page))]


def printed_serials(app, code: str) -> list[str]:
    from fieldsvc.certificates.models import Certificate

    with app.app_context():
        return list(db.session.scalars(select(LabelSerial.serial).join(Certificate).where(Certificate.code == code)
                                       .order_by(LabelSerial.id)))


def test_serial_check_character_catches_substitutions_and_swaps():
    serial = codes.new_serial()
    assert codes.normalise_serial(serial) == serial and len(serial) == 7
    assert codes.normalise_serial(serial.lower()) == serial
    for i in range(7):
        for ch in codes.ALPHABET:
            if ch != serial[i]:
                assert codes.normalise_serial(serial[:i] + ch + serial[i + 1:]) is None
    for i in range(6):
        if serial[i] != serial[i + 1]:
            assert codes.normalise_serial(serial[:i] + serial[i + 1] + serial[i] + serial[i + 2:]) is None


def test_sheet_with_serials_decodes_to_one_url_per_label_and_fits_version_5(app, client, official, county, grading):
    certs = [issued(client, official, county, index=i) for i in range(2)]
    resp = print_sheet(client, official, [c["code"] for c in certs], 3)
    assert resp.status_code == 200, resp.data[:300]
    decoded = decode_pdf(resp.data)
    expected = sorted(f"{c['verify_url']}/{s}" for c in certs for s in printed_serials(app, c["code"]))
    assert sorted(decoded) == expected and len(set(decoded)) == 6
    for url in decoded:
        matrix = qr_matrix(url, "Q")
        assert matrix.version <= 5 and url == url.upper()
    # what was drawn, as a phone's decoder reads it at 300 dpi: ECC Q, version <= 5, alphanumeric mode
    symbols = decode_pdf_symbols(resp.data)
    assert len(symbols) == 6 and {ec for _, _, ec, _ in symbols} == {"Q"}
    assert max(version for _, version, _, _ in symbols) <= 5 and {s for *_, s in symbols} == {"]Q1"}
    text = pdf_text(resp.data)
    serial = printed_serials(app, certs[0]["code"])[0]
    assert f"No. {serial[:-1]}-{serial[-1]}" in text


def test_serial_page_counts_checks_and_a_wrong_check_character_is_an_unknown_code(app, client, official, county,
                                                                                    grading):
    cert = issued(client, official, county)
    assert print_sheet(client, official, [cert["code"]], 2).status_code == 200
    serial = printed_serials(app, cert["code"])[0]
    first = client.get(f"/api/v1/verify/{cert['code']}/{serial}").get_json()
    assert first["genuine"] and first["serial"]["checks"] == 1 and first["serial"]["first_checked_at"]
    assert first["serial"]["warning"] is None
    page = client.get(f"/C/{cert['code']}/{serial.lower()}?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"first checked on {first['serial']['first_checked_at'][:10]} and has been checked 2 times" in html
    again = client.get(f"/api/v1/verify/{cert['code']}/{serial}").get_json()["serial"]
    assert again["checks"] == 3 and again["first_checked_at"] == first["serial"]["first_checked_at"]
    other = printed_serials(app, cert["code"])[1]
    assert client.get(f"/api/v1/verify/{cert['code']}/{other}").get_json()["serial"]["checks"] == 1
    wrong = serial[:-1] + next(ch for ch in codes.ALPHABET if ch != serial[-1])
    unknown_code = codes.new_code()
    bad = client.get(f"/C/{cert['code']}/{wrong}")
    unknown = client.get(f"/C/{unknown_code}/{serial}")
    assert bad.status_code == unknown.status_code == 404 and bad.data == unknown.data
    assert_problem(client.get(f"/api/v1/verify/{cert['code']}/{wrong}"), 404, "not_found")
    assert_problem(client.get(f"/api/v1/verify/{unknown_code}/{serial}"), 404, "not_found")
    assert printed_serials(app, cert["code"]).count(wrong) == 0
    # superseding (a new certificate for the same subject) applies to every serial at once
    newer = issued(client, official, county)
    for s in (serial, other):
        body = client.get(f"/api/v1/verify/{cert['code']}/{s}").get_json()
        assert (body["status"], body["replaced_by"]) == ("superseded", newer["code"])
    assert "/C/" + newer["code"] in client.get(f"/C/{cert['code']}/{serial}").get_data(as_text=True)
    cert = newer
    assert print_sheet(client, official, [cert["code"]], 2).status_code == 200
    serial, other = printed_serials(app, cert["code"])
    # revoking the certificate applies to every serial at once
    client.post(f"/api/v1/certificates/{cert['code']}/revoke", json={"reason": "re-test failed"},
                headers=official.headers)
    assert client.get(f"/api/v1/verify/{cert['code']}/{other}").get_json()["status"] == "revoked"
    assert "re-test failed" in client.get(f"/C/{cert['code']}/{serial}").get_data(as_text=True)


def test_past_the_count_the_page_warns_and_officials_see_the_serial(app, client, official, county, grading):
    app.config["SERIAL_WARN_CHECKS"] = 3
    cert = issued(client, official, county)
    print_sheet(client, official, [cert["code"]], 2)
    serial, quiet = printed_serials(app, cert["code"])
    for _ in range(3):
        assert 'id="serial-warning"' not in client.get(f"/C/{cert['code']}/{serial}").get_data(as_text=True)
    html = client.get(f"/C/{cert['code']}/{serial}?lang=zh").get_data(as_text=True)
    assert 'id="serial-warning"' in html and "可能是复制品" in html
    client.get(f"/C/{cert['code']}/{quiet}")
    flagged = client.get("/api/v1/label-serials?flagged=1", headers=official.headers).get_json()["items"]
    assert [(i["code"], i["serial"], i["checks"], i["warning"]) for i in flagged] == [
        (cert["code"], serial, 4, "too_many_checks")]
    every = client.get("/api/v1/label-serials", query_string={"code": cert["code"]}, headers=official.headers)
    assert {i["serial"] for i in every.get_json()["items"]} == {serial, quiet}


def test_scans_on_too_many_days_warn(app, client, official, county, grading, monkeypatch):
    from datetime import timedelta

    from fieldsvc.certificates import services
    from fieldsvc.dbtypes import utcnow

    app.config["SERIAL_WARN_DAYS"] = 2
    cert = issued(client, official, county)
    print_sheet(client, official, [cert["code"]], 1)
    (serial,) = printed_serials(app, cert["code"])
    start = utcnow()
    warnings = []
    for day in range(4):
        monkeypatch.setattr(services, "now", lambda d=day: start + timedelta(days=d))
        body = client.get(f"/api/v1/verify/{cert['code']}/{serial}").get_json()["serial"]
        warnings.append((body["days"], body["warning"]))
    assert warnings == [(1, None), (2, None), (3, "too_many_days"), (4, "too_many_days")]


def test_too_many_labels_in_one_request_names_serials(app, client, official, county, grading):
    app.config["LABELS_MAX_CODES"] = 10
    cert = issued(client, official, county)
    assert_problem(print_sheet(client, official, [cert["code"]] * 2, 6), 422, "validation_failed", "serials")
    assert_problem(print_sheet(client, official, [cert["code"]], -1), 422, "validation_failed", "serials")
    assert printed_serials(app, cert["code"]) == []




def test_a_pages_kept_rendering_never_outlives_a_revocation_or_an_expiry(app, client, official, county, grading,
                                                                         monkeypatch):
    """The certificate part of a serial's page is rendered once per row, status and language (a memo):
    the scan right after a revocation, or past the expiry, shows the new state; the serial part is live."""
    from datetime import timedelta

    from fieldsvc.certificates import services

    cert = issued(client, official, county)
    print_sheet(client, official, [cert["code"]], 1)
    (serial,) = printed_serials(app, cert["code"])
    for n in (1, 2):
        html = client.get(f"/C/{cert['code']}/{serial}?lang=en").get_data(as_text=True)
        assert 'id="status" class="status status-valid"' in html and f"has been checked {n} times" in html
    later = services.now() + timedelta(days=3 * 366)
    with monkeypatch.context() as m:
        m.setattr(services, "now", lambda: later)
        html = client.get(f"/C/{cert['code']}/{serial}?lang=en").get_data(as_text=True)
        assert "status-expired" in html and "has been checked 3 times" in html
    assert "status-valid" in client.get(f"/C/{cert['code']}/{serial}?lang=en").get_data(as_text=True)
    client.post(f"/api/v1/certificates/{cert['code']}/revoke", json={"reason": "re-test failed"},
                headers=official.headers)
    html = client.get(f"/C/{cert['code']}/{serial}?lang=en").get_data(as_text=True)
    assert "status-revoked" in html and "re-test failed" in html and "has been checked 5 times" in html
    assert "status-revoked" in client.get(f"/C/{cert['code']}").get_data(as_text=True)


def test_fifty_concurrent_scans_of_one_serial_lose_no_count(app, client, official, county, grading, live):
    cert = issued(client, official, county)
    print_sheet(client, official, [cert["code"]], 1)
    (serial,) = printed_serials(app, cert["code"])
    n = 50
    barrier = threading.Barrier(n)
    statuses: list[int] = [0] * n

    def scan(i: int) -> None:
        barrier.wait()
        with urllib.request.urlopen(f"{live}/C/{cert['code']}/{serial}", timeout=120) as resp:
            statuses[i] = resp.status

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert statuses == [200] * n
    with app.app_context():
        row = db.session.scalar(select(LabelSerial).where(LabelSerial.serial == serial))
        assert row.checks == n and row.days == 1 and row.first_checked_at is not None
