"""The lab workspace and the officials' bulk review in headless Chromium against a real server thread:
a lab technician uploads a 5,000-row file with a mistake, reads the check report, uploads the fixed
file and commits it; an official approves the whole import in one click (plus a confirmation) and
the parcels grade. Screens at 1366 × 900 and 390 × 844, in Chinese and English, with no horizontal
scroll and no raw code or ISO timestamp on them. Screenshots: ``console-lab-*.png``, ``console-review-*.png``.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.api.test_console_pages import push, record, sample_data

pytestmark = pytest.mark.browser

WIDE, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
RAW = re.compile(r"\b(qc_hold|self_approval|not_pending|held_result|blank_above_detection_limit|qc_sample|"
                 r"duplicate_id|paddy_dryland_rotation|not_qualified|user:|rs_[a-z]+|qcs_[a-z]+|refusal_[a-z]+)\b|"
                 r"\d{4}-\d\d-\d\dT\d\d:|\d\.\d{7,}")
SAMPLES = 1250  # × 4 analytes = 5,000 results


def _login(context, base: str, username: str, password: str, path: str):
    page = context.new_page()
    page.goto(f"{base}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit] >> nth=-1")
    page.wait_for_load_state()
    return page


def _check_screen(page, name: str, shots, keep: bool) -> None:
    """Under 300 KB of HTML, no horizontal scroll, no raw code, no ISO timestamp or long float; a screenshot."""
    size = len(page.content().encode())
    assert size < 300_000, (name, size)  # the bound on a page's HTML
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (name, width)
    text = page.inner_text("body")
    found = RAW.search(text)
    assert found is None, (name, found.group(0), text[max(0, found.start() - 80):found.end() + 80])
    if keep:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=False)


def _samples(client, county, official) -> list[str]:
    villages = sorted({f["properties"]["village"] for f in county.parcels})
    from tests.conftest import Account  # noqa: F401  (the fixture's type)

    resp = client.post("/api/v1/devices", json={"name": "Phone", "user": "sampler-b", "villages": villages,
                                                "parcels": []}, headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    codes = [f"BAG-{n:05d}" for n in range(SAMPLES)]
    features = county.parcels
    records = [record(sample_data(features[n % len(features)], code)) for n, code in enumerate(codes)]
    for start in range(0, len(records), 500):
        out = push(client, headers, *records[start:start + 500])
        assert {r["status"] for r in out} <= {"applied"}, out[:3]
    return codes


def _csv(codes: list[str], bad_line: int | None = None) -> bytes:
    lines = ["样品编号,检测项目,检测结果,单位,检出限"]
    for n, code in enumerate(codes):
        cd = "0.45" if n % 50 == 0 else "0.12"
        lines += [f"{code},pH,6.2,,", f"{code},镉,{cd},mg/kg,0.01", f"{code},Pb,<5,mg/kg,5",
                  f"{code},Cu,25000,µg/kg,"]
    if bad_line is not None:
        lines[bad_line - 1] = lines[bad_line - 1].replace("mg/kg", "mg/L")
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_lab_upload_fix_commit_and_bulk_approval(app, client, county, make_account, server, browser, database,
                                                   screenshots):
    make_account("sampler", username="sampler-b")
    official, lab = make_account("official"), make_account("lab")
    codes = _samples(client, county, official)
    keep = database["engine"] == "sqlite"

    # the lab technician, in Chinese on a desktop: a mistake on line 7 is named by line and column
    ctx = browser.new_context(viewport=WIDE, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(60_000)
    page = _login(ctx, server, lab.username, lab.password, "/console/")
    assert page.url.endswith("/console/lab")
    page.set_input_files("input[name=file]", files=[{"name": "结果.csv", "mimeType": "text/csv",
                                                      "buffer": _csv(codes, bad_line=7)}])
    page.click("#upload-form button[type=submit]")
    assert page.locator("#fix-needed").count() == 1 and page.locator("#commit-form").count() == 0
    assert page.inner_text("tr[data-line='7'] td.mono") == "单位"  # the file's own header
    _check_screen(page, "console-lab-errors-zh", screenshots, keep)
    # the fixed file: the report (5,000 rows, 1,250 µg/kg converted, 1,250 censored), then commit
    page.set_input_files("#upload-form input[name=file]", files=[{"name": "结果.csv", "mimeType": "text/csv",
                                                                  "buffer": _csv(codes)}])
    page.click("#upload-form button[type=submit]")
    assert page.inner_text("[data-count=rows]") == "5,000"
    assert page.inner_text("[data-count=converted]") == "1,250"
    assert page.inner_text("[data-count=censored]") == "1,250"
    _check_screen(page, "console-lab-report-zh", screenshots, keep)
    page.click("#commit-form button[type=submit]")
    assert re.search(r"/console/lab/imports/\d+$", page.url)
    assert page.inner_text("[data-count=pending]") == "5,000"
    page.goto(f"{server}/console/lab")
    _check_screen(page, "console-lab-zh", screenshots, keep)
    ctx.close()

    # phones, both languages: the workspace and the review page (before approval) fit 390 px
    for locale, lang in (("zh-CN", "zh"), ("en-US", "en")):
        ctx = browser.new_context(viewport=PHONE, locale=locale, timezone_id="Asia/Shanghai")
        page = _login(ctx, server, lab.username, lab.password, "/console/lab")
        _check_screen(page, f"console-lab-phone-{lang}", screenshots, keep)
        ctx.close()
        ctx = browser.new_context(viewport=PHONE, locale=locale, timezone_id="Asia/Shanghai")
        page = _login(ctx, server, official.username, official.password, "/console/review")
        _check_screen(page, f"console-review-phone-{lang}", screenshots, keep)
        ctx.close()

    # the official, in English: the import's rows, exceedances marked, approve all 5,000 in one click
    ctx = browser.new_context(viewport=WIDE, locale="en-US", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(60_000)
    page = _login(ctx, server, official.username, official.password, "/console/review")
    assert page.locator("tr[data-exceeds='1']").count() >= 1  # Cd 0.45 against 0.3 at pH 6.2 on paddy...
    _check_screen(page, "console-review-en", screenshots, keep)
    page.check("#scope-import")
    page.click("#bulk-approve")
    assert "5,000" in page.inner_text("h1")
    _check_screen(page, "console-review-confirm-en", screenshots, keep)
    started = time.perf_counter()
    page.click("#confirm")
    page.wait_for_load_state()
    seconds = time.perf_counter() - started
    print(f"\nconsole bulk approval of 5,000 results, click to page ({database['engine']}): {seconds:.2f} s")
    assert "Approved 5,000." in page.inner_text(".flash.ok")
    assert page.locator("#nothing-to-review").count() == 1
    _check_screen(page, "console-review-done-en", screenshots, keep)
    ctx.close()
    approved = client.get("/api/v1/lab/results", query_string={"status": "approved", "limit": 1000},
                          headers=official.headers).get_json()
    assert len(approved["items"]) == 1000 and approved["next_cursor"]
    parcel = county.parcels[0]["properties"]["code"]
    grade = client.get(f"/api/v1/grades/parcel/{parcel}", headers=official.headers).get_json()
    assert grade["verdict"] in ("qualified", "not_qualified", "indeterminate"), grade
