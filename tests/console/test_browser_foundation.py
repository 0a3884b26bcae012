"""The foundation in a real browser (Chromium, Debian's): sign in with the keyboard, the
cookie's flags as the browser keeps them, the layout's landmarks, and sign-out."""

from __future__ import annotations

import pytest

from rejse.roles import Role
from tests.console.conftest import browser_sign_in, screenshot

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def test_sign_in_with_the_keyboard_and_out_again(page, keys):
    await page.goto("/console")
    assert page.url.endswith("/console/sign-in")
    await screenshot(page, "sign-in")
    # keyboard only: the skip link first, then the form's field by its label
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip-link"
    await page.get_by_label("API-nøgle").focus()
    await page.keyboard.type(keys[Role.marketer])
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/overview")
    cookies = await page.context.cookies()
    cookie = next(c for c in cookies if c["name"] == "rejse_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    for landmark in ("banner", "navigation", "main"):
        assert await page.get_by_role(landmark).count() >= 1, landmark
    await page.get_by_role("button", name="Log ud").click()
    await page.wait_for_url("**/console/sign-in?out=1")
    assert await page.get_by_role("status").inner_text() == "Du er logget ud."
    await page.goto("/console/overview")
    assert "/console/sign-in" in page.url


async def test_an_ingest_key_is_told_why_in_the_browser(page, keys):
    await browser_sign_in(page, keys[Role.ingest])
    error = page.locator("#f-api_key-error")
    assert "indsamlingsnøgle" in await error.inner_text()
    assert await page.get_by_label("API-nøgle").get_attribute("aria-invalid") == "true"
    await screenshot(page, "sign-in-ingest-refused")
    assert not [c for c in await page.context.cookies() if c["name"] == "rejse_console"]
