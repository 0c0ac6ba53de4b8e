"""The officials' console over Flask's test client: login, every page, roles, CSRF, county scoping, escaping,
and each write proved with a read through the API.

The scene is built through the real API: a device pushes samples (one clean, one in conflict, one held,
one flagged), an official imports lab results (plus one for a bag code that never arrived), so every
queue has something in it. Shared helpers at the top are reused by the browser test.
"""

from __future__ import annotations

import html
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from fieldsvc.extensions import db

CLEAN = {"pH": "6.0", "Cd": "0.10", "Hg": "0.10", "As": "10", "Pb": "20", "Cr": "50", "Cu": "20"}


# --- helpers (shared with tests/browser/test_console_flow.py) ------------------------------------

def centre(feature: dict) -> tuple[float, float]:
    ring = feature["geometry"]["coordinates"][0][:-1]
    return sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring)


def sample_data(feature: dict, code: str, **overrides: Any) -> dict[str, Any]:
    lat, lon = centre(feature)
    data = {"code": code, "parcel": feature["properties"]["code"], "collected_at": "2026-11-20T08:30:00+08:00",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 4.5, "mock": False}, "depth_top_cm": 0,
            "depth_bottom_cm": 20, "sample_type": "composite", "land_use_observed": "paddy", "note": None,
            "media": []}
    data.update(overrides)
    return data


def push(api, headers, *records: dict) -> list[dict]:
    body = {"device_sent_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "schema_version": 1,
            "records": list(records)}
    resp = api.post("/api/v1/sync/push", json=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["results"]


def record(data: dict, rid: str | None = None) -> dict:
    return {"type": "sample", "id": rid or str(uuid.uuid4()), "base_version": None, "deleted": False, "data": data}


@dataclass
class Scene:
    county: str
    village: str
    clean_parcel: str
    other_parcel: str
    clean_sample: str  # bag code
    clean_sample_id: str
    conflict_sample: str
    held_sample: str
    flagged_sample: str
    held_bag: str
    device_id: str
    device_headers: dict[str, str]
    conflict_id: int = 0
    result_ids: list[str] = field(default_factory=list)


def build_scene(api, county, official_headers: dict[str, str], sampler: str, tag: str = "") -> Scene:
    """A device's pushes and an official's lab import; ``official_headers`` is the importer."""
    features = county.parcels
    by_village: dict[str, list[dict]] = {}
    for f in features:
        by_village.setdefault(f["properties"]["village"], []).append(f)
    village, members = next((v, fs) for v, fs in sorted(by_village.items())
                            if len(fs) >= 3 and any(f["properties"]["land_use"] == "paddy" for f in fs))
    clean = next(f for f in members if f["properties"]["land_use"] == "paddy")
    others = [f for f in members if f is not clean]
    resp = api.post("/api/v1/devices", json={"name": "Phone", "user": sampler, "villages": [village], "parcels": []},
                    headers=official_headers)
    assert resp.status_code == 201, resp.get_json()
    device = resp.get_json()
    headers = {"Authorization": f"Bearer {device['token']}"}
    s = Scene(county.county, village, clean["properties"]["code"], others[0]["properties"]["code"],
              f"C{tag}-CLEAN-1", "", f"C{tag}-CONF-1", f"C{tag}-HELD-1", f"C{tag}-FLAG-1", f"C{tag}-NEVER-1",
              device["device_id"], headers)
    conflict_id = str(uuid.uuid4())
    lat, lon = centre(others[1])
    out = push(api, headers,
               record(sample_data(clean, s.clean_sample)),
               record(sample_data(others[0], s.conflict_sample), conflict_id),
               record(sample_data(clean, s.held_sample, parcel=f"NO-SUCH-PARCEL{tag}")),
               record(sample_data(others[1], s.flagged_sample, location={"lat": lat + 0.02, "lon": lon,
                                                                         "accuracy_m": 4.0, "mock": False})))
    assert [r["status"] for r in out] == ["applied", "applied", "held", "applied"], out
    s.clean_sample_id = out[0]["id"]
    again = push(api, headers, record(sample_data(others[0], s.conflict_sample, depth_bottom_cm=30), conflict_id))
    assert again[0]["status"] == "conflict", again
    conflicts = api.get("/api/v1/conflicts", query_string={"record": conflict_id}, headers=official_headers)
    s.conflict_id = int(conflicts.get_json()["items"][0]["id"])
    rows = "".join(f"{s.clean_sample},{a},{v},{'' if a == 'pH' else 'mg/kg'},,\n" for a, v in CLEAN.items())
    rows += f"{s.held_bag},Cd,0.2,mg/kg,,\n"
    csv = ("sample_code,analyte,value,unit,detection_limit,method\n" + rows).encode()
    resp = api.post("/api/v1/lab/imports", headers=official_headers, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(csv), f"results{tag}.csv")})
    assert resp.status_code == 201, resp.get_json()
    items = api.get("/api/v1/lab/results", query_string={"sample": s.clean_sample}, headers=official_headers)
    s.result_ids = [i["id"] for i in items.get_json()["items"]]
    assert len(s.result_ids) == len(CLEAN)
    return s


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    return _CSRF.search(html).group(1)


class Console:
    """A browser-like client of the console: one cookie jar, the CSRF token read from each page."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.token = ""

    def get(self, path: str, **kwargs: Any):
        resp = self.client.get(path, **kwargs)
        match = _CSRF.search(resp.get_data(as_text=True)) if resp.mimetype == "text/html" else None
        if match:
            self.token = match.group(1)
        return resp

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kwargs: Any):
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.token)
        return self.client.post(path, data=body, **kwargs)

    def login(self, username: str, password: str, next_path: str = "/console/"):
        self.get("/console/login")
        resp = self.post("/console/login", {"username": username, "password": password, "next": next_path})
        if resp.status_code == 303:
            self.get(resp.headers["Location"])
        return resp


def text_of(resp) -> str:
    return resp.get_data(as_text=True)


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture
def importer(make_account):
    return make_account("official")


@pytest.fixture
def scene(app, client, county, importer, make_account) -> Scene:
    sampler = make_account("sampler")
    return build_scene(client, county, importer.headers, sampler.username)


@pytest.fixture
def reviewer(app, make_account):
    account = make_account("official")
    console = Console(app)
    assert console.login(account.username, account.password).status_code == 303
    return account, console


# --- sign-in ---------------------------------------------------------------------------------------

def test_unauthenticated_page_redirects_to_login_and_back(app, official):
    console = Console(app)
    resp = console.get("/console/queues?x=1")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/console/login?next=")
    page = console.get(resp.headers["Location"])
    assert page.status_code == 200 and 'name="password"' in text_of(page)
    bad = console.post("/console/login", {"username": official.username, "password": "wrong-password",
                                          "next": "/console/queues?x=1"})
    assert bad.status_code == 401 and 'id="login-error"' in text_of(bad)
    good = console.post("/console/login", {"username": official.username, "password": official.password,
                                           "next": "/console/queues?x=1"})
    assert good.status_code == 303 and good.headers["Location"] == "/console/queues?x=1"
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/;" in cookie  # console + /tiles
    assert "Secure" in cookie  # the test config's public base URL is https
    assert console.get("/console/queues").status_code == 200


def test_login_never_redirects_off_site(app, official):
    console = Console(app)
    console.get("/console/login")
    for target in ("https://evil.example/console/", "//evil.example/console/", "/api/v1/regions"):
        resp = console.post("/console/login", {"username": official.username, "password": official.password,
                                               "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/console/", target
        console.get("/console/login")


def test_logout_revokes_the_session_token(app, client, reviewer):
    account, console = reviewer
    with console.client.session_transaction("/console/") as sess:
        token = sess["token"]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    console.get("/console/queues")
    assert console.post("/console/logout").status_code == 303
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with console.client.session_transaction("/console/") as sess:  # a copied cookie is worthless too
        sess["token"] = token
    assert console.get("/console/queues").status_code == 303


def test_failed_logins_are_rate_limited(app, official):
    app.config["LOGIN_MAX_FAILURES"] = 2
    console = Console(app)
    for _ in range(2):
        console.get("/console/login")
        assert console.post("/console/login", {"username": official.username, "password": "nope-nope"}
                            ).status_code == 401
    console.get("/console/login")
    resp = console.post("/console/login", {"username": official.username, "password": official.password})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("role", ["sampler"])
def test_sampler_accounts_cannot_sign_in(app, client, make_account, role):
    account = make_account(role)
    console = Console(app)
    resp = console.login(account.username, account.password)
    assert resp.status_code == 403 and "console_role" not in text_of(resp).split("<main>")[0]
    with console.client.session_transaction("/console/") as sess:
        assert "token" not in sess


LAB_ROUTES = {"console.index", "console.lab_home", "console.lab_check", "console.lab_commit", "console.lab_import",
              "console.export_file"}


@pytest.mark.parametrize("role", ["lab", "sampler"])
def test_every_console_route_refuses_lab_and_sampler_tokens(app, make_account, role):
    """Even with a session holding their token (made by hand), every console route answers 403
    (a lab account: every route but its workspace's)."""
    account = make_account(role)
    console = Console(app)
    with console.client.session_transaction("/console/") as sess:
        sess["token"], sess["csrf"] = account.token, "t" * 43
    console.token = "t" * 43
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console/") or rule.endpoint in ("console.login", "console.logout"):
            continue
        if role == "lab" and rule.endpoint in LAB_ROUTES:
            continue
        path = re.sub(r"<any\(([a-z_]+)[^)]*\):[a-z_]+>", r"\1", rule.rule)  # an any() converter: its first
        path = re.sub(r"<(?:int:)?[a-z_]+>", "1", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = console.get(path) if method == "GET" else console.post(path)
            assert resp.status_code == 403, (method, path, resp.status_code)
            assert resp.mimetype == "text/html"
            checked += 1
    assert checked >= 25


def map_config(page: str) -> dict:
    """The overview map's settings (its ``data-map`` JSON)."""
    return json.loads(html.unescape(re.search(r'data-map="([^"]+)"', page).group(1)))


def scene_county_features(app, county: str) -> list[dict]:
    with app.app_context():
        from fieldsvc.places.models import Parcel

        return [{"geometry": json.loads(g)} for g in db.session.scalars(
            select(Parcel.geometry_json).where(Parcel.county_code == county))]


# --- every page for an official -----------------------------------------------------------------

def test_every_page_renders_for_an_official(app, client, scene, reviewer, importer):
    _, console = reviewer
    resp = console.get("/console/")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/console/county/{scene.county}"
    page = text_of(console.get(f"/console/county/{scene.county}"))
    assert 'id="county-map"' in page and "coordinates" not in page  # the map draws tiles: no geometry inline
    config = map_config(page)
    assert config["mode"] == "grade" and config["tiles"] == "/tiles" and config["basemap"] is None
    w, s, e, n = config["bbox"]
    assert all(w <= f["geometry"]["coordinates"][0][0][0] <= e for f in scene_county_features(app, scene.county))
    assert re.search(r'id="count-sampled">(\d+)<', page).group(1) == "3"  # clean, conflict and flagged parcels
    sampling = text_of(console.get(f"/console/county/{scene.county}?color=sampling"))
    assert map_config(sampling)["mode"] == "sampling"
    assert console.get(f"/console/county/{scene.county}?color=rainbow").status_code == 422
    village = text_of(console.get(f"/console/village/{scene.village}"))
    assert scene.clean_parcel in village and scene.other_parcel in village
    with app.app_context():  # any farm park of the county renders
        from fieldsvc.places.models import FarmPark

        park = db.session.scalar(select(FarmPark.code).limit(1))
    assert console.get(f"/console/farm-park/{park}").status_code == 200
    parcel = text_of(console.get(f"/console/parcel/{scene.clean_parcel}"))
    assert scene.clean_sample in parcel  # the sample and its (pending) Cd result
    assert re.search(r'<td>镉 \(Cd\)</td><td class="num">0\.10?</td>', parcel)
    queues = text_of(console.get("/console/queues"))
    counts = dict(re.findall(r'data-queue="([a-z_]+)">(\d+)<', queues))
    assert counts == {"conflicts": "1", "held_samples": "1", "held_results": "1", "pending_results": "7",
                      "qc_holds": "0", "flagged_samples": "1"}, counts
    # clock skew as people say it (under a minute, minutes, hours, days), never raw seconds
    assert re.search(r'<td>(不到 1 分钟|\d+ 分钟|[\d.]+ 小时|\d+ 天)</td>', queues) and " s</td>" not in queues
    conflict = text_of(console.get(f"/console/conflicts/{scene.conflict_id}"))
    assert 'class="diff"' in conflict and "depth_bottom_cm" in conflict and "30" in conflict
    for path in ("/console/grading", "/console/certificates", "/console/devices",
                 f"/console/devices/{scene.device_id}", f"/console/audit/parcel/{scene.clean_parcel}",
                 f"/console/audit/sample/{scene.clean_sample_id}", f"/console/audit/device/{scene.device_id}",
                 f"/console/audit/lab_result/{scene.result_ids[0]}",
                 f"/console/audit/sync_conflict/{scene.conflict_id}", f"/console/audit/region/{scene.village}"):
        resp = console.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == "no-store"
    audit = text_of(console.get(f"/console/audit/sync_conflict/{scene.conflict_id}"))
    assert "同步冲突：同一编号的不同记录" in audit and "conflict_" not in audit.split("<main>")[1]  # in words
    assert console.get("/console/audit/password/x").status_code == 404


def test_language_switch_and_accept_language(app, reviewer, county):
    _, console = reviewer
    zh = text_of(console.get("/console/queues", headers={"Accept-Language": "zh-CN"}))
    assert "待办队列" in zh and 'lang="zh-CN"' in zh
    en = text_of(console.get("/console/queues?lang=en"))
    assert "Queues" in en and 'lang="en"' in en and 'id="lang-switch"' in en
    assert "Queues" in text_of(console.get("/console/queues", headers={"Accept-Language": "zh-CN"}))  # remembered


# --- CSRF ----------------------------------------------------------------------------------------

def test_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(app, client, scene, reviewer,
                                                                                importer):
    _, console = reviewer
    url = f"/console/conflicts/{scene.conflict_id}/resolve"
    for extra in ({"csrf": False}, {"data": {"csrf_token": "forged", "resolution": "take_incoming"}}):
        resp = console.post(url, **({"data": {"resolution": "take_incoming"}} | extra))
        assert resp.status_code == 403 and 'data-code="csrf_failed"' in text_of(resp)
    item = client.get(f"/api/v1/conflicts/{scene.conflict_id}", headers=importer.headers).get_json()
    assert item["status"] == "open"
    assert console.post("/console/results/1/approve", csrf=False).status_code == 403


# --- writes, each proved with a read -------------------------------------------------------------

def test_resolve_conflict_take_incoming_makes_a_new_sample_version(client, scene, reviewer, importer):
    _, console = reviewer
    console.get(f"/console/conflicts/{scene.conflict_id}")
    bad = console.post(f"/console/conflicts/{scene.conflict_id}/resolve", {"resolution": "merge",
                                                                           "pick.depth_bottom_cm": "both"})
    assert bad.status_code == 422 and 'data-field="pick.depth_bottom_cm"' in text_of(bad)
    resp = console.post(f"/console/conflicts/{scene.conflict_id}/resolve", {"resolution": "take_incoming"})
    assert resp.status_code == 303
    item = client.get(f"/api/v1/conflicts/{scene.conflict_id}", headers=importer.headers).get_json()
    assert item["status"] == "resolved" and item["resolution"] == "take_incoming"
    sample = client.get(f"/api/v1/samples/{item['record_id']}", headers=importer.headers).get_json()
    assert sample["depth_bottom_cm"] == 30 and sample["version"] == 2
    again = console.post(f"/console/conflicts/{scene.conflict_id}/resolve", {"resolution": "keep_server"})
    assert again.status_code == 409


def test_merge_takes_the_picked_side_per_field(client, scene, reviewer, importer):
    _, console = reviewer
    console.get(f"/console/conflicts/{scene.conflict_id}")
    resp = console.post(f"/console/conflicts/{scene.conflict_id}/resolve",
                        {"resolution": "merge", "pick.depth_bottom_cm": "incoming"})
    assert resp.status_code == 303
    item = client.get(f"/api/v1/conflicts/{scene.conflict_id}", headers=importer.headers).get_json()
    assert item["resolution"] == "merge" and item["resolved_values"] == {"depth_bottom_cm": 30}


def test_four_eyes_importer_refused_reviewer_approves_and_parcel_grades(app, client, scene, reviewer, importer):
    own = Console(app)
    own.login(importer.username, importer.password)
    own.get("/console/queues")
    refused = own.post(f"/console/results/{scene.result_ids[0]}/approve")
    assert refused.status_code == 403 and 'data-code="self_approval"' in text_of(refused)
    _, console = reviewer
    console.get("/console/queues")
    for rid in scene.result_ids:
        assert console.post(f"/console/results/{rid}/approve").status_code == 303
    items = client.get("/api/v1/lab/results", query_string={"sample": scene.clean_sample},
                       headers=importer.headers).get_json()["items"]
    assert {i["status"] for i in items} == {"approved"}
    grade = client.get(f"/api/v1/grades/parcel/{scene.clean_parcel}", headers=importer.headers).get_json()
    assert grade["verdict"] == "qualified"
    page = text_of(console.get(f"/console/parcel/{scene.clean_parcel}"))
    assert 'id="explanation"' in page and "Cd" in page


def approve_all(console: Console, scene: Scene) -> None:
    console.get("/console/queues")
    for rid in scene.result_ids:
        assert console.post(f"/console/results/{rid}/approve").status_code == 303


def test_grading_run_certificate_issue_labels_revoke(app, client, scene, reviewer, importer):
    _, console = reviewer
    approve_all(console, scene)
    console.get("/console/grading")
    bad = console.post("/console/grading/runs", {"scope_type": "planet", "code": "x"})
    assert bad.status_code == 422
    resp = console.post("/console/grading/runs", {"scope_type": "county", "code": scene.county,
                                                 "rule_pack": "green_food_soil"})
    assert resp.status_code == 303 and "/console/grading/runs/" in resp.headers["Location"]
    run_page = text_of(console.get(resp.headers["Location"]))
    assert 'data-count="parcels">60<' in run_page
    run_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/grading/runs/{run_id}", headers=importer.headers).get_json()["counts"]["parcels"] == 60
    candidates = text_of(console.get("/console/certificates"))
    assert f'data-code="{scene.clean_parcel}"' in candidates
    refused = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.other_parcel})
    assert refused.status_code == 409 and 'id="problem-reasons"' in text_of(refused)
    assert '<li data-code="unresolved_conflicts">有未解决的同步冲突</li>' in text_of(refused)  # in words
    # villages without samples are not assessed (never shown as failing at C)
    assert re.search(r'data-code="not_assessed">未评价：有样品依据的面积占比不足（[^<]*）<', candidates)
    assert not re.search(r'等级低于 A（C 级）', candidates)
    assert console.post("/console/certificates", {"subject_type": "moon", "code": "x"}).status_code == 422
    issued = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel})
    assert issued.status_code == 303
    code = issued.headers["Location"].rsplit("/", 1)[1]
    body = client.get(f"/api/v1/certificates/{code}", headers=importer.headers).get_json()
    assert body["status"] == "valid" and body["subject"]["code"] == scene.clean_parcel
    pdf = console.get(f"/console/certificates/{code}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    labels = console.get("/console/labels.pdf", query_string={"codes": code, "template": "a4_3x7",
                                                              "start_slot": "5"})
    assert labels.status_code == 200 and labels.data.startswith(b"%PDF")
    assert "attachment" in labels.headers["Content-Disposition"]
    assert console.get("/console/labels.pdf", query_string={"codes": code, "start_slot": "-1"}).status_code == 422
    console.get(f"/console/certificates/{code}")
    assert console.post(f"/console/certificates/{code}/revoke", {"reason": "x"}).status_code == 422
    revoked = console.post(f"/console/certificates/{code}/revoke", {"reason": "复检不合格 <b>Cd</b>", "confirmed": "1"})
    assert revoked.status_code == 303
    body = client.get(f"/api/v1/certificates/{code}", headers=importer.headers).get_json()
    assert body["status"] == "revoked" and body["reason"] == "复检不合格 <b>Cd</b>"
    page = text_of(console.get(f"/console/certificates/{code}"))
    assert "复检不合格 &lt;b&gt;Cd&lt;/b&gt;" in page and "<b>Cd</b>" not in page
    public = client.get(f"/C/{code}?lang=en")
    assert public.status_code == 200 and "Revoked" in text_of(public)
    assert console.get("/console/labels.pdf", query_string={"codes": code}).status_code == 409


def test_certificate_list_pages_back_and_a_parcel_shows_all_its_certificates(app, client, scene, reviewer,
                                                                           importer, monkeypatch):
    from fieldsvc.console import views as console_views

    _, console = reviewer
    approve_all(console, scene)
    assert console.post("/console/grading/runs", {"scope_type": "county", "code": scene.county,
                                                 "rule_pack": "green_food_soil"}).status_code == 303
    codes = []
    for _ in range(2):  # the second supersedes the first: two certificates of one parcel
        issued = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel,
                                                         "confirmed": "1"})
        assert issued.status_code == 303
        codes.append(issued.headers["Location"].rsplit("/", 1)[1])
    monkeypatch.setattr(console_views, "CERTIFICATES_PAGE", 1)

    def listed(page):
        return re.findall(r'href="/console/certificates/([0-9A-Z]+)"', page)

    first = text_of(console.get("/console/certificates"))
    assert listed(first) == [codes[1]]
    older = re.search(r'id="older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = text_of(console.get(older))
    assert listed(second) == [codes[0]]
    assert 'id="older"' not in second and 'id="newest"' in second
    parcel_page = text_of(console.get(f"/console/parcel/{scene.clean_parcel}"))
    assert listed(parcel_page) == codes[::-1]  # all of them, not only those on the list's first page
    for bad in ("0", "x", "²", "9" * 30):
        resp = console.get("/console/certificates", query_string={"before": bad})
        assert resp.status_code == 422 and "before" in text_of(resp)


def test_held_sample_link_and_dismiss_and_held_result(app, client, scene, reviewer, importer):
    _, console = reviewer
    page = text_of(console.get("/console/queues"))
    sample_id = re.search(r'/console/samples/([0-9a-f-]{36})/dismiss', page).group(1)
    result_id = re.search(r'/console/results/(\d+)/link', page).group(1)
    unlinked = console.post(f"/console/samples/{sample_id}/link")
    assert unlinked.status_code == 409 and 'data-code="unknown_parcel"' in text_of(unlinked)
    assert console.post(f"/console/results/{result_id}/link").status_code == 409
    assert console.post(f"/console/samples/{sample_id}/dismiss", {"confirmed": "1"}).status_code == 303
    assert client.get(f"/api/v1/samples/{sample_id}", headers=importer.headers).get_json()["deleted"] is True
    assert console.post(f"/console/samples/{sample_id}/dismiss", {"confirmed": "1"}).status_code == 409
    assert console.post(f"/console/results/{result_id}/reject", {"reason": "bag never arrived", "confirmed": "1"}
                        ).status_code == 303
    result = client.get(f"/api/v1/lab/results/{result_id}", headers=importer.headers).get_json()
    assert result["status"] == "rejected" and result["rejected_reason"] == "bag never arrived"
    counts = dict(re.findall(r'data-queue="([a-z_]+)">(\d+)<', text_of(console.get("/console/queues"))))
    assert counts["held_samples"] == "0" and counts["held_results"] == "0"


def test_held_sample_moved_to_the_parcel_it_was_taken_on(app, client, county, scene, reviewer, importer):
    _, console = reviewer
    page = text_of(console.get("/console/queues"))
    sample_id = re.search(r'/console/samples/([0-9a-f-]{36})/parcel', page).group(1)
    assert console.post(f"/console/samples/{sample_id}/parcel", {"parcel": " "}).status_code == 422
    unknown = console.post(f"/console/samples/{sample_id}/parcel", {"parcel": "NO-SUCH"})
    assert unknown.status_code == 422 and "NO-SUCH" in text_of(unknown)
    parcel = county.parcels[0]["properties"]["code"]
    moved = console.post(f"/console/samples/{sample_id}/parcel", {"parcel": parcel})
    assert moved.status_code == 303
    body = client.get(f"/api/v1/samples/{sample_id}", headers=importer.headers).get_json()
    assert body["parcel"] == parcel and body["state"] != "held" and body["version"] == 2
    counts = dict(re.findall(r'data-queue="([a-z_]+)">(\d+)<', text_of(console.get("/console/queues"))))
    assert counts["held_samples"] == "0"


def test_device_list_pages_back(app, client, scene, reviewer, make_account, monkeypatch):
    from fieldsvc.console import views as console_views

    account, console = reviewer
    sampler = make_account("sampler")
    made = [client.post("/api/v1/devices", json={"name": f"P{i}", "user": sampler.username,
                                                 "villages": [scene.village]}, headers=account.headers)
            for i in range(3)]
    assert all(r.status_code == 201 for r in made)
    monkeypatch.setattr(console_views, "DEVICES_PAGE", 2)
    seen, url = [], "/console/devices"
    while url:
        page = text_of(console.get(url))
        seen += re.findall(r'href="/console/devices/([^"]+)"', page)
        found = re.search(r'id="older" href="([^"]+)"', page)
        url = found.group(1) if found else None
    assert set(r.get_json()["device_id"] for r in made) <= set(seen) and len(seen) == len(set(seen))


def test_device_register_assign_revoke(app, client, scene, reviewer, importer, make_account):
    _, console = reviewer
    sampler = make_account("sampler")
    console.get("/console/devices")
    assert console.post("/console/devices", {"name": "", "user": sampler.username}).status_code == 422
    resp = console.client.post("/console/devices", data={"csrf_token": console.token, "name": "Phone 7",
                                                          "user": sampler.username, "villages": [scene.village]})
    page = text_of(resp)
    assert resp.status_code == 201 and 'src="data:image/png;base64,' in page
    token = re.search(r'id="device-token">([^<]+)<', page).group(1)
    device_id = re.search(r"(dev_[0-9a-f]{16})", page).group(1)
    device_headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/sync/config", headers=device_headers).status_code == 200
    console.get(f"/console/devices/{device_id}")
    assert console.client.post(f"/console/devices/{device_id}/assign",
                               data={"csrf_token": console.token, "villages": []}).status_code == 303
    body = client.get(f"/api/v1/devices/{device_id}", headers=importer.headers).get_json()
    assert body["villages"] == [] and body["version"] == 2
    assert console.post(f"/console/devices/{device_id}/revoke", {"confirmed": "1"}).status_code == 303
    assert client.get("/api/v1/sync/config", headers=device_headers).status_code == 401


# --- scoping and escaping ------------------------------------------------------------------------

def test_an_official_of_another_county_sees_none_of_this_county(app, client, scene, admin, make_account):
    resp = client.post("/api/v1/regions", json={"code": "990100", "name": "别县", "name_en": "Elsewhere",
                                                "level": "county"}, headers=admin.headers)
    assert resp.status_code == 201
    other = make_account("official", county="990100")
    console = Console(app)
    assert console.login(other.username, other.password).status_code == 303
    canaries = [scene.clean_sample, scene.conflict_sample, scene.held_sample, scene.flagged_sample, scene.held_bag,
                scene.clean_parcel, scene.device_id, scene.village]
    for path in ("/console/", "/console/county/990100", "/console/queues", "/console/grading",
                 "/console/certificates", "/console/devices"):
        resp = console.get(path, follow_redirects=True)
        assert resp.status_code == 200, path
        leaked = [c for c in canaries if c in text_of(resp)]
        assert leaked == [], (path, leaked)
    for path in (f"/console/county/{scene.county}", f"/console/village/{scene.village}",
                 f"/console/parcel/{scene.clean_parcel}", f"/console/conflicts/{scene.conflict_id}",
                 f"/console/devices/{scene.device_id}", f"/console/audit/parcel/{scene.clean_parcel}",
                 f"/console/audit/sample/{scene.clean_sample_id}", f"/console/audit/lab_result/{scene.result_ids[0]}",
                 f"/console/audit/sync_conflict/{scene.conflict_id}", f"/console/certificates?county={scene.county}",
                 f"/console/grading?county={scene.county}"):
        resp = console.get(path)
        assert resp.status_code == 404, path
        assert not [c for c in canaries if c in text_of(resp) and c not in path], path  # only the key asked for
    console.get("/console/queues")
    assert console.post(f"/console/results/{scene.result_ids[0]}/approve").status_code == 404
    assert console.post(f"/console/conflicts/{scene.conflict_id}/resolve",
                        {"resolution": "keep_server"}).status_code == 404


def test_names_and_reasons_are_escaped(app, client, county, admin, reviewer):
    resp = client.post("/api/v1/farm-parks", json={"code": "FP-XSS", "name": "<script>alert(1)</script>园",
                                                   "county": county.county}, headers=admin.headers)
    assert resp.status_code == 201, resp.get_json()
    _, console = reviewer
    page = text_of(console.get(f"/console/county/{county.county}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;园" in page and "<script>" not in page
    error = text_of(console.get("/console/parcel/%3Cimg%20src=x%20onerror=alert(1)%3E"))
    assert "<img src=x" not in error and "&lt;img src=x onerror=alert(1)&gt;" in error


def test_unknown_console_url_answers_with_the_console_page_not_json(client):
    resp = client.get("/console/no-such-page")
    assert resp.status_code in (302, 303, 404)
    assert not resp.content_type.startswith("application/json")


def test_console_shows_the_collect_settings_qr_beside_the_provisioning_qr(app, client, scene, reviewer,
                                                                         make_account):
    from fieldsvc.devices.collect import decode_payload
    from tests.api.test_openrosa_collect import decode_qr

    _, console = reviewer
    sampler = make_account("sampler")
    console.get("/console/devices")
    resp = console.client.post("/console/devices", data={"csrf_token": console.token, "name": "Collect 1",
                                                          "user": sampler.username, "villages": [scene.village]})
    page = text_of(resp)
    assert resp.status_code == 201 and 'id="provisioning-qr"' in page
    token = re.search(r'id="device-token">([^<]+)<', page).group(1)
    device_id = re.search(r"(dev_[0-9a-f]{16})", page).group(1)
    shown = re.search(r'id="collect-qr" src="([^"]+)"', page) or re.search(r'src="([^"]+)" alt="[^"]*" id="collect-qr"',
                                                                          page)
    settings = decode_payload(decode_qr(shown.group(1)))
    url = settings["general"]["server_url"]
    assert url == f"https://fieldsvc.example/key/{token}"
    assert client.get(url.removeprefix("https://fieldsvc.example") + "/formList").status_code == 200
    again = text_of(console.get(f"/console/devices/{device_id}"))
    src = re.search(r'src="([^"]+)" alt="[^"]*" id="collect-qr"', again).group(1)
    assert decode_payload(decode_qr(src))["general"]["server_url"] == url
    console.post(f"/console/devices/{device_id}/revoke", {"confirmed": "1"})
    assert 'id="collect-qr"' not in text_of(console.get(f"/console/devices/{device_id}"))


def test_the_overview_kept_under_a_data_version_shows_each_committed_change(app, client, county, importer,
                                                                            make_account, reviewer):
    """``console.county_memo``: a second view reads the kept numbers; samples arriving through sync (a new
    data version) show at once on the next view, never the numbers from before them."""
    _, console = reviewer
    url = f"/console/county/{county.county}"
    sampled = re.compile(r'id="count-sampled">(\d+)<')
    first = console.get(url).get_data(as_text=True)
    assert sampled.search(first).group(1) == "0"
    assert console.get(url).get_data(as_text=True) == first  # kept: the same page
    build_scene(client, county, importer.headers, make_account("sampler").username)
    assert sampled.search(console.get(url).get_data(as_text=True)).group(1) == "3"
