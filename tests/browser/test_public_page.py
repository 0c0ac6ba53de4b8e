"""The public scan page in headless Chromium at a phone's size (360 × 740), served by a real server thread."""

from __future__ import annotations

import pytest

from tests.api.test_certificates_api import grading as _grading
from tests.api.test_certificates_api import issued

grading = _grading  # the stand-in for grading's qualification(), see test_certificates_api

pytestmark = pytest.mark.browser


def _measure(page):
    return page.evaluate("""() => {
        const s = document.getElementById('status').getBoundingClientRect();
        const root = document.documentElement;
        return {scroll: root.scrollWidth, client: root.clientWidth, statusBottom: s.bottom,
                statusTop: s.top, height: window.innerHeight,
                h1Width: document.querySelector('#status h1').getBoundingClientRect().width};
    }""")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_fits_a_phone_and_renders_chinese(app, client, official, county, grading, server, browser, screenshots,
                                               lang):
    cert = issued(client, official, county)
    if lang == "en":  # the English screenshot shows the revoked state with its reason
        client.post(f"/api/v1/certificates/{cert['code']}/revoke",
                    json={"reason": "复检不合格 re-test failed: Cd 0.41"}, headers=official.headers)
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                  locale="zh-CN" if lang == "zh" else "en-US", is_mobile=True,
                                  extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9" if lang == "zh"
                                                      else "en-US,en;q=0.9"})
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    resp = page.goto(f"{server}/C/{cert['code']}", wait_until="load")
    assert resp.status == 200
    m = _measure(page)
    assert m["scroll"] <= m["client"], m
    assert 0 <= m["statusTop"] and m["statusBottom"] <= m["height"], m
    headline = page.inner_text("#status h1")
    assert headline == ("真实有效" if lang == "zh" else "Revoked")
    if lang == "zh":
        # Chinese glyphs are drawn (not tofu): the 4-character headline is wider than 4 narrow boxes
        assert m["h1Width"] > 60, m
    else:
        assert "re-test failed: Cd 0.41" in page.inner_text("#status")
    assert all(u.startswith(server) for u in requests), requests  # no external assets
    page.screenshot(path=str(screenshots / f"public-page-{lang}.png"), full_page=True)
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert page.inner_text("#status h1") == ("Genuine and valid" if lang == "zh" else "已撤销")
    context.close()
