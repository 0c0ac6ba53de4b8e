"""The officials' console in headless Chromium through a real flow, against a real server thread:
log in, resolve a conflict, be refused approving one's own import, approve as another official, run
grading, issue a certificate, print labels (the PDF downloads), revoke it, and see the public page
say revoked. Also takes the README's screenshots (``docs/screenshots/console-*.png``, SQLite run).
"""

from __future__ import annotations

import re

import pytest

from tests.api.test_console_pages import build_scene, centre

pytestmark = pytest.mark.browser


def _login(context, base: str, username: str, password: str, path: str):
    page = context.new_page()
    page.goto(f"{base}{path}")
    assert "/console/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit] >> nth=-1")
    page.wait_for_load_state()
    assert page.url.endswith(path), page.url
    return page


def _click_map_at(page, lon: float, lat: float) -> None:
    """Click the map where a lon/lat is drawn (the map script exposes its OpenLayers map)."""
    x, y = page.evaluate("([lon, lat]) => window.fieldsvcMap.getPixelFromCoordinate(ol.proj.fromLonLat([lon, lat]))",
                         [lon, lat])
    box = page.locator("#county-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_console_flow(app, client, county, make_account, server, browser, database, screenshots, tmp_path):
    importer, reviewer, sampler = make_account("official"), make_account("official"), make_account("sampler")
    scene = build_scene(client, county, importer.headers, sampler.username)
    shots = database["engine"] == "sqlite"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  accept_downloads=True)
    context.set_default_timeout(15_000)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))

    # log in (redirected from the queue page to the form and back)
    page = _login(context, server, reviewer.username, reviewer.password, "/console/queues")
    assert page.inner_text("[data-queue=conflicts]") == "1"
    assert page.inner_text("[data-queue=pending_results]") == "7"
    if shots:
        page.screenshot(path=str(screenshots / "console-queues.png"), full_page=True)

    # resolve the conflict: both values side by side, take the phone's
    page.click(f"a[href='/console/conflicts/{scene.conflict_id}']")
    assert page.locator("tr.diff").count() >= 1
    page.check("input[name=resolution][value=take_incoming]")
    page.click("#resolve")
    assert page.locator(".flash.ok").count() == 1
    assert client.get(f"/api/v1/conflicts/{scene.conflict_id}", headers=importer.headers).get_json()[
        "status"] == "resolved"

    # the importer may not approve their own import (four eyes)
    own_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    own = _login(own_context, server, importer.username, importer.password, "/console/queues")
    own.click(f"#result-{scene.result_ids[0]} button[name=approve]")
    assert own.get_attribute("#problem", "data-code") == "self_approval"
    own_context.close()

    # another official approves every result; the parcel grades as it goes
    page.goto(f"{server}/console/queues")
    for rid in scene.result_ids:
        page.click(f"#result-{rid} button[name=approve]")
        assert page.locator(".flash.ok").count() == 1
    assert page.inner_text("[data-queue=pending_results]") == "0"

    # run grading for the county and see what changed
    page.goto(f"{server}/console/grading")
    page.click("#run-form button[type=submit]")
    assert re.search(r"/console/grading/runs/\d+$", page.url)
    assert page.inner_text("[data-count=parcels]") == "60"

    # overview and parcel detail (screenshots), click-through from the map
    page.goto(f"{server}/console/county/{scene.county}")
    page.wait_for_selector("#county-map[data-state=ready]")
    if shots:
        page.screenshot(path=str(screenshots / "console-overview.png"), full_page=True)
    # search the sample's bag code: the map flies to it; a click on it shows its popup
    page.fill("#map-search input[name=q]", scene.clean_sample)
    page.press("#map-search input[name=q]", "Enter")
    page.wait_for_selector(f"#county-map[data-found='sample:{scene.clean_sample}']")
    page.wait_for_selector("#county-map[data-state=ready]")
    clean = next(f for f in county.parcels if f["properties"]["code"] == scene.clean_parcel)
    lat, lon = centre(clean)  # where build_scene put the clean sample
    _click_map_at(page, lon, lat)
    page.wait_for_selector("#map-popup[data-kind=sample]:not([hidden])")
    # (the held sample was taken at the same spot: either may be the one on top)
    assert page.get_attribute("#map-popup", "data-code") in (scene.clean_sample, scene.held_sample)
    # the parcel: with sample points hidden, a click on it opens its popup and the link its page
    page.fill("#map-search input[name=q]", scene.clean_parcel)
    page.press("#map-search input[name=q]", "Enter")
    page.wait_for_selector(f"#county-map[data-found='parcel:{scene.clean_parcel}']")
    page.uncheck("[data-layer-toggle=samples]")
    page.wait_for_selector("#county-map[data-state=ready]")
    _click_map_at(page, lon, lat)
    popup = page.locator(f"#map-popup[data-kind=parcel][data-code='{scene.clean_parcel}']")
    popup.wait_for()
    assert "合格" in popup.inner_text()  # graded qualified above
    page.click("#popup-open")
    page.wait_for_load_state()
    assert page.url.endswith(f"/console/parcel/{scene.clean_parcel}")
    assert page.locator("#explanation tr").count() > len(("header",))
    if shots:
        page.screenshot(path=str(screenshots / "console-parcel.png"), full_page=True)

    # issue a certificate for the qualifying parcel
    page.goto(f"{server}/console/certificates")
    page.click(f"#candidates tr[data-code='{scene.clean_parcel}'] button")
    assert "/console/certificates/" in page.url
    code = page.url.rsplit("/", 1)[1]
    assert page.get_attribute("#cert-status .badge", "class").endswith("b-valid")

    # print 2 labels with serials from slot 3: a confirmation says printed / quota now and after, then the
    # sheet's page downloads its PDF (again and again: the same serials)
    page.fill("#labels-form input[name=start_slot]", "3")
    page.fill("#labels-form input[name=serials]", "2")
    page.click("#print-labels")
    assert "/console/label-sheets/new" in page.url
    before = page.inner_text(f"#print-preview tr[data-code='{code}'] .labels-quota")
    after = page.inner_text(f"#print-preview tr[data-code='{code}'] .labels-after")
    assert before.startswith("0 / ") and after.startswith("2 / ")
    if shots:
        page.screenshot(path=str(screenshots / "console-label-confirm.png"), full_page=True)
    page.click("#confirm")
    assert "/console/label-sheets/" in page.url and page.locator("#sheet-serials tr").count() == 3
    for _ in range(2):
        with page.expect_download() as info:
            page.click("#sheet-pdf")
        saved = tmp_path / "labels.pdf"
        info.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
    if shots:
        page.screenshot(path=str(screenshots / "console-label-sheet.png"), full_page=True)
        page.goto(f"{server}/console/certificates")
        page.screenshot(path=str(screenshots / "console-certificates.png"), full_page=True)
    page.goto(f"{server}/console/certificates/{code}")
    assert page.inner_text("#labels-quota").startswith("2 / ")  # downloaded twice, counted once

    # revoke it with a reason; the public page says revoked
    page.fill("#revoke-form input[name=reason]", "复检不合格 re-test failed")
    page.click("#revoke")
    assert page.locator("#confirm-title").count() == 1  # asked once more, on a page of its own
    page.click("#confirm")
    assert page.get_attribute("#cert-status .badge", "class").endswith("b-revoked")
    public = context.new_page()
    public.goto(f"{server}/C/{code}?lang=en")
    assert public.inner_text("#status h1") == "Revoked"
    assert "re-test failed" in public.inner_text("#status")
    assert all(u.startswith(server) for u in requests), [u for u in requests if not u.startswith(server)]
    context.close()
