"""The field app's map in headless Chromium: our vector tiles scoped by the device token, the tiles (and,
where allowed, the basemap's) of the assignment area kept by the service worker within the configured
zooms and bounds, drawn offline with the phone's position; planned points from the local store numbered
nearest first; no request leaves our origin or the configured basemap."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import pytest

from tests.browser.test_field_app import expect_attr, inside_point, provision, wait_until
from tests.browser.test_map import basemap  # noqa: F401 (the local XYZ tile server fixture)

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@contextlib.contextmanager
def configured(app, **values):
    """Set config keys on the shared browser server for one test, and put them back after."""
    before = {k: app.config[k] for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(before)


def phone(browser, lang="zh-CN"):
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=1, locale=lang, timezone_id="Asia/Shanghai",
                              permissions=["geolocation"], geolocation={"latitude": 0, "longitude": 0, "accuracy": 5},
                              service_workers="allow")
    ctx.set_default_timeout(20_000)
    return ctx


def tile_cache(page) -> dict:
    return page.evaluate("""() => new Promise((ok) => { const r = indexedDB.open('fieldsvc-field');
        r.onsuccess = () => { const g = r.result.transaction('meta').objectStore('meta').get('tile_cache');
        g.onsuccess = () => ok(g.result); }; })""")


def cached_urls(page) -> list[str]:
    return page.evaluate("() => caches.open('fieldsvc-tiles').then((c) => c.keys()).then((k) => k.map((r) => r.url))")


def set_meta(page, key, value) -> None:
    page.evaluate("""([key, value]) => new Promise((ok, fail) => { const r = indexedDB.open('fieldsvc-field');
        r.onsuccess = () => { const t = r.result.transaction('meta', 'readwrite');
        t.objectStore('meta').put(value, key);
        t.oncomplete = () => ok(); t.onerror = () => fail(t.error); }; })""", [key, value])


@pytest.mark.parametrize("lang", ["zh-CN", "en-GB"])
def test_offline_map_shows_cached_tiles_basemap_and_position(field, browser, basemap, screenshots, lang):  # noqa: F811
    host, seen = basemap
    template = f"{host}/{{z}}/{{x}}/{{y}}.png"
    with configured(field.app, BASEMAP_URL=template, BASEMAP_ATTRIBUTION="© Test tiles", BASEMAP_OFFLINE=True,
                    FIELD_TILE_MIN_ZOOM=14, FIELD_TILE_MAX_ZOOM=18):
        ctx = phone(browser, lang)
        requests: list[str] = []
        ctx.on("request", lambda r: requests.append(r.url))
        device = field.new_device()
        page = provision(ctx, field, device)
        wait_until(page, "() => Number(document.body.dataset.tilesCached || 0) > 0", timeout_s=60)
        report = tile_cache(page)
        assert report["zooms"] == [14, 15, 16, 17, 18] and not report["full"] and report["failed"] == 0
        urls = cached_urls(page)
        assert len(urls) == report["tiles"]
        data = [u for u in urls if "/tiles/" in u]
        base = [u for u in urls if u.startswith(host)]
        assert {urlsplit(u).path.split("/")[2] for u in data} == {"parcels", "areas", "samples"}
        assert base and len(data) == 3 * len(base)  # one basemap tile per data tile position
        assert {int(urlsplit(u).path.split("/")[3]) for u in data} == set(range(14, 19))
        fetched = len(seen)
        assert fetched >= len(base)

        ctx.set_offline(True)
        page.reload()
        expect_attr(page, "#net", "data-online", "false")
        feature = device.parcels[0]
        lat, lon = inside_point(feature)
        ctx.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
        expect_attr(page, "#map", "data-position", f"{lat:.6f},{lon:.6f},12")
        page.click("#zoom-fit")
        expect_attr(page, "#map", "data-state", "ready")
        code = feature["properties"]["code"]
        wait_until(page, f"() => fieldApp.state.map.parcelShown('{code}') !== null")
        shown = page.evaluate(f"() => fieldApp.state.map.parcelShown('{code}')")
        assert shown["state"] == "none" and shown["category"] == "none"  # from the cached tile, offline
        assert page.evaluate("() => fieldApp.state.map.meSource.getFeatures().length") == 2  # dot and circle
        assert "© Test tiles" in page.inner_text("#map")
        assert len(seen) == fetched  # offline: the basemap came from the worker's cache, not the host
        suffix = "zh" if lang.startswith("zh") else "en"
        page.screenshot(path=str(screenshots / f"field-map-offline-{suffix}.png"))
        page.click("#tabs button[data-view=device]")
        assert page.inner_text("#offline-map").strip()
        assert all(u.startswith((field.base_url, host)) for u in requests), \
            [u for u in requests if not u.startswith((field.base_url, host))]
        ctx.close()


def test_tile_cache_stops_at_whole_zooms_within_the_count_and_bytes(field, browser):
    with configured(field.app, FIELD_TILE_MIN_ZOOM=12, FIELD_TILE_MAX_ZOOM=18, FIELD_TILE_MAX_COUNT=40):
        ctx = phone(browser)
        page = provision(ctx, field, field.new_device())
        wait_until(page, "() => Number(document.body.dataset.tilesCached || 0) > 0", timeout_s=60)
        report = tile_cache(page)
        zooms = report["zooms"]
        assert zooms[0] == 12 and zooms[-1] < 18 and zooms == list(range(12, zooms[-1] + 1))
        assert report["planned"] <= 40 and len(cached_urls(page)) == report["tiles"] <= 40
        assert not [u for u in cached_urls(page) if not u.startswith(field.base_url)]  # no basemap configured
        ctx.close()
    with configured(field.app, FIELD_TILE_MIN_ZOOM=12, FIELD_TILE_MAX_ZOOM=18, FIELD_TILE_MAX_MB=0.002):
        ctx = phone(browser)
        page = provision(ctx, field, field.new_device())
        wait_until(page, "() => document.body.dataset.tilesCached !== undefined", timeout_s=60)
        report = tile_cache(page)
        assert report["full"] and report["bytes"] <= 0.002 * 1024 * 1024
        sizes = page.evaluate("""() => caches.open('fieldsvc-tiles').then(async (c) => {
            const out = []; for (const r of await c.keys()) { const hit = await c.match(r);
            if (hit) out.push((await hit.arrayBuffer()).byteLength); }
            return out; })""")
        assert sum(sizes) <= 0.002 * 1024 * 1024
        ctx.close()


def test_planned_points_from_the_local_store_are_numbered_nearest_first(field, browser, screenshots):
    ctx = phone(browser, "en-GB")
    device = field.new_device()
    while len(device.parcels) < 4:  # (villages go to devices in turn; some have fewer parcels)
        device = field.new_device()
    page = provision(ctx, field, device)
    points = []
    for feature in device.parcels[:4]:
        lat, lon = inside_point(feature)
        points.append({"parcel": feature["properties"]["code"], "point": {"lat": lat, "lon": lon},
                       "reason": "not_assessed", "status": "open"})
    points[3]["status"] = "closed"  # a point a sample has settled is not drawn
    set_meta(page, "planned_points", points)
    here = points[2]["point"]  # 30 m south of the third point: it is the nearest
    ctx.set_geolocation({"latitude": here["lat"] - 0.00027, "longitude": here["lon"], "accuracy": 6})
    page.reload()
    expect_attr(page, "#map", "data-planned", "3")
    wait_until(page, "() => !!document.querySelector('#map').dataset.position")
    order = page.evaluate("""() => fieldApp.state.map.plannedSource.getFeatures()
        .map((f) => [f.get('n'), f.get('parcel')]).sort((a, b) => a[0] - b[0]).map((x) => x[1])""")
    assert order[0] == points[2]["parcel"] and sorted(order) == sorted(p["parcel"] for p in points[:3])
    assert "3 planned points" in page.inner_text("#map-legend")
    expect_attr(page, "#map-next", "data-parcel", points[2]["parcel"])  # "navigate to next": the nearest
    assert page.inner_text("#map-next").endswith(" m")
    expect_attr(page, "#sync-msg", "data-kind", "ok")  # the start-up sync reloads the tiles: let it finish
    page.wait_for_timeout(300)
    expect_attr(page, "#map", "data-state", "ready")
    page.screenshot(path=str(screenshots / "field-map-planned-en.png"))
    ctx.close()


def test_without_kept_tiles_the_phones_own_parcels_still_show_and_can_be_picked(field, browser, screenshots):
    ctx = phone(browser, "en-GB")
    device = field.new_device()
    page = provision(ctx, field, device)
    wait_until(page, "() => document.body.dataset.tilesCached !== undefined", timeout_s=60)
    page.evaluate("() => caches.delete('fieldsvc-tiles')")  # as if the phone went offline before they were kept
    ctx.set_offline(True)
    page.reload()
    expect_attr(page, "#net", "data-online", "false")
    feature = device.parcels[1]
    code = feature["properties"]["code"]
    wait_until(page, "() => fieldApp.state.map && fieldApp.state.map.localSource.getFeatures().length > 0")
    assert page.evaluate("() => fieldApp.state.map.localSource.getFeatures().length") == len(device.parcels)
    expect_attr(page, "#map", "data-state", "ready")
    assert page.evaluate(f"() => fieldApp.state.map.parcelShown('{code}')") is None  # no tile: none kept
    lat, lon = inside_point(feature)
    x, y = page.evaluate(f"() => fieldApp.state.map.pixelOf({lon}, {lat})")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect_attr(page, "#map", "data-selected", code)
    expect_attr(page, "#parcel-info #sample-here", "id", "sample-here")
    page.screenshot(path=str(screenshots / "field-map-no-tiles-en.png"))
    ctx.close()
