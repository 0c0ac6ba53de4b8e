"""The console shows a sample's custom-question answers and who made each version (issue 17), in
headless Chromium at desk and phone sizes, zh and en (screenshots for looking at)."""

from __future__ import annotations

import pytest

from tests.api.test_openrosa_collect import CROPS, EXTRA_ROWS, upload, xlsform
from tests.api.test_sync_extra import ANSWERS
from tests.api.test_sync_push import data_for, parcels_in, push, record, results, village_codes
from tests.browser.test_console_flow import _login

pytestmark = pytest.mark.browser


def test_parcel_and_sample_pages_show_answers(app, client, county, official, make_account, server, browser,
                                              database, screenshots):
    villages = village_codes(county, 1)
    sampler = make_account("sampler")
    token = client.post("/api/v1/devices", json={"name": "Phone", "user": sampler.username, "villages": villages},
                        headers=official.headers).get_json()["token"]
    assert upload(client, official, xlsform(EXTRA_ROWS, CROPS)).status_code == 201
    feature = parcels_in(county, villages)[0]
    rec = record(data_for(feature, "EXS-0800", extra=ANSWERS, extension_version=1))
    results(push(client, {"Authorization": f"Bearer {token}", "User-Agent": "fieldsvc-field/1.4"}, [rec]))
    parcel = feature["properties"]["code"]
    for lang, size in (("zh", (1366, 900)), ("en", (1366, 900)), ("zh", (390, 844)), ("en", (390, 844))):
        context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
        try:
            page = _login(context, server, official.username, official.password, f"/console/parcel/{parcel}")
            page.goto(f"{server}/console/parcel/{parcel}?lang={lang}")
            answers = page.locator("#sample-EXS-0800 .extra-answers").inner_text()
            assert ("作物: 水稻" if lang == "zh" else "Crop: Rice") in answers
            page.locator("#sample-EXS-0800").scroll_into_view_if_needed()
            shots = database["engine"] == "sqlite"
            if shots:
                page.screenshot(path=str(screenshots / f"console-parcel-extra-{lang}-{size[0]}.png"))
            page.goto(f"{server}/console/audit/sample/{rec['id']}?lang={lang}")
            assert page.locator("#extra-answers tr").count() == len(ANSWERS)
            assert page.locator("#version-clients tr").count() == 2  # the header and version 1
            if shots:
                page.screenshot(path=str(screenshots / f"console-sample-extra-{lang}-{size[0]}.png"), full_page=True)
        finally:
            context.close()
