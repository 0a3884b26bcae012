"""Console fixtures: sign-in over HTTP (httpx against the ASGI app), and a real browser
(Playwright driving Debian's /usr/bin/chromium, never a downloaded one) against the app
served by uvicorn on a free port. Screenshots go to test-artefacts/console/."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.servers import serve

CHROMIUM = os.environ.get("REJSE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "console"

# The journey page's live counts refresh every 5 s, and a loaded machine is slow: assertions
# wait up to 30 s (Playwright's default is 5 s).
expect.set_options(timeout=30_000)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a console page."""
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign `client` in with `key`; returns the session's CSRF token."""
    page = await client.get("/console/sign-in")
    r = await client.post(
        "/console/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": key}
    )
    assert r.status_code == 303, r.text
    home = await client.get("/console/sign-in")  # any page: its forms carry the session token
    return csrf_of(home.text)


@pytest.fixture
async def console(app) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console with its own cookie jar (redirects not followed)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session: Debian's, never a downloaded build. Playwright's
    async API, on the session's event loop (its sync API would hold a loop of its own)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session, before any test
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        await browser.close()


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The app (API and console) under uvicorn on a free loopback port."""
    with serve(app) as url:
        yield url


@pytest.fixture
async def page(browser: Browser, live_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=live_url, locale="da-DK")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    yield page
    await context.close()


async def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot as a test artefact: test-artefacts/console/<name>.png."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def browser_sign_in(page: Page, key: str) -> None:
    await page.goto("/console/sign-in")
    await page.get_by_label("API-nøgle").fill(key)
    await page.get_by_role("button", name="Log ind").click()
    await page.wait_for_load_state()
