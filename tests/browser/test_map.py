"""The overview map in headless Chromium: it paints our tiles, a configured basemap loads from its own
host (a small local XYZ tile set on another loopback port) and the CSP lets exactly that host through;
unset, the map works over a plain background. No request goes anywhere else."""

from __future__ import annotations

import http.server
import io
import threading

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 230, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def basemap():
    """An XYZ tile server on loopback: every /z/x/y.png is a pale green square; paths are counted."""
    seen: list[str] = []
    body = _png()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", seen
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("configured", [True, False], ids=["basemap", "plain"])
def test_overview_map_paints_tiles_and_the_configured_basemap_only(app, county, make_account, server, browser,
                                                                   database, basemap, screenshots, configured):
    if database["engine"] != "sqlite":
        pytest.skip("the browser side is the same on both engines (tiles are compared in tests/api/test_tiles.py)")
    host, seen = basemap
    if configured:
        app.config["BASEMAP_URL"] = f"{host}/{{z}}/{{x}}/{{y}}.png"
        app.config["BASEMAP_ATTRIBUTION"] = "© Test tiles"
    official = make_account("official")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    context.set_default_timeout(20_000)
    requests: list[str] = []
    problems: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{server}/console/login")
    page.fill("input[name=username]", official.username)
    page.fill("input[name=password]", official.password)
    page.click("button[type=submit] >> nth=-1")
    page.goto(f"{server}/console/county/{county.county}?lang=en")
    page.wait_for_selector("#county-map[data-state=ready]")
    tiles = [u for u in requests if "/tiles/parcels/" in u]
    assert tiles and all(u.startswith(server) for u in tiles)
    csp = page.evaluate("() => fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    if configured:
        assert seen and all(p.endswith(".png") for p in seen)  # the basemap's own tiles were drawn
        assert f"img-src 'self' data: blob: {host};" in csp
        assert "© Test tiles" in page.inner_text("#county-map")
    else:
        assert not seen and "127.0.0.1:" not in csp
        assert "No basemap configured" in page.inner_text(".mapbox")
    assert all(u.startswith((server, host)) for u in requests), [u for u in requests if not u.startswith(server)]
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    if configured:
        page.locator("#county-map").screenshot(path=str(screenshots / "console-map-basemap.png"))
    context.close()
