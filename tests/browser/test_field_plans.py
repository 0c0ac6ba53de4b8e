"""The field app's "Planned" list (offline_sync/web/plans.js) in headless Chromium: an official sends a
ranked list to the device, the phone's sync brings it down into the local store, the list shows it in
plan order or nearest first ("navigate to next"), the parcel list can be ordered by it, and a sample
taken on a planned parcel takes it off the list at once (and closes it on the server once synced)."""

from __future__ import annotations

import pytest
from shapely.geometry import shape

from tests.browser.test_field_app import expect_attr, inside_point, new_sample, provision, wait_until

PHONE = {"width": 390, "height": 844}


def haversine_m(a: dict, b: dict) -> float:
    import math

    rad = math.pi / 180
    h = (math.sin((b["lat"] - a["lat"]) * rad / 2) ** 2
         + math.cos(a["lat"] * rad) * math.cos(b["lat"] * rad) * math.sin((b["lon"] - a["lon"]) * rad / 2) ** 2)
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


def planned_store(page) -> list[dict]:
    return page.evaluate("""() => new Promise((ok) => { const r = indexedDB.open('fieldsvc-field');
        r.onsuccess = () => { const g = r.result.transaction('meta').objectStore('meta').get('planned_points');
        g.onsuccess = () => ok(g.result || []); }; })""")


@pytest.mark.browser
def test_planned_list_orders_by_plan_or_distance_and_a_sample_settles_it(field, browser, screenshots):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  permissions=["geolocation"], service_workers="allow",
                                  geolocation={"latitude": 0, "longitude": 0, "accuracy": 5})
    context.set_default_timeout(15_000)
    try:
        device = field.new_device()
        while len(device.parcels) < 4:  # villages differ in size; the tests run before decide which comes next
            device = field.new_device()
        codes = [f["properties"]["code"] for f in device.parcels]
        ranked = [codes[3], codes[0], codes[2]]
        page = provision(context, field, device)
        resp = field.api.post(f"/api/v1/devices/{device.device_id}/plan", json={"parcels": ranked},
                              headers=field.official_headers)
        assert resp.status_code == 201, resp.get_json()
        points = {i["parcel"]: i["point"] for i in resp.get_json()["items"]}
        page.click("#sync-now")
        expect_attr(page, "#planned-box", "data-count", "3")
        stored = planned_store(page)
        assert [p["parcel"] for p in stored] == ranked and {p["status"] for p in stored} == {"open"}
        assert [p["id"] for p in stored] == [f"1:{c}" for c in ranked]
        items = page.locator("#planned-box button.planned-item")
        assert [items.nth(i).get_attribute("data-parcel") for i in range(3)] == ranked
        # the phone stands at the third planned point: "nearest first" puts it on top, with its distance
        third = points[ranked[2]]
        context.set_geolocation({"latitude": third["lat"], "longitude": third["lon"], "accuracy": 5})
        page.click("#planned-box button[data-plan-order=distance]")
        expect_attr(page, "#planned-box", "data-order", "distance")
        expect_attr(page, "#planned-box button.planned-item >> nth=0", "data-parcel", ranked[2])
        assert "就在这里" in page.locator("#planned-box button.planned-item >> nth=0").inner_text()
        href = page.locator("#planned-box a.plan-go >> nth=0").get_attribute("href")
        assert href.startswith(f"geo:{third['lat']},{third['lon']}")
        # the parcel list ordered by the plan: the planned parcels first, in rank order
        page.click("#show-list")
        page.select_option("#parcel-order", "plan")
        listed = page.locator("#parcel-list button.parcel")
        assert [listed.nth(i).get_attribute("data-code") for i in range(3)] == ranked
        page.evaluate("() => window.scrollTo(0, document.querySelector('#planned-box').offsetTop - 120)")
        page.screenshot(path=str(screenshots / "field-planned-zh.png"))
        here = {"lat": third["lat"] + 0.004, "lon": third["lon"]}  # ~440 m north: nearest first, with a direction
        context.set_geolocation({"latitude": here["lat"], "longitude": here["lon"], "accuracy": 5})
        nearest = min(ranked, key=lambda c: haversine_m(here, points[c]))
        expect_attr(page, "#planned-box button.planned-item >> nth=0", "data-parcel", nearest)
        assert "米 · " in page.locator("#planned-box button.planned-item >> nth=0").inner_text()
        page.select_option("#parcel-order", "distance")  # planned parcels at their point, others at their centre

        def where(f):
            c = shape(f["geometry"]).centroid
            return points.get(f["properties"]["code"], {"lat": c.y, "lon": c.x})
        first = min(device.parcels, key=lambda f: haversine_m(here, where(f)))["properties"]["code"]
        expect_attr(page, "#parcel-list button.parcel >> nth=0", "data-code", first)
        # tapping a planned point opens its parcel
        page.click(f"#planned-box button.planned-item[data-parcel='{ranked[0]}']")
        expect_attr(page, "#parcel-info #sample-here", "id", "sample-here")
        assert ranked[0] in page.locator("#parcel-info").inner_text()
        # English
        page.click("#lang")
        wait_until(page, "() => document.documentElement.lang === 'en'")
        # (the language is set before the switch stores it and redraws: wait for the redraw)
        wait_until(page, "() => document.querySelector('#planned-box h2').innerText.startsWith('Planned')")
        assert "Planned points (3 to do)" in page.locator("#planned-box h2").inner_text()
        page.evaluate("() => window.scrollTo(0, document.querySelector('#planned-box').offsetTop - 120)")
        page.screenshot(path=str(screenshots / "field-planned-en.png"))
        # a sample on the first planned parcel, taken offline: off the list at once
        context.set_offline(True)
        feature = next(f for f in device.parcels if f["properties"]["code"] == ranked[0])
        new_sample(page, context, feature, f"pl-{device.device_id[-4:]}", None)
        page.click("#tabs button[data-view=parcels]")
        expect_attr(page, "#planned-box", "data-count", "2")
        # online again: the sample syncs, the server closes the point, the pull takes it out of the store
        context.set_offline(False)
        expect_attr(page, "#pending", "data-records", "0", timeout=30_000)
        page.click("#sync-now")
        wait_until(page, """() => new Promise((ok) => { const r = indexedDB.open('fieldsvc-field');
            r.onsuccess = () => { const g = r.result.transaction('meta').objectStore('meta').get('planned_points');
            g.onsuccess = () => ok((g.result || []).length === 2); }; })""")
        plan = field.api.get(f"/api/v1/devices/{device.device_id}/plan", headers=field.official_headers).get_json()
        assert [i["status"] for i in plan["items"]] == ["closed", "open", "open"]
        assert inside_point(feature)  # (the sample was taken inside the planned parcel)
    finally:
        context.close()
