"""The field app offers the form extension's custom questions (issue 17), in headless Chromium against a
real server: the questions come down with the sync, are answered offline under "More questions" with
their zh/en labels, are checked by type at entry, and reach the server as the sample's typed ``extra``."""

from __future__ import annotations

import io

from tests.api.test_openrosa_collect import xlsform
from tests.browser.test_field_app import browser_test, expect_attr, inside_point, photo_file, provision, wait_until

# No required question: the field server is shared by the session's browser tests, whose forms then show
# these questions too and must still save without answering them.
ROWS = [("select_one crops", "crop", "Crop", "作物", "", ""),
        ("integer", "plants", "Plants counted", "株数", "", ""),
        ("decimal", "ph_field", "Field pH", "现场 pH", "", ""),
        ("select_multiple crops", "past_crops", "Past crops", "前茬作物", "", ""),
        ("date", "tilled_on", "Tilled on", "翻耕日期", "", ""),
        ("geopoint", "well", "Nearest well", "最近水井", "", ""),
        ("image", "field_photo", "Field photo", "田块照片", "", ""),
        ("text", "farmer", "Farmer", "农户", "", "")]
CROPS = [("crops", "rice", "Rice", "水稻"), ("crops", "rape", "Rapeseed", "油菜")]
PHONE = {"width": 390, "height": 844}


def show_questions(page):
    """Scroll "More questions" to the top of the screen, below the sticky bar."""
    page.evaluate("""() => { const bar = document.querySelector('#bar').getBoundingClientRect().height;
        const box = document.querySelector('#extra-box').getBoundingClientRect().top;
        window.scrollBy(0, box - bar - 8); }""")


@browser_test
def test_custom_questions_answered_offline_then_synced(field, browser, tmp_path, screenshots):
    from playwright.sync_api import expect

    resp = field.api.post("/api/v1/forms/extensions", headers=field.official_headers,
                          content_type="multipart/form-data",
                          data={"file": (io.BytesIO(xlsform(ROWS, CROPS)), "extra.xlsx")})
    assert resp.status_code in (200, 201), resp.get_json()
    version = resp.get_json()["version"]
    device = field.new_device()
    feature = device.parcels[0]
    lat, lon = inside_point(feature)
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  permissions=["geolocation"],
                                  geolocation={"latitude": lat, "longitude": lon, "accuracy": 4},
                                  service_workers="allow")
    context.set_default_timeout(15_000)
    try:
        page = provision(context, field, device)
        wait_until(page, "() => window.fieldApp.state.ext !== null")  # the definition came with the first sync
        context.set_offline(True)
        page.reload()  # offline, from the shell and IndexedDB only
        expect_attr(page, "#net", "data-online", "false")
        page.click("#tabs button[data-view=new]")
        expect_attr(page, "#extra-box", "data-version", str(version))
        assert page.locator("#extra-box legend").inner_text() == "补充问题"
        assert page.locator("#extra-box .xq[data-name=crop] .label").inner_text() == "作物"
        expect_attr(page, "#parcel-hint", "data-suggested", feature["properties"]["code"])
        page.fill("#f-code", f"xq-{device.device_id[-4:]}")
        page.select_option("#x-crop", "rice")
        page.fill("#x-plants", "twelve")
        page.fill("#x-ph_field", "6,5")  # a decimal comma, as Chinese keyboards offer
        page.check("#x-past_crops input[value=rice]")
        page.check("#x-past_crops input[value=rape]")
        page.fill("#x-tilled_on", "2026-10-01")
        page.click("#extra-box .xq[data-name=well] button")
        page.set_input_files("#x-field_photo", photo_file(tmp_path, "field.jpg", seed=5))
        expect_attr(page, "#extra-box .xq[data-name=field_photo] .xphoto", "data-value", "field_photo.jpg")
        page.fill("#x-farmer", "王")
        page.click("#save")  # refused at entry: plants is not a whole number
        expect_attr(page, "#form-msg", "class", "error")
        assert page.locator("#err-x-plants").inner_text() == "请填整数"
        assert page.locator("#form-msg").inner_text().startswith("株数")
        show_questions(page)
        page.screenshot(path=str(screenshots / "field-extra-zh.png"))
        page.click("#lang")  # English keeps what was typed
        expect(page.locator("#extra-box legend")).to_have_text("More questions")  # (after the language is stored)
        assert page.locator("#x-farmer").input_value() == "王"
        assert page.locator("#extra-box .xq[data-name=crop] .label").inner_text() == "Crop"
        page.fill("#x-plants", "12")
        show_questions(page)
        page.screenshot(path=str(screenshots / "field-extra-en.png"))
        page.click("#save")
        expect_attr(page, "#form-msg", "class", "ok")
        expect_attr(page, "#pending", "data-records", "1")
        assert field.api.get("/api/v1/samples", query_string={"limit": 100},
                             headers=device.headers).get_json()["items"] == []

        context.set_offline(False)
        expect_attr(page, "#pending", "data-records", "0", timeout=30_000)
        expect_attr(page, "#pending", "data-photos", "0", timeout=30_000)
        [sample] = field.api.get("/api/v1/samples", query_string={"limit": 100},
                                 headers=device.headers).get_json()["items"]
        body = field.api.get(f"/api/v1/samples/{sample['id']}", headers=field.official_headers).get_json()
        assert body["extension_version"] == version
        well = body["extra"].pop("well")
        assert body["extra"] == {"crop": "rice", "plants": 12, "ph_field": 6.5, "past_crops": ["rice", "rape"],
                                 "tilled_on": "2026-10-01", "field_photo": "field_photo.jpg", "farmer": "王"}
        assert abs(well["lat"] - lat) < 1e-6 and abs(well["lon"] - lon) < 1e-6 and well["accuracy_m"] == 4
        assert [m["name"] for m in body["media"]] == ["field_photo.jpg"]
        assert body["state"] == "complete"  # the image answer's photo arrived like any other
    finally:
        context.close()
