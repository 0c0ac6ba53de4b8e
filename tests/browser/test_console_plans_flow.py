"""The console's "where to sample next" in headless Chromium at 1366 × 900, Chinese and English: the
ranked list from the county page, picking a device, the confirmation naming it and the count, and the
device page listing the open planned points (screenshots with FIELDSVC_SCREENSHOTS)."""

from __future__ import annotations

import re

import pytest

from tests.api.test_grading_api import CLEAN, put_results, put_sample
from tests.api.test_sync_push import register_device, village_codes
from tests.browser.test_console_flow import _login

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_official_sends_where_to_sample_next_to_a_device(app, client, county, make_account, server, browser,
                                                         database, screenshots, lang):
    official = make_account("official")
    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    for p in dry[:6]:
        put_results(app, put_sample(app, p["code"], county=county.county), CLEAN)
    _, device_id = register_device(client, official, make_account, villages=village_codes(county, 2))
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        page = _login(context, server, official.username, official.password, f"/console/county/{county.county}")
        if lang == "en":
            page.goto(f"{server}/console/county/{county.county}?lang=en")
        page.click("#sampling-next-link")
        page.wait_for_load_state()
        assert "/console/sampling-next" in page.url
        rows = page.locator("#next-items tr")
        assert rows.count() > 5
        shots = database["engine"] == "sqlite"
        if shots:
            page.screenshot(path=str(screenshots / f"console-sampling-next-{lang}.png"))
        boxes = page.locator("#next-items input[name=parcels]")
        ranked = [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]
        for i in range(8, boxes.count()):  # send the top eight
            boxes.nth(i).uncheck()
        page.select_option("#plan-device", device_id)
        page.click("#plan-send")
        page.wait_for_load_state()
        summary = page.inner_text("#plan-summary")
        assert device_id in summary and "8" in summary
        if shots:
            page.screenshot(path=str(screenshots / f"console-plan-confirm-{lang}.png"))
        page.click("#confirm")
        page.wait_for_load_state()
        assert page.url.endswith(f"/console/devices/{device_id}")
        listed = page.locator("#planned-points tr td a.mono")
        assert [listed.nth(i).inner_text() for i in range(listed.count())] == ranked[:8]
        when = page.locator("#planned-points tr >> nth=1").inner_text()
        assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", when)  # local time to the minute, no ISO stamp
        if shots:
            page.screenshot(path=str(screenshots / f"console-device-planned-{lang}.png"), full_page=True)
    finally:
        context.close()
