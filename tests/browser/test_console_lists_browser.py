"""Console lists, search and an export job in headless Chromium at 1366 × 900 and 390 × 844, zh and en:
filters stay in the URL, no page scrolls sideways, the header search jumps to a parcel. Screenshots
``console-lists-*.png`` (kept with ``FIELDSVC_SCREENSHOTS=docs/screenshots``, SQLite run)."""

from __future__ import annotations

import pytest

from tests.api.test_console_pages import build_scene
from tests.browser.test_console_flow import _login

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_list_pages_with_filters(app, client, county, make_account, server, browser, database, screenshots):
    importer, reviewer, sampler = make_account("official"), make_account("official"), make_account("sampler")
    scene = build_scene(client, county, importer.headers, sampler.username)
    shots = database["engine"] == "sqlite"
    pages = {"samples": "/console/lists/samples?state=complete&sort=-received_at",
             "parcels": f"/console/lists/parcels?village={scene.village}&sort=-area&size=25",
             "certificates": "/console/lists/certificates?status=valid"}
    for size, viewport in SIZES.items():
        for lang in ("zh", "en"):
            context = browser.new_context(viewport=viewport, locale="zh-CN" if lang == "zh" else "en-GB")
            context.set_default_timeout(15_000)
            page = _login(context, server, reviewer.username, reviewer.password, "/console/lists/samples")
            for name, path in pages.items():
                page.goto(f"{server}{path}&lang={lang}")
                assert page.locator("h1").count() == 1
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= viewport["width"], (name, size, lang, wide)
                if shots:
                    page.screenshot(path=str(screenshots / f"console-lists-{name}-{size}-{lang}.png"), full_page=True)
            # the filter form keeps its values; the header search jumps to one parcel
            page.goto(f"{server}{pages['samples']}")
            assert page.locator("select[name=state]").input_value() == "complete"
            page.fill("header input[name=q]", scene.clean_parcel)
            page.press("header input[name=q]", "Enter")
            page.wait_for_load_state()
            assert page.url.endswith(f"/console/parcel/{scene.clean_parcel}")
            context.close()
