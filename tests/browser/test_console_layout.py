"""Every console page in Chromium at 390 × 844 (a phone) and 1366 × 900, in Chinese and English, with a
scene that fills every list: no horizontal scroll (``scrollWidth ≤ innerWidth``), no badge wrapped a
character a line, and no raw code in what the page shows (the same scan as the test-client test, on
``innerText``). Also the field app's four tab labels fit a 360 px phone in English.

With ``FIELDSVC_SCREENSHOTS=docs/screenshots`` the SQLite run remakes the README's console screenshots.
"""

from __future__ import annotations

import os

import pytest

from tests.api.test_console_words import official_pages, world  # noqa: F401  (the scene fixture)
from tests.words_scan import raw_codes

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
SHOTS = {"overview": "/console/county/{county}", "queues": "/console/queues",
         "parcel": "/console/parcel/{clean_parcel}", "certificates": "/console/certificates",
         "conflict": "/console/conflicts/{conflict_id}", "audit": "/console/audit/sample/{clean_sample_id}",
         "evidence": "/console/parcel/{evidence_parcel}", "flagged": "/console/queues#flagged_samples"}

MEASURE = """() => {
  const wrapped = [...document.querySelectorAll('.badge')].filter(b => b.getBoundingClientRect().height >
      1.8 * parseFloat(getComputedStyle(b).fontSize) * 1.45).map(b => b.textContent);
  const wide = [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right >
      window.innerWidth + 1 && !e.closest('table')).slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' +
      (e.textContent || '').slice(0, 40));
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, wrapped, wide,
          text: document.querySelector('main').innerText};
}"""


def _login(context, base: str, username: str, password: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    page.close()


def test_every_console_page_fits_a_phone_and_shows_words(app, server, browser, world, database,  # noqa: F811
                                                          make_account, screenshots):
    account = make_account("official")
    shots = database["engine"] == "sqlite" and bool(os.environ.get("FIELDSVC_SCREENSHOTS"))
    paths = [p for p in official_pages(app, world) if not p.endswith("no-such-page")]
    problems: list[str] = []
    for lang in ("zh", "en"):
        for viewport in (PHONE, LAPTOP):
            context = browser.new_context(viewport=viewport, locale="zh-CN" if lang == "zh" else "en-US",
                                          timezone_id="Asia/Shanghai")
            context.set_default_timeout(20_000)
            _login(context, server, account.username, account.password)
            page = context.new_page()
            page.goto(f"{server}/console/queues?lang={lang}")
            for path in paths if viewport is PHONE else list(SHOTS.values()):
                path = path.format(**vars(world.scene), **world.extra)
                page.goto(f"{server}{path}")
                page.wait_for_load_state("load")
                got = page.evaluate(MEASURE)
                if viewport is PHONE and got["scroll"] > got["inner"]:
                    problems.append(f"{path} [{lang}] is {got['scroll']} px wide at {got['inner']} px: {got['wide']}")
                if got["wrapped"]:
                    problems.append(f"{path} [{lang}] wraps badges: {got['wrapped'][:5]}")
                problems += [f"{path} [{lang}] {hit}" for hit in raw_codes(got["text"], lang, world.allowed)]
            if shots:
                size = "phone" if viewport is PHONE else "laptop"
                for name, path in SHOTS.items():
                    page.goto(f"{server}{path.format(**vars(world.scene), **world.extra)}")
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(screenshots / f"console-words-{name}-{size}-{lang}.png"),
                                    full_page=viewport is PHONE or name == "evidence")
            context.close()
    assert not problems, "\n".join(problems)


def test_field_app_tabs_fit_in_english(browser, field):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    page = context.new_page()
    page.goto(f"{field.base_url}/field/")
    page.wait_for_load_state("load")
    fits = page.evaluate("""() => { const nav = document.querySelector('#tabs'); nav.hidden = false;
        return [...nav.querySelectorAll('button')].map(b => [b.textContent, b.scrollWidth <= b.clientWidth]); }""")
    context.close()
    assert len(fits) == 4 and all(ok for _, ok in fits), fits
    assert [label for label, _ in fits][3] in ("Device", "设备")
