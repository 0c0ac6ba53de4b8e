"""The sampler's offline web app at /field/.

First, how fieldsvc serves it (Flask test client, both engines). Then, in headless Chromium
against a real server: provision from the QR link, work offline across a reload, sync three
samples with photos, resume a photo upload cut in the middle, and show a conflict made by a
second device.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid

import pytest
from PIL import Image
from shapely.geometry import shape

from tests.helpers import assert_problem

# --- how the app is served ------------------------------------------------------------------------


def get(client, path, **kwargs):
    """GET and close (file responses hold the file open until closed)."""
    with client.get(path, **kwargs) as resp:
        resp.get_data()
        return resp


@pytest.mark.parametrize("path, mime", [
    ("/field/", "text/html"), ("/field/app.js", "text/javascript"), ("/field/style.css", "text/css"),
    ("/field/manifest.webmanifest", "application/manifest+json"), ("/field/icons/icon-192.png", "image/png"),
    ("/field/sw.js", "text/javascript"), ("/field/config.json", "application/json"),
])
def test_app_files_have_their_mime_type_and_revalidate(client, path, mime):
    resp = get(client, path)
    assert resp.status_code == 200 and resp.mimetype == mime
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_service_worker_carries_the_shell_version_and_files(client):
    resp = client.get("/field/sw.js")
    assert resp.headers["Service-Worker-Allowed"] == "/field/"
    text = resp.get_data(as_text=True)
    version = re.search(r'const VERSION = "([0-9a-f]{16})";', text).group(1)
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", text).group(1))
    assert {"./", "config.json", "index.html", "app.js", "sync.js", "store.js", "i18n.js", "manifest.webmanifest",
            "style.css", "icons/icon-192.png"} <= set(shell)
    assert "sw.js" not in shell and not any(f.endswith(".py") for f in shell)
    assert {"fieldmap.js", "/maps/ol.js", "/maps/ol.css"} <= set(shell)  # the map opens with no network
    for name in shell[1:]:  # every file the worker will cache is really there (config.json too)
        assert get(client, name if name.startswith("/") else f"/field/{name}").status_code == 200, name
    assert client.get("/field/config.json").get_json()["version"] == version
    again = client.get("/field/sw.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304


def test_config_advertises_photo_size_and_code_lists(client, app):
    body = client.get("/field/config.json").get_json()
    assert body["photo_max_px"] == app.config["FIELD_PHOTO_MAX_PX"] == 1600
    assert body["photo_quality"] == 0.8 and body["low_accuracy_m"] == 30
    assert "paddy" in body["land_uses"] and "composite" in body["sample_types"]


def test_config_carries_the_map_and_its_offline_bounds_and_the_csp_the_basemap(client, app):
    body = client.get("/field/config.json").get_json()["map"]
    assert body["tiles"] == "/tiles" and body["layers"] == ["parcels", "areas", "samples"] and body["basemap"] is None
    assert body["offline"] == {"min_zoom": 12, "max_zoom": 17, "max_tiles": 3000, "max_bytes": 60 * 1024 * 1024}
    assert "connect-src 'self';" in client.get("/field/").headers["Content-Security-Policy"]
    app.config.update(BASEMAP_URL="https://{a-c}.tiles.example.org/{z}/{x}/{y}.png", BASEMAP_OFFLINE=True,
                      FIELD_TILE_MIN_ZOOM=19, FIELD_TILE_MAX_ZOOM=25, FIELD_TILE_MAX_COUNT=0, FIELD_TILE_MAX_MB=0.5)
    body = client.get("/field/config.json").get_json()["map"]
    assert body["basemap"]["offline"] is True and body["basemap"]["url"].startswith("https://{a-c}.")
    assert body["offline"] == {"min_zoom": 19, "max_zoom": 20, "max_tiles": 1, "max_bytes": 512 * 1024}
    for path in ("/field/", "/field/sw.js"):  # the page draws basemap images; the worker fetches them
        csp = client.get(path).headers["Content-Security-Policy"]
        assert "img-src 'self' blob: data: https://*.tiles.example.org;" in csp
        assert "connect-src 'self' https://*.tiles.example.org;" in csp


@pytest.mark.parametrize("path", ["/field/nothing.js", "/field/tools/make_icons.py", "/field/../app.py",
                                  "/field/%2e%2e/fieldsvc/config.py", "/field/.hidden.js"])
def test_missing_or_unservable_files_are_html_404(client, path):
    resp = get(client, path)
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert "import" not in resp.get_data(as_text=True)


def test_field_app_needs_no_token_but_the_api_does(client):
    assert get(client, "/field/").status_code == 200
    assert_problem(client.get("/api/v1/sync/pull"), 401, "unauthorized")


# --- in the browser ---------------------------------------------------------------------------------

browser_test = pytest.mark.browser


def inside_point(feature) -> tuple[float, float]:
    point = shape(feature["geometry"]).representative_point()
    return point.y, point.x


def photo_file(tmp_path, name: str, seed: int, size=(2000, 1500)) -> str:
    """A photo-like JPEG (gradients and noise compress like a real one) larger than the app's limit."""
    import random

    rng = random.Random(seed)
    img = Image.new("RGB", size)
    px = img.load()
    for x in range(0, size[0], 4):
        for y in range(0, size[1], 4):
            c = ((x * 255) // size[0], (y * 255) // size[1], rng.randrange(256))
            for dx in range(4):
                for dy in range(4):
                    px[x + dx, y + dy] = c
    path = tmp_path / name
    img.save(path, "JPEG", quality=92)
    return str(path)


def provision(context, field, device, how="link", screenshots=None):
    """Open the provisioning link (as a phone camera would), or paste it into the set-up screen."""
    page = context.new_page()
    if how == "link":
        page.goto(device.link)
    else:
        page.goto(f"{field.base_url}/field/")
        expect_attr(page, "#setup", "data-shown", "true")
        if screenshots:
            page.screenshot(path=str(screenshots / "field-setup.png"))
        if how == "paste":
            page.fill("#setup-link", device.link)
            page.click("#setup-save")
        else:  # "link-later": the camera opens the link while the app is already showing
            page.goto(device.link)
    expect_attr(page, "#parcel-count", "data-count", str(len(device.parcels)))
    wait_until(page, "() => navigator.serviceWorker.controller !== null")  # the shell is cached
    return page


def wait_until(page, predicate: str, timeout_s: float = 15) -> None:
    """Poll with evaluate (wait_for_function evaluates strings, which the app's CSP forbids)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(100)


def expect_attr(page, selector, name, value, timeout=15_000):
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_attribute(name, value, timeout=timeout)


def new_sample(page, context, feature, code, photo, accuracy=5.0, depth=("0", "20")):
    lat, lon = inside_point(feature)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": accuracy})
    page.click("#tabs button[data-view=new]")
    expect_attr(page, "#parcel-hint", "data-suggested", feature["properties"]["code"])
    page.fill("#f-code", code)
    page.fill("#f-top", depth[0])
    page.fill("#f-bottom", depth[1])
    if photo:
        page.set_input_files("#f-photos", photo)
        expect_attr(page, "#thumbs", "data-count", "1")
    page.click("#save")
    expect_attr(page, "#form-msg", "class", "ok")
    return lat, lon


def click_parcel(page, feature) -> None:
    """Tap the map at a point inside the parcel (the map is a canvas: the pixel comes from the map)."""
    lat, lon = inside_point(feature)
    x, y = page.evaluate(f"() => fieldApp.state.map.pixelOf({lon}, {lat})")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def media_bytes(field, sha256: str) -> bytes:
    with field.api.get(f"/api/v1/media/{sha256}", headers=field.official_headers) as resp:
        assert resp.status_code == 200, resp.status_code
        return resp.get_data()


def device_samples(field, device) -> list[dict]:
    resp = field.api.get("/api/v1/samples", query_string={"limit": 1000}, headers=device.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


@browser_test
def test_provision_work_offline_and_sync_three_samples_with_photos(field, context, tmp_path, screenshots):
    device = field.new_device()
    page = provision(context, field, device, how="link-later", screenshots=screenshots)
    assert "token" not in page.url and "#" not in page.url  # the fragment was cleared
    assert not page.evaluate("() => location.hash")
    stored = page.evaluate("""() => new Promise((ok) => { const r = indexedDB.open('fieldsvc-field');
        r.onsuccess = () => { const g = r.result.transaction('meta').objectStore('meta').get('token');
        g.onsuccess = () => ok(g.result); }; })""")
    assert stored == device.token

    context.set_offline(True)
    page.reload()
    expect_attr(page, "#net", "data-online", "false")
    expect_attr(page, "#parcel-count", "data-count", str(len(device.parcels)))

    chosen = device.parcels[:3]
    photos = [photo_file(tmp_path, f"p{i}.jpg", seed=i) for i in range(3)]
    made = {}
    for i, feature in enumerate(chosen):
        accuracy = 80.0 if i == 2 else 4.0  # above the 30 m threshold: warned, not blocked
        if i == 2:
            lat, lon = inside_point(feature)
            context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": accuracy})
            page.click("#tabs button[data-view=new]")
            expect_attr(page, "#gps-box", "data-state", "low")
            page.screenshot(path=str(screenshots / "field-new-sample.png"))
        made[f"BAG-{device.device_id[-4:].upper()}-{i}"] = (feature, new_sample(
            page, context, feature, f"bag-{device.device_id[-4:]}-{i}", photos[i], accuracy))
    expect_attr(page, "#pending", "data-records", "3")
    expect_attr(page, "#pending", "data-photos", "3")
    page.click("#tabs button[data-view=outbox]")
    assert page.locator("#records li[data-status=pending]").count() == 3
    page.screenshot(path=str(screenshots / "field-outbox-offline.png"))
    assert device_samples(field, device) == []  # nothing left the phone while offline

    context.set_offline(False)  # the app syncs by itself when the network returns
    expect_attr(page, "#pending", "data-records", "0", timeout=30_000)
    expect_attr(page, "#pending", "data-photos", "0", timeout=30_000)
    expect_attr(page, f"#records li[data-code='{next(iter(made))}'] .server-state", "data-state", "complete")
    page.screenshot(path=str(screenshots / "field-outbox-synced.png"))
    from playwright.sync_api import expect

    expect(page.locator("#sync-msg")).to_have_text("同步完成", timeout=15_000)
    page.click("#lang")  # the message is re-worded in the new language, not left in Chinese
    expect(page.locator("#sync-msg")).to_have_text("Sync complete")
    page.click("#lang")
    page.click("#tabs button[data-view=parcels]")
    expect_attr(page, "#map", "data-state", "ready")
    first = chosen[0]["properties"]["code"]
    wait_until(page, f"() => (fieldApp.state.map.parcelShown('{first}') || {{}}).state === 'complete'")
    shown = page.evaluate(f"() => fieldApp.state.map.parcelShown('{first}')")
    assert shown["state"] == "complete" and shown["category"] == "complete"  # the server's tile, after the sync
    click_parcel(page, chosen[1])
    expect_attr(page, "#map", "data-selected", chosen[1]["properties"]["code"])
    expect_attr(page, "#parcel-info #sample-here", "id", "sample-here")
    assert page.get_attribute("#map", "data-position")  # the phone's position is on the map
    page.screenshot(path=str(screenshots / "field-map.png"))

    kept = page.evaluate("""() => new Promise((ok) => { const r = indexedDB.open('fieldsvc-field');
        r.onsuccess = () => { const g = r.result.transaction('photos').objectStore('photos').getAll();
        g.onsuccess = () => ok(g.result.map((p) => [p.done, p.freed === true, p.data === undefined,
                                                    p.bytes])); }; })""")
    assert len(kept) == 3 and all(done and freed and gone and size > 0 for done, freed, gone, size in kept)
    items = device_samples(field, device)
    assert sorted(s["code"] for s in items) == sorted(made)
    ids = [s["id"] for s in sorted(items, key=lambda s: s["code"])]  # in the order they were made
    assert ids == sorted(ids) and all(uuid.UUID(i).version == 7 for i in ids)
    for sample in items:
        feature, (lat, lon) = made[sample["code"]]
        assert sample["parcel"] == feature["properties"]["code"]
        assert sample["location"]["lat"] == pytest.approx(lat) and sample["location"]["lon"] == pytest.approx(lon)
        assert sample["state"] == "complete" and sample["depth_bottom_cm"] == 20
        assert ("low_accuracy" in sample["flags"]) == (sample["location"]["accuracy_m"] > 30)
        [media] = sample["media"]
        blob = media_bytes(field, media["sha256"])
        assert hashlib.sha256(blob).hexdigest() == media["sha256"]
        assert len(blob) == media["bytes"] and media["mime"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(blob)).size) == 800  # compressed on the phone to the configured size


@browser_test
def test_photo_upload_cut_in_the_middle_resumes_without_duplicates(field, context, tmp_path):
    device = field.new_device()
    page = provision(context, field, device, how="paste", screenshots=None)
    puts: list[str] = []
    cut = {"done": False}

    def media_route(route):
        request = route.request
        if request.method != "PUT":
            return route.continue_()
        puts.append(request.headers["content-range"])
        if len(puts) == 3 and not cut["done"]:
            cut["done"] = True
            route.fetch()  # the server stores the chunk, then the phone loses the answer
            return route.abort("internetdisconnected")
        return route.continue_()

    page.route(re.compile(r".*/api/v1/media/[0-9a-f]{64}$"), media_route)
    feature = device.parcels[0]
    new_sample(page, context, feature, f"CUT-{device.device_id[-6:]}", photo_file(tmp_path, "big.jpg", seed=9))
    expect_attr(page, "#sync-msg", "data-kind", "error")  # the cut is reported, the record stays queued
    assert cut["done"]
    expect_attr(page, "#pending", "data-photos", "1")
    context.set_offline(True)
    context.set_offline(False)
    expect_attr(page, "#pending", "data-photos", "0", timeout=30_000)

    ranges = [tuple(int(g) for g in re.match(r"bytes (\d+)-(\d+)/(\d+)", r).groups()) for r in puts]
    starts = [r[0] for r in ranges]
    total = ranges[0][2]
    assert ranges[3][0] == ranges[2][1] + 1  # the next PUT started after the chunk whose answer was lost
    assert len(starts) == len(set(starts)), puts  # after the cut it resumed after the lost chunk, no resend
    assert starts == sorted(starts) and starts[0] == 0 and len(puts) >= 4
    [sample] = device_samples(field, device)
    [media] = sample["media"]
    assert sample["state"] == "complete" and media["bytes"] == total
    assert hashlib.sha256(media_bytes(field, media["sha256"])).hexdigest() == media["sha256"]


@browser_test
def test_conflict_made_by_a_second_device_is_shown_with_both_values(field, context, tmp_path, screenshots):
    device = field.new_device()
    page = provision(context, field, device)
    other = field.new_device(villages=device.villages)  # a team mate's phone on the same village
    feature, theirs = device.parcels[0], device.parcels[1]
    code = f"DUP-{device.device_id[-6:]}".upper()

    context.set_offline(True)
    new_sample(page, context, feature, code, None, depth=("0", "20"))

    lat, lon = inside_point(theirs)
    record = {"type": "sample", "id": str(uuid.uuid4()), "base_version": None, "deleted": False, "data": {
        "code": code, "parcel": theirs["properties"]["code"], "collected_at": "2026-11-20T08:30:00+08:00",
        "location": {"lat": lat, "lon": lon, "accuracy_m": 3, "mock": False}, "depth_top_cm": 0,
        "depth_bottom_cm": 30, "sample_type": "composite", "land_use_observed": None, "note": None, "media": []}}
    resp = field.api.post("/api/v1/sync/push", json={"records": [record]},
                          headers={**other.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert resp.get_json()["results"][0]["status"] == "applied"

    context.set_offline(False)
    card = page.locator(f"#records li[data-code='{code}']")
    page.click("#tabs button[data-view=outbox]")
    expect_attr(page, f"#records li[data-code='{code}']", "data-status", "conflict", timeout=30_000)
    from playwright.sync_api import expect

    expect(card.locator(".reason")).to_contain_text("duplicate_sample_code")
    depth = card.locator("tr[data-field=depth]")
    expect(depth.locator(".mine")).to_have_text("0–20 cm")
    expect(depth.locator(".theirs")).to_have_text("0–30 cm")
    expect(card.locator("tr[data-field=parcel] .theirs")).to_have_text(theirs["properties"]["code"])
    page.screenshot(path=str(screenshots / "field-conflict.png"))
    # The server kept the other device's sample and nothing of ours under that code.
    codes = [s["code"] for s in device_samples(field, device)]
    assert codes.count(code) == 1


@browser_test
def test_nearest_parcel_and_provisioning_link_parsing(field, context):
    """The app's pure helpers, run in the browser as the app runs them (ES modules under its CSP)."""
    feature = field.county.parcels[0]
    page = context.new_page()
    page.goto(f"{field.base_url}/field/")
    outcome = page.evaluate("""async ([feature, link]) => {
        const geo = await import('/field/geo.js');
        const app = await import('/field/app.js');
        const parcel = {code: feature.properties.code, geometry: feature.geometry};
        const far = {code: 'FAR', geometry: {type: 'Polygon', coordinates: [[[100, 20], [100.01, 20], [100.01, 20.01],
                                                                             [100, 20]]]}};
        const [lon, lat] = feature.geometry.coordinates[0][0];
        const outside = geo.rankParcels([far, parcel], lat + 0.01, lon - 0.01);  // near, not inside either
        const [clat, clon] = geo.centroid(parcel.geometry);
        const inside = geo.rankParcels([far, parcel], clat, clon);
        return {outside: outside.map((r) => [r.parcel.code, r.inside, Math.round(r.distance_m)]),
                inside: inside.map((r) => [r.parcel.code, r.inside]),
                link: app.parseProvisioning(link), fragment: app.parseProvisioning(link.split('#')[1]),
                bare: app.parseProvisioning('fsd_abcdefghijklmnopqrstuvwxyz'), junk: app.parseProvisioning('hello')};
    }""", [feature, f"{field.base_url}/field/#server={field.base_url}&device=dev_1&token=fsd_x-y"])
    code = feature["properties"]["code"]
    assert outcome["inside"] == [[code, True], ["FAR", False]]
    assert outcome["outside"][0][:2] == [code, False] and 500 < outcome["outside"][0][2] < 3000
    assert outcome["link"] == {"token": "fsd_x-y", "server": field.base_url, "device": "dev_1"}
    assert outcome["fragment"] == outcome["link"]
    assert outcome["bare"] == {"token": "fsd_abcdefghijklmnopqrstuvwxyz", "server": None, "device": None}
    assert outcome["junk"] is None


@browser_test
def test_new_sample_ids_are_time_ordered_uuid7_and_never_decrease(field, context):
    """The app's ids (``ids.js``) as the browser makes them: RFC 9562 v7, increasing in a burst and
    when the phone's clock stands still or steps back; the same rules as the Python client's."""
    page = context.new_page()
    page.goto(f"{field.base_url}/field/")
    made = page.evaluate("""async () => {
        const ids = await import('/field/ids.js');
        const burst = Array.from({length: 2000}, () => ids.uuid7());
        const clock = [5000, 5000, 4000, 5001, 1].map((ms) => ids.uuid7(ms + 2e12));
        return {burst, clock};
    }""")
    for group in (made["burst"], made["clock"]):
        values = [uuid.UUID(text) for text in group]
        assert [str(v) for v in values] == group  # canonical text, as the server stores it
        assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in values)
        assert all(a.int < b.int for a, b in zip(values, values[1:], strict=False))
    now_ms = uuid.UUID(made["burst"][0]).int >> 80
    assert abs(now_ms - time.time() * 1000) < 60_000
