"""The unprovisioned field app opened offline says what to do (issue 16), never an empty page.

The shell is cached by the service worker on the first visit; a phone that then goes offline before
anyone provisioned it must still show the set-up screen, say it is offline, and tell the sampler
what to do: connect, then scan the device QR code (or paste its link)."""

from __future__ import annotations

from tests.browser.test_field_app import expect_attr, wait_until


def test_unprovisioned_app_offline_explains_what_to_do(field, context, screenshots):
    page = context.new_page()
    page.goto(f"{field.base_url}/field/")
    expect_attr(page, "#setup", "data-shown", "true")
    wait_until(page, "() => navigator.serviceWorker.controller !== null")  # the shell is cached
    context.set_offline(True)
    for lang in ("zh", "en"):
        page.reload()
        expect_attr(page, "#setup", "data-shown", "true")
        if lang == "en":
            page.click("#lang")
            wait_until(page, "() => document.querySelector('#setup-offline').textContent.includes('offline')")
        text = page.inner_text("body")
        help_text = page.inner_text("#setup-offline")
        assert page.is_visible("#setup-offline"), text
        if lang == "zh":
            assert "离线" in help_text and "二维码" in help_text, help_text
        else:
            assert "offline" in help_text.lower() and "QR code" in help_text, help_text
        assert page.is_visible("#setup-link") and page.is_visible("#setup-save")
        page.screenshot(path=str(screenshots / f"field-setup-offline-{lang}.png"))
    context.set_offline(False)
    page.reload()
    expect_attr(page, "#setup", "data-shown", "true")
    wait_until(page, "() => document.querySelector('#setup-offline').hidden === true")  # online: no note
