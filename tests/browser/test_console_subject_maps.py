"""The console's village, farm-park and parcel pages in headless Chromium: each paints the tile map
zoomed to its subject with the subject outlined; parcels are coloured by grade (measured and estimated
told apart); a click on a parcel opens the right one; a parcel page draws its samples' GPS accuracy
circles; the overview lays an element surface over the tiles. No request leaves our origin.
Screenshots at 1366 × 900 and 390 × 844, Chinese and English."""

from __future__ import annotations

import pytest

from tests.api.test_console_pages import centre
from tests.api.test_grading_api import graded_village

pytestmark = pytest.mark.browser
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _login(context, server, account):
    page = context.new_page()
    page.goto(f"{server}/console/login")
    page.fill("input[name=username]", account.username)
    page.fill("input[name=password]", account.password)
    page.click("button[type=submit] >> nth=-1")
    page.wait_for_load_state()
    return page


def _click_map_at(page, lon: float, lat: float) -> None:
    page.locator("#county-map").scroll_into_view_if_needed()
    x, y = page.evaluate("([lon, lat]) => window.fieldsvcMap.getPixelFromCoordinate(ol.proj.fromLonLat([lon, lat]))",
                         [lon, lat])
    box = page.locator("#county-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def _view_contains(page, bbox) -> bool:
    return page.evaluate("""(b) => { const m = window.fieldsvcMap;
        const e = ol.proj.transformExtent(m.getView().calculateExtent(m.getSize()), 'EPSG:3857', 'EPSG:4326');
        return e[0] <= b[0] && e[1] <= b[1] && e[2] >= b[2] && e[3] >= b[3]; }""", bbox)


def test_village_and_parcel_pages_paint_the_map_and_a_click_opens_the_parcel(app, client, county, make_account,
                                                                            server, browser, database, screenshots):
    if database["engine"] != "sqlite":
        pytest.skip("the browser side is the same on both engines (tiles are compared in tests/api/test_tiles.py)")
    official = make_account("official")
    dry = graded_village(app, client, official, county)
    target = dry[0]
    code, village = target["properties"]["code"], target["properties"]["village"]
    members = [f for f in county.parcels if f["properties"]["village"] == village]
    xs = [p[0] for f in members for p in f["geometry"]["coordinates"][0]]
    ys = [p[1] for f in members for p in f["geometry"]["coordinates"][0]]
    village_box = [min(xs), min(ys), max(xs), max(ys)]
    bases = {f["properties"]["code"]: client.get(f"/api/v1/grades/parcel/{f['properties']['code']}",
                                                 headers=official.headers).get_json()
             for f in members}
    requests: list[str] = []

    for size, viewport in SIZES.items():
        for lang in ("zh", "en"):
            context = browser.new_context(viewport=viewport, locale="zh-CN" if lang == "zh" else "en-GB")
            context.set_default_timeout(20_000)
            context.on("request", lambda r: requests.append(r.url))
            page = _login(context, server, official)
            page.goto(f"{server}/console/village/{village}")
            page.wait_for_selector(f"#county-map[data-focus='village:{village}'][data-state=ready]")
            assert _view_contains(page, village_box)  # zoomed to the village, all of it in view
            zoom = page.evaluate("() => window.fieldsvcMap.getView().getZoom()")
            assert zoom >= 15  # the village, not the county
            page.screenshot(path=str(screenshots / f"console-village-map-{size}-{lang}.png"), full_page=size == "phone")
            context.close()

    context = browser.new_context(viewport=SIZES["desktop"], locale="en-GB")
    context.set_default_timeout(20_000)
    context.on("request", lambda r: requests.append(r.url))
    page = _login(context, server, official)
    page.goto(f"{server}/console/village/{village}")
    page.wait_for_selector("#county-map[data-state=ready]")
    page.uncheck("[data-layer-toggle=samples]")
    page.wait_for_selector("#county-map[data-state=ready]")
    # an estimated parcel (no sample of its own) says so in its popup
    estimated = [c for c, g in bases.items() if g.get("basis") == "estimated" and g.get("verdict") in
                 ("qualified", "not_qualified")]
    if estimated:
        other = next(f for f in members if f["properties"]["code"] == estimated[0])
        _click_map_at(page, *reversed(centre(other)))
        popup = page.locator(f"#map-popup[data-kind=parcel][data-code='{estimated[0]}']")
        popup.wait_for()
        assert "estimated" in popup.inner_text()
    lat, lon = centre(target)
    _click_map_at(page, lon, lat)
    popup = page.locator(f"#map-popup[data-kind=parcel][data-code='{code}']")
    popup.wait_for()
    assert "estimated" not in popup.inner_text()  # measured on its own sample
    page.click("#popup-open")
    page.wait_for_load_state()
    assert page.url.endswith(f"/console/parcel/{code}")
    page.wait_for_selector(f"#county-map[data-focus='parcel:{code}'][data-state=ready]")
    circles = page.evaluate("""() => window.fieldsvcMap.getLayers().getArray()
        .flatMap((l) => l.getSource && l.getSource() && l.getSource().getFeatures ? l.getSource().getFeatures() : [])
        .filter((f) => f.get('kind') === 'accuracy')
        .map((f) => [f.get('code'), Math.round(f.getGeometry().getRadius())])""")
    assert len(circles) == 1 and circles[0][1] > 15  # 15 m on the ground is more in Web Mercator metres
    page.screenshot(path=str(screenshots / "console-parcel-map-desktop-en.png"), full_page=True)
    context.close()

    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport, locale="zh-CN")
        context.on("request", lambda r: requests.append(r.url))
        page = _login(context, server, official)
        page.goto(f"{server}/console/parcel/{code}")
        page.wait_for_selector(f"#county-map[data-focus='parcel:{code}'][data-state=ready]")
        page.screenshot(path=str(screenshots / f"console-parcel-map-{size}-zh.png"), full_page=size == "phone")
        context.close()
    assert requests and all(u.startswith(server) for u in requests), [u for u in requests if not u.startswith(server)]


def test_farm_park_page_and_the_overviews_element_surface(app, client, county, make_account, server, browser,
                                                          database, screenshots):
    if database["engine"] != "sqlite":
        pytest.skip("the browser side is the same on both engines")
    official = make_account("official")
    graded_village(app, client, official, county)
    park = next(f["properties"]["farm_park"] for f in county.parcels if f["properties"].get("farm_park"))
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-GB")
    context.set_default_timeout(30_000)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = _login(context, server, official)
    page.goto(f"{server}/console/farm-park/{park}")
    page.wait_for_selector(f"#county-map[data-focus='farm_park:{park}'][data-state=ready]")

    page.goto(f"{server}/console/county/{county.county}")
    page.wait_for_selector("#county-map[data-state=ready]")
    page.select_option("#map-surface", "Cd")
    page.wait_for_selector("#county-map[data-surface=Cd]")
    page.wait_for_selector("#county-map[data-state=ready]")
    legend = page.inner_text("#surface-legend")
    assert "half the limit" in legend and "Estimated surface" in legend and "not assessed" in legend
    assert any("/console/map/surface/" in u and u.endswith("/Cd.png") for u in requests)
    page.locator(".mapbox").screenshot(path=str(screenshots / "console-overview-surface-desktop-en.png"))
    page.select_option("#map-surface", "")
    assert page.get_attribute("#county-map", "data-surface") == ""
    assert all(u.startswith(server) for u in requests)
    context.close()
