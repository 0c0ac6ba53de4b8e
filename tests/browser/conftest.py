"""Browser fixtures: a real fieldsvc on loopback (migrated SQLite, a small county) and headless Chromium.

The server runs in a thread of this process, so tests can also read the same app through
``field.api`` (Flask's test client on the same database) to check what the phone sent.
Without Chromium or Playwright these tests skip with the reason, unless ``CI=true``: then
they fail, because CI must run them (``make test`` installs Chromium and a CJK font).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from fieldsvc import create_app
from fieldsvc.extensions import db
from tests.conftest import TEST_CONFIG, migrate_to_head

CHROMIUM = os.environ.get("FIELDSVC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 360, "height": 740}
CHUNK_BYTES = 16 * 1024  # small chunks so that one photo takes several PUTs
PHOTO_MAX_PX = 800


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or run make test)"
    return None


@dataclass
class Device:
    device_id: str
    token: str
    link: str
    villages: list[str]
    parcels: list[dict[str, Any]]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class FieldServer:
    """The running server, its app, the county, and helpers to make devices and read back."""

    base_url: str
    app: Any
    county: Any
    official_headers: dict[str, str]
    _next_village: int = 0
    _users: int = 0
    villages: list[str] = field(default_factory=list)

    @property
    def api(self):
        return self.app.test_client()

    def new_device(self, villages: list[str] | None = None, sampler: str | None = None) -> Device:
        """A sampler device on fresh villages (each test gets its own, so counts stay exact)."""
        if villages is None:
            villages = [self.villages[self._next_village]]
            self._next_village += 1
        if sampler is None:
            from fieldsvc.auth.services import create_user

            self._users += 1
            sampler = f"sampler{self._users}"
            with self.app.app_context():
                create_user(sampler, f"pw-{sampler}-secret", "sampler", county_code=None, config=self.app.config,
                            actor="test")
                db.session.commit()
        resp = self.api.post("/api/v1/devices", json={"name": "Phone", "user": sampler, "villages": villages,
                                                     "parcels": []}, headers=self.official_headers)
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        from fieldsvc.devices.services import provisioning_text

        class _D:  # provisioning_text only reads device_id
            device_id = body["device_id"]

        link = provisioning_text(self.base_url, _D, body["token"])
        parcels = [f for f in self.county.parcels if f["properties"]["village"] in villages]
        return Device(body["device_id"], body["token"], link, villages, parcels)


@pytest.fixture(scope="session")
def field(tmp_path_factory):
    """fieldsvc serving on 127.0.0.1 (a secure context for service workers) with a small county."""
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
    try:
        yield from _serve(server, holder, tmp_path_factory)
    finally:
        server.server_close()


def _serve(server, holder, tmp_path_factory):
    base = f"http://127.0.0.1:{server.server_port}"
    root = tmp_path_factory.mktemp("field-server")
    url = f"sqlite:///{root / 'fieldsvc.db'}"
    migrate_to_head(url, root / "instance")
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": str(root / "instance"),
                      "PUBLIC_BASE_URL": base, "PREFERRED_CHUNK_BYTES": CHUNK_BYTES,
                      "FIELD_PHOTO_MAX_PX": PHOTO_MAX_PX, "FIELD_SYNC_INTERVAL_S": 3600})
    holder["app"] = app
    from fieldsvc.auth.services import create_user
    from fieldsvc.demo import load_places
    from fieldsvc.places.demo_data import generate_county

    county = generate_county(seed=7, parcels=60, townships=2, villages=12)
    with app.app_context():
        load_places(county)
        create_user("official", "pw-official-secret", "official", county_code=None, config=app.config,
                    actor="test")
        db.session.commit()
    token = app.test_client().post("/api/v1/auth/token", json={"username": "official",
                                                               "password": "pw-official-secret"}).get_json()["token"]
    thread = threading.Thread(target=server.serve_forever, name="fieldsvc-browser", daemon=True)
    thread.start()
    villages = [r["code"] for r in county.regions if r["level"] == "village"
                if any(f["properties"]["village"] == r["code"] for f in county.parcels)]
    yield FieldServer(base, app, county, {"Authorization": f"Bearer {token}"}, villages=villages)
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def server(app, live):
    """The test's app on a real loopback server thread (plain http, so no Secure cookies): the shared
    ``live`` server, which drains its requests before the app is torn down."""
    app.config["SESSION_COOKIE_SECURE"] = False
    return live


@pytest.fixture
def context(browser, field):
    """A fresh phone: 360 × 740, Chinese, location allowed (positions are set by each test)."""
    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="zh-CN", timezone_id="Asia/Shanghai",
                              permissions=["geolocation"], geolocation={"latitude": 0, "longitude": 0, "accuracy": 5},
                              service_workers="allow")
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def screenshots(tmp_path):
    """Where screenshots go: ``FIELDSVC_SCREENSHOTS=docs/screenshots`` keeps them, else a temp folder."""
    target = os.environ.get("FIELDSVC_SCREENSHOTS")
    folder = Path(target) if target else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
