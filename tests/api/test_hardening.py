"""Issue 19, what an adversarial run found: each test reproduces one finding and holds its fix."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest
from sqlalchemy import text

from fieldsvc.extensions import db
from tests.api.test_certificates_api import grading  # noqa: F401 (a fixture)
from tests.api.test_console_pages import Console, text_of
from tests.api.test_grading_api import CLEAN, parcels_by, put_results, put_sample
from tests.api.test_grading_rollup import run_county
from tests.helpers import assert_problem

# --- 6. formula injection in the CSVs we write --------------------------------------------------

def test_report_csv_escapes_formula_cells(app, client, official, county):
    village = county.regions[-1]["code"]
    parcels = parcels_by(county, village=village)
    evil = {"=HYPERLINK(\"http://evil.example\",\"x\")": "'=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1+1": "'+1+1", "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0", "@SUM(A1)": "'@SUM(A1)",
            "\tx": "'\tx", "\rx": "'\rx", "水稻": "水稻"}
    with app.app_context():
        for p, crop in zip(parcels, evil, strict=False):
            db.session.execute(text("UPDATE parcels SET crop = :crop WHERE code = :code"),
                               {"crop": crop, "code": p["code"]})
        db.session.commit()
    put_results(app, put_sample(app, parcels[0]["code"]), CLEAN)
    run_county(client, official, county)
    resp = client.get(f"/api/v1/reports/village/{village}.csv", headers=official.headers)
    assert resp.status_code == 200
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"), newline=""))}
    for p, crop in zip(parcels, evil, strict=False):
        assert rows[p["code"]]["crop"] == evil[crop], crop
    assert all(not r["area_m2"].startswith("'") for r in rows.values())  # numbers stay numbers


# --- 8. nesting bombs -----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1100, 100_000])
def test_deeply_nested_login_body_is_400_not_500(client, depth):
    body = b"[" * depth + b"]" * depth
    resp = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert_problem(resp, 400, "json_too_deep")


def test_nested_json_inside_strings_does_not_count(client):
    body = '{"username": "' + "[" * 5000 + '", "password": "x"}'
    resp = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert resp.status_code in (401, 422)


def test_deep_geojson_coordinates_are_400(client, official, county):
    deep = "[" * 10_000 + "1" + "]" * 10_000
    body = ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"X1",'
            '"village":"x","land_use":"paddy"},"geometry":{"type":"Polygon","coordinates":' + deep + '}}]}')
    resp = client.post("/api/v1/parcels", data=body, content_type="application/json", headers=official.headers)
    assert_problem(resp, 400, "json_too_deep")


# --- 10. ids no column can hold ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/lab/results/9223372036854775808", "/api/v1/lab/results/2147483648",
    "/api/v1/lab/imports/9223372036854775808", "/api/v1/lab/imports/2147483648",
    "/api/v1/conflicts/9223372036854775808", "/api/v1/conflicts/2147483648",
    "/api/v1/grading/runs/99999999999999999999999",
])
def test_huge_ids_are_404(client, official, path):
    assert_problem(client.get(path, headers=official.headers), 404, "not_found")


def test_huge_id_on_a_write_is_404(client, official):
    resp = client.post("/api/v1/lab/results/9223372036854775808/approve", headers=official.headers)
    assert_problem(resp, 404, "not_found")


def test_huge_console_conflict_id_is_404(app, official):
    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    assert console.get("/console/conflicts/9223372036854775808").status_code == 404


# --- 14. backups, redirects ---------------------------------------------------------------------------

def test_backup_file_is_private(app, tmp_path, database):
    if database["engine"] == "postgresql":
        import shutil

        if shutil.which("pg_dump") is None:
            pytest.skip("pg_dump not installed")
    target = tmp_path / "backup.db"
    target.write_bytes(b"")
    os.chmod(target, 0o644)  # an existing, world-readable file is tightened too
    old = os.umask(0o022)
    try:
        result = app.test_cli_runner().invoke(args=["backup", str(target)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("target", [
    "javascript:alert(1)", "javascript:/console/x", "JavaScript://%0Aalert(1)//console/",
    "data:text/html,/console/", "/console/\\evil.example", "https://fieldsvc.example@evil.example/console/",
    "\t/console/", "/\t/evil.example/console/", "///evil.example/console/",
])
def test_login_next_accepts_only_console_paths(app, official, target):
    console = Console(app)
    page = console.get("/console/login", query_string={"next": target})
    assert page.status_code == 200 and "javascript:" not in text_of(page).lower()
    resp = console.post("/console/login", {"username": official.username, "password": official.password,
                                           "next": target})
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/", target


# --- 5. the login limit, raced and shared ------------------------------------------------------------

@pytest.fixture
def counted_password_checks(monkeypatch):
    """Count real password checks; each takes 50 ms, so that parallel guesses overlap."""
    import threading
    import time

    from fieldsvc.auth import services as auth_services

    checks = {"n": 0}
    lock = threading.Lock()
    real = auth_services.verify_password

    def slow_verify(*args, **kwargs):
        with lock:
            checks["n"] += 1
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(auth_services, "verify_password", slow_verify)
    return checks


def test_parallel_wrong_passwords_check_at_most_the_limit(app, live, make_account, counted_password_checks):
    from tests.api.test_sync_concurrency import _parallel, _post

    account = make_account("official")
    counted_password_checks["n"] = 0  # (make_account logged in once)
    limit = app.config["LOGIN_MAX_FAILURES"]
    body = json.dumps({"username": account.username, "password": "wrong-password"}).encode()
    statuses = _parallel(24, lambda _i: _post(f"{live}/api/v1/auth/token", {}, body)[0])
    assert sorted(set(statuses)) == [401, 429], statuses
    assert statuses.count(401) == limit and counted_password_checks["n"] == limit
    # and the right password now waits too
    good = json.dumps({"username": account.username, "password": account.password}).encode()
    assert _post(f"{live}/api/v1/auth/token", {}, good)[0] == 429


def test_parallel_wrong_basic_passwords_check_at_most_the_limit(app, live, make_account, counted_password_checks):
    import base64
    import urllib.error
    import urllib.request

    from tests.api.test_sync_concurrency import _parallel

    account = make_account("sampler")
    counted_password_checks["n"] = 0
    limit = app.config["LOGIN_MAX_FAILURES"]
    header = "Basic " + base64.b64encode(f"{account.username}:wrong-password".encode()).decode()

    def get(_i):
        req = urllib.request.Request(f"{live}/formList", headers={"Authorization": header,
                                                                 "X-OpenRosa-Version": "1.0"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code

    statuses = _parallel(16, get)
    assert statuses.count(401) == limit and counted_password_checks["n"] == limit, statuses
    assert set(statuses) <= {401, 429}, statuses


def test_one_guesser_does_not_lock_out_the_address(app, client, make_account):
    """The username limit is per username; the address has its own, far higher limit."""
    other = make_account("lab")
    victim = make_account("official")
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] >= 10 * limit
    for _ in range(limit + 3):
        client.post("/api/v1/auth/token", json={"username": victim.username, "password": "bad"})
    assert client.post("/api/v1/auth/token", json={"username": victim.username,
                                                   "password": victim.password}).status_code == 429
    resp = client.post("/api/v1/auth/token", json={"username": other.username, "password": other.password})
    assert resp.status_code == 200, resp.get_json()


def test_the_address_limit_holds_across_usernames(app, client, make_account):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 7
    other = make_account("lab")
    for i in range(7):  # seven different usernames, each under its own limit
        assert client.post("/api/v1/auth/token", json={"username": f"ghost{i}", "password": "bad"}).status_code == 401
    assert_problem(client.post("/api/v1/auth/token", json={"username": other.username, "password": other.password}),
                   429, "rate_limited")
    elsewhere = client.post("/api/v1/auth/token", json={"username": other.username, "password": other.password},
                            environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 200


def test_successful_logins_do_not_use_up_the_address(app, client, make_account):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    account = make_account("official")  # (one login already)
    for _ in range(6):
        assert client.post("/api/v1/auth/token", json={"username": account.username,
                                                       "password": account.password}).status_code == 200


# --- 4. one valid certificate per subject, under parallel issues -----------------------------------

def test_parallel_issues_leave_one_valid_certificate(app, live, official, county, grading,  # noqa: F811
                                                     monkeypatch):
    import time

    from sqlalchemy import func, select

    from fieldsvc.certificates import services as cert_services
    from fieldsvc.certificates.models import Certificate
    from tests.api.test_certificates_api import parcel_of
    from tests.api.test_sync_concurrency import _parallel, _post

    real_sign = cert_services.sign_claims

    def slow_sign(*args, **kwargs):  # widen the window between reading the valid ones and writing
        time.sleep(0.1)
        return real_sign(*args, **kwargs)

    monkeypatch.setattr(cert_services, "sign_claims", slow_sign)
    code = parcel_of(county)["code"]
    body = json.dumps({"subject_type": "parcel", "code": code}).encode()
    answers = _parallel(8, lambda _i: _post(f"{live}/api/v1/certificates", official.headers, body)[0])
    assert answers == [201] * 8, answers
    with app.app_context():
        statuses = dict(db.session.execute(
            select(Certificate.status, func.count()).where(Certificate.subject_code == code)
            .group_by(Certificate.status)).all())
    assert statuses == {"valid": 1, "superseded": 7}


# --- 3. XLSX bombs ---------------------------------------------------------------------------------------

def xlsx_with_sheet(sheet_xml: bytes) -> bytes:
    """A real workbook (made by openpyxl) whose first sheet's XML is replaced by ``sheet_xml``."""
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["sample_code", "analyte", "value", "unit"])
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            data = sheet_xml if item.filename == "xl/worksheets/sheet1.xml" else src.read(item)
            dst.writestr(item.filename, data)
    return out.getvalue()


def sheet(rows: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main"><sheetData>' + rows + b"</sheetData></worksheet>")


BOMB_ROW = b'<row><c t="inlineStr"><is><t>S1</t></is></c><c t="inlineStr"><is><t>Cd</t></is></c><c><v>0.1</v></c></row>'


@pytest.fixture
def lab(make_account):
    return make_account("lab")


def post_xlsx(client, account, content: bytes):
    import time

    started = time.perf_counter()
    resp = client.post("/api/v1/lab/imports", headers=account.headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), "bomb.xlsx")})
    return resp, time.perf_counter() - started


def test_xlsx_zip_bomb_is_refused_quickly_by_its_ratio(app, client, lab):
    bomb = xlsx_with_sheet(sheet(BOMB_ROW * 500_000))  # 53 MB of XML in ~180 KB (the issue's: 64 MB in 187 KB)
    assert len(bomb) < 1_000_000
    resp, seconds = post_xlsx(client, lab, bomb)
    body = assert_problem(resp, 413, "import_too_large")
    assert body["details"]["limit"] == "LAB_XLSX_MAX_RATIO" and "LAB_XLSX_MAX_RATIO" in body["message"]
    assert seconds < 1.0, seconds


@pytest.mark.parametrize(("setting", "value", "rows"), [
    ("LAB_XLSX_MAX_UNCOMPRESSED_BYTES", 500_000, 20_000),
    ("LAB_XLSX_MAX_ROWS", 5_000, 20_000),
    ("LAB_XLSX_MAX_CELLS", 30_000, 20_000),
])
def test_xlsx_limits_are_checked_before_parsing(app, client, lab, setting, value, rows, monkeypatch):
    import openpyxl

    def no_parsing(*_args, **_kwargs):
        raise AssertionError("openpyxl was asked to parse a file over the limits")

    app.config["LAB_XLSX_MAX_RATIO"] = 10_000
    app.config[setting] = value
    monkeypatch.setattr(openpyxl, "load_workbook", no_parsing)
    resp, seconds = post_xlsx(client, lab, xlsx_with_sheet(sheet(BOMB_ROW * rows)))
    body = assert_problem(resp, 413, "import_too_large")
    assert body["details"]["limit"] == setting and body["details"]["max"] == value
    assert body["details"]["found"] > value
    assert seconds < 1.0, seconds


def test_xlsx_rows_numbered_far_apart_are_counted_while_streaming(app, client, lab):
    app.config["LAB_XLSX_MAX_ROWS"] = 1000
    far = b'<row r="1">' + BOMB_ROW[5:] + b'<row r="1048576">' + BOMB_ROW[5:]
    resp, seconds = post_xlsx(client, lab, xlsx_with_sheet(sheet(far)))
    body = assert_problem(resp, 413, "import_too_large")
    assert body["details"]["limit"] == "LAB_XLSX_MAX_ROWS"
    assert seconds < 1.0, seconds


def test_xlsx_under_the_limits_still_imports(app, client, lab):
    ok = xlsx_with_sheet(sheet(b'<row><c t="inlineStr"><is><t>sample_code</t></is></c><c t="inlineStr"><is><t>'
                               b'analyte</t></is></c><c t="inlineStr"><is><t>value</t></is></c><c t="inlineStr">'
                               b'<is><t>unit</t></is></c></row>' + b'<row><c t="inlineStr"><is><t>BAG-1</t></is>'
                               b'</c><c t="inlineStr"><is><t>Cd</t></is></c><c><v>0.1</v></c><c t="inlineStr"><is>'
                               b'<t>mg/kg</t></is></c></row>'))
    resp, _ = post_xlsx(client, lab, ok)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["held"] == 1


# --- 11. lost updates on devices --------------------------------------------------------------------------

def _patch(url, headers, body):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="PATCH",
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_parallel_device_patches_are_all_kept(app, client, live, official, county, make_account, monkeypatch):
    import time

    from fieldsvc.devices import services as device_services
    from tests.api.test_sync_concurrency import _parallel
    from tests.api.test_sync_push import register_device, village_codes

    villages = village_codes(county, 4)
    _, device_id = register_device(client, official, make_account, villages=villages[:1])
    real = device_services._check_assignment

    def slow_check(*args, **kwargs):  # widen the window between reading the device and writing it
        time.sleep(0.1)
        return real(*args, **kwargs)

    monkeypatch.setattr(device_services, "_check_assignment", slow_check)
    url = f"{live}/api/v1/devices/{device_id}"
    answers = _parallel(4, lambda i: _patch(url, official.headers,
                                            json.dumps({"name": f"Phone {i}", "villages": villages[:i + 1]}).encode()))
    assert [status for status, _ in answers] == [200] * 4, answers
    body = client.get(f"/api/v1/devices/{device_id}", headers=official.headers).get_json()
    assert body["version"] == 5  # 1 + four changes, none lost
    assert sorted(a["version"] for _, a in answers) == [2, 3, 4, 5]


def test_device_patch_with_a_stale_base_version_is_409(client, official, county, make_account):
    from tests.api.test_sync_push import register_device, village_codes

    villages = village_codes(county, 2)
    _, device_id = register_device(client, official, make_account, villages=villages[:1])
    path = f"/api/v1/devices/{device_id}"
    ok = client.patch(path, json={"villages": villages, "base_version": 1}, headers=official.headers)
    assert ok.status_code == 200 and ok.get_json()["version"] == 2
    stale = client.patch(path, json={"name": "x", "base_version": 1}, headers=official.headers)
    body = assert_problem(stale, 409, "version_conflict")
    assert body["details"]["current_version"] == 2
    stale = client.patch(path, json={"name": "x"}, headers={**official.headers, "If-Match": '"1"'})
    assert_problem(stale, 409, "version_conflict")
    assert client.get(path, headers=official.headers).get_json()["name"] == "Phone"
    assert_problem(client.patch(path, json={"base_version": 2}, headers=official.headers), 422,
                   "validation_failed", "_body")


def test_parallel_parcel_edits_are_all_kept(app, live, official, county, monkeypatch):
    import time

    from fieldsvc.places import services as place_services
    from tests.api.test_sync_concurrency import _parallel

    real = place_services._check_base_version

    def slow_check(*args, **kwargs):
        time.sleep(0.1)
        return real(*args, **kwargs)

    monkeypatch.setattr(place_services, "_check_base_version", slow_check)
    code = county.parcels[0]["properties"]["code"]
    url = f"{live}/api/v1/parcels/{code}"
    answers = _parallel(4, lambda i: _patch(url, official.headers, json.dumps({"crop": f"crop {i}"}).encode()))
    assert [status for status, _ in answers] == [200] * 4, answers
    assert sorted(a["properties"]["version"] for _, a in answers) == [2, 3, 4, 5]


# --- 9. the audit tables cannot be emptied ---------------------------------------------------------------

@pytest.mark.parametrize("table", ["audit_events", "entity_versions"])
def test_history_tables_refuse_truncate_and_delete(app, client, admin, county, table):
    from sqlalchemy.exc import DatabaseError

    code = county.parcels[0]["properties"]["code"]
    assert client.patch(f"/api/v1/parcels/{code}", json={"crop": "玉米"}, headers=admin.headers).status_code == 200
    with app.app_context():
        before = db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        assert before > 0
        statement = "TRUNCATE " + table if db.engine.dialect.name == "postgresql" else "DELETE FROM " + table
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
        assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == before


# --- 15. a GeoJSON import re-sent after a lost answer --------------------------------------------------

def test_geojson_import_sent_again_answers_like_the_first_commit(app, client, official, county):
    from tests.api.test_places import collection, feature, first_village

    village = first_village(county)
    body = json.dumps(collection(feature("RESENT-1", village), feature("RESENT-2", village))).encode()
    first = client.post("/api/v1/parcels", data=body, content_type="application/json", headers=official.headers)
    assert first.status_code == 201, first.get_json()
    again = client.post("/api/v1/parcels", data=body, content_type="application/json", headers=official.headers)
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == {**first.get_json(), "duplicate": True}
    listed = client.get("/api/v1/parcels", query_string={"village": village, "limit": 1000},
                        headers=official.headers).get_json()["items"]
    assert sorted(f["id"] for f in listed if f["id"].startswith("RESENT")) == ["RESENT-1", "RESENT-2"]
    # a different file naming the same codes is still refused
    other = json.dumps(collection(feature("RESENT-1", village))).encode()
    assert_problem(client.post("/api/v1/parcels", data=other, content_type="application/json",
                               headers=official.headers), 422, "validation_failed")


def test_geojson_replay_is_not_shown_to_another_county(app, client, official, county, make_account):
    from tests.api.test_places import collection, feature, first_village

    body = json.dumps(collection(feature("RESENT-3", first_village(county)))).encode()
    assert client.post("/api/v1/parcels", data=body, content_type="application/json",
                       headers=official.headers).status_code == 201
    stranger = make_account("official", county="999999")
    resp = client.post("/api/v1/parcels", data=body, content_type="application/json", headers=stranger.headers)
    assert resp.status_code == 422 and "RESENT-3" not in json.dumps(resp.get_json().get("codes", []))


# --- 16. an early answer to a media PUT leaves nothing on the connection ----------------------------------

def _raw_request(sock, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """Send one request on ``sock``; the status line and headers of its answer (body read by length)."""
    sock.sendall(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    headers, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length and not head.startswith(b"HEAD "):
        rest += sock.recv(65536)
    return headers.split(b"\r\n", 1)[0], headers


def _put_head(token: str, sha: str, length: int, content_range: str) -> bytes:
    return (f"PUT /api/v1/media/{sha} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n"
            f"Content-Range: {content_range}\r\n\r\n").encode()


@pytest.fixture
def gunicorn_server(app):
    """``make run``'s server (gunicorn, threads: keep-alive) on this test's database; ``start(**config)``."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request
    from pathlib import Path

    procs: list[subprocess.Popen] = []

    def start(**config) -> tuple[str, int]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "FIELDSVC_DATABASE_URL": app.config["DATABASE_URL"],
               "FIELDSVC_INSTANCE_PATH": app.config["INSTANCE_PATH"], "FIELDSVC_SECRET_KEY": "test-secret",
               "FIELDSVC_PASSWORD_HASH_PROFILE": "CHEAPEST", "FIELDSVC_DEMO": "0", "FIELDSVC_LOG_LEVEL": "WARNING",
               **{f"FIELDSVC_{k}": str(v) for k, v in config.items()}}
        gunicorn = shutil.which("gunicorn", path=str(Path(os.sys.executable).parent)) or "gunicorn"
        root = Path(__file__).resolve().parents[2]
        proc = subprocess.Popen([gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                                 "app:app"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return "127.0.0.1", port
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_media_put_answered_early_keeps_the_connection_usable(app, gunicorn_server, make_account):
    import hashlib
    import socket
    import time

    token = make_account("sampler").token
    data = os.urandom(2_000_000)
    sha = hashlib.sha256(data).hexdigest()
    host, port = gunicorn_server()
    with socket.create_connection((host, port), timeout=10) as sock:
        status, _ = _raw_request(sock, _put_head(token, sha, 1_000_000, "bytes 1000000-1999999/2000000"),
                                 data[1_000_000:])
        assert status.split()[1] == b"409"  # a gap: the server has 0 bytes
        started = time.perf_counter()
        head = f"HEAD /api/v1/media/{sha} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        status, headers = _raw_request(sock, head)
        assert status.split()[1] in (b"308", b"404"), status
        assert time.perf_counter() - started < 1.0
        # and the connection goes on: the upload from byte 0
        status, _ = _raw_request(sock, _put_head(token, sha, 1_000_000, "bytes 0-999999/2000000"), data[:1_000_000])
        assert status.split()[1] == b"308", status


def test_media_put_over_the_limit_is_413_and_the_next_request_never_stalls(app, gunicorn_server, make_account):
    """Past MAX_REQUEST_BYTES the body is not read: the connection is closed after the 413 (or
    the server drains it), so the client's next request is answered or refused at once."""
    import hashlib
    import socket
    import time

    token = make_account("sampler").token
    data = os.urandom(200_000)
    sha = hashlib.sha256(data).hexdigest()
    host, port = gunicorn_server(MAX_REQUEST_BYTES=64 * 1024)
    with socket.create_connection((host, port), timeout=10) as sock:
        status, _ = _raw_request(sock, _put_head(token, sha, len(data), f"bytes 0-{len(data) - 1}/{len(data)}"),
                                 data)
        assert status.split()[1] == b"413"
        started = time.perf_counter()
        head = f"HEAD /api/v1/media/{sha} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        try:
            status, _ = _raw_request(sock, head)
            assert status.split()[1] == b"404", status
        except (ConnectionError, OSError) as exc:  # closed: the client reconnects at once
            assert not isinstance(exc, TimeoutError), exc
        assert time.perf_counter() - started < 1.0


# --- 12. last_seen_at is no write on the read path ---------------------------------------------------------

def _device_seen(app, device_id):
    with app.app_context():
        return db.session.execute(text("SELECT last_seen_at FROM devices WHERE device_id = :d"),
                                  {"d": device_id}).scalar()


def test_a_read_is_answered_while_the_database_is_locked_and_seen_is_recorded_after(
        app, client, live, official, county, make_account, database):
    import threading
    import time
    import urllib.request

    from tests.api.test_sync_push import register_device, village_codes

    headers, device_id = register_device(client, official, make_account, villages=village_codes(county, 1))
    assert client.get("/api/v1/sync/pull", headers=headers).status_code == 200  # (the first makes the cursor epoch)
    with app.app_context():
        db.session.execute(text("UPDATE devices SET last_seen_at = NULL WHERE device_id = :d"), {"d": device_id})
        db.session.commit()
    release = threading.Event()
    locked = threading.Event()

    def hold_lock():  # another writer holds the lock a last_seen_at write would need
        if database["engine"] == "sqlite":
            import sqlite3

            conn = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            conn = psycopg.connect(database["url"])
            conn.execute("SELECT 1 FROM devices WHERE device_id = %s FOR UPDATE", (device_id,))
        locked.set()
        release.wait(30)
        conn.rollback()
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.perf_counter()
        req = urllib.request.Request(f"{live}/api/v1/sync/pull", headers=headers)
        with urllib.request.urlopen(req, timeout=8) as resp:
            assert resp.status == 200
        assert time.perf_counter() - started < 3.0
        time.sleep(0.5)
    finally:
        release.set()
        holder.join(30)
    assert _device_seen(app, device_id) is None  # the database was busy: given up, not waited for
    with urllib.request.urlopen(urllib.request.Request(f"{live}/api/v1/auth/me", headers=headers), timeout=8):
        pass
    for _ in range(50):  # recorded after the answer, in a transaction of its own
        if _device_seen(app, device_id) is not None:
            break
        time.sleep(0.1)
    assert _device_seen(app, device_id) is not None


# --- 13. unbounded geometry and pull pages ------------------------------------------------------------------

def _ring(n: int, lon: float = 116.0, lat: float = 30.0, r: float = 0.001) -> list[list[float]]:
    import math

    ring = [[lon + r * math.cos(2 * math.pi * i / n), lat + r * math.sin(2 * math.pi * i / n)] for i in range(n)]
    return ring + [ring[0]]


def test_a_parcel_with_too_many_vertices_is_refused(app, client, official, county):
    from tests.api.test_places import collection, feature, first_village

    app.config["MAX_PARCEL_VERTICES"] = 500
    village = first_village(county)
    big = feature("BIG-1", village)
    big["geometry"] = {"type": "Polygon", "coordinates": [_ring(600)]}
    body = assert_problem(client.post("/api/v1/parcels", json=collection(big), headers=official.headers),
                          422, "validation_failed")
    errors = body["details"]["features"][0]["errors"]["geometry"]
    assert "601 vertices" in errors[0] and "MAX_PARCEL_VERTICES" in errors[0]
    ok = feature("BIG-2", village)
    ok["geometry"] = {"type": "Polygon", "coordinates": [_ring(400)]}
    assert client.post("/api/v1/parcels", json=collection(ok), headers=official.headers).status_code == 201
    code = county.parcels[0]["properties"]["code"]
    resp = client.patch(f"/api/v1/parcels/{code}", json={"geometry": big["geometry"]}, headers=official.headers)
    assert_problem(resp, 422, "validation_failed", "geometry")


def test_pull_pages_are_bounded_by_bytes_too(app, client, official, county, make_account):
    from tests.api.test_sync_push import register_device, village_codes

    villages = village_codes(county, 3)
    headers, _ = register_device(client, official, make_account, villages=villages)
    whole = []
    cursor = None
    while True:  # unbounded by bytes: the reference
        body = client.get("/api/v1/sync/pull", query_string={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                          headers=headers).get_json()
        whole += body["changes"]
        cursor = body["cursor"]
        if not body["has_more"]:
            break
    app.config["PULL_MAX_PAGE_BYTES"] = 1000
    pages, cursor = [], None
    while True:
        resp = client.get("/api/v1/sync/pull", query_string={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                          headers=headers)
        body = resp.get_json()
        pages.append((len(resp.data), body["changes"]))
        cursor = body["cursor"]
        if not body["has_more"]:
            break
    assert len(pages) > 3
    assert [c for _, changes in pages for c in changes] == whole  # nothing lost, nothing twice, same order
    biggest_change = max(len(json.dumps(c, ensure_ascii=False).encode()) for c in whole)
    assert all(size <= 1000 + biggest_change + 200 for size, _ in pages)


# --- 14. the OpenAPI document -------------------------------------------------------------------------------

def test_openapi_document_is_usable_by_a_fuzzer(client):
    spec = client.get("/openapi.json").get_json()
    assert not [p for p in spec["paths"] if "<" in p or ">" in p]
    assert "/api/v1/media/{sha256}" in spec["paths"]
    bounds = []

    def walk(node):
        if isinstance(node, dict):
            bounds.extend(v for k, v in node.items() if k in ("minimum", "maximum"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    assert bounds and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    for path, ops in spec["paths"].items():
        for op in ops.values():
            media = set(op["responses"]["default"].get("content", {}))
            if path.startswith(("/console", "/formList", "/forms", "/submission", "/C/", "/c/", "/field")):
                assert "application/json" not in media, path
    links = {name for ops in spec["paths"].values() for op in ops.values()
             for response in op["responses"].values() for name in response.get("links", {})}
    assert {"GetImportedParcel", "GetDevice", "GetImport", "ApproveResult", "GetRun", "GetCertificate"} <= links
