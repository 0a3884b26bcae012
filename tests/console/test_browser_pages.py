"""The console's acceptance in a real browser (Debian's Chromium through Playwright), against
the app under uvicorn: publish the abandoned-cart journey, send events through /v1/track and
watch the step counts change on the journey page (the event processor and a worker on the
Temporal dev server); build an audience and see the preview size as you type; an analyst
finds no button that changes anything; a forged post without the CSRF token is refused; a
revoked key's session ends. Screenshots of every page go to test-artefacts/console/."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.async_api import expect
from sqlmodel import Session

from rejse import wiring
from rejse.journeys import service
from rejse.roles import Role, key_id
from rejse.temporal import TemporalConnector
from tests.audiences.api_helpers import profile
from tests.conftest import auth
from tests.console.conftest import browser_sign_in, screenshot
from tests.journeys.conftest import abandoned_cart, publish
from tests.journeys.worker_proc import make_worker
from tests.servers import serve

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KEY = "abandoned-cart"


def _track(url: str, key: str, event: str, checkout: str) -> None:
    r = httpx.post(
        f"{url}/v1/track",
        headers=auth(key),
        json={
            "userId": "cust-console-1",
            "event": event,
            "messageId": f"{event}-{checkout}",
            "properties": {"checkout_id": checkout, "currency": "DKK", "total": 499.0},
            "context": {"traits": {"email": "anna@example.com"}},
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text


async def test_publish_track_and_watch_the_step_counts_change(dev_env, runtime, keys, browser):
    runtime.settings.task_queue = f"console-{uuid.uuid4().hex[:8]}"
    runtime.settings.message_quiet_hours = {}
    runtime.temporal = TemporalConnector(runtime.settings, dev_env.client)
    with Session(runtime.engine) as s:
        service.create_journey(s, definition=abandoned_cart())
        s.commit()
    stop = asyncio.Event()
    processor = asyncio.create_task(wiring.event_processor(runtime).run(stop))
    try:
        with (
            ThreadPoolExecutor(max_workers=4) as pool,
            serve(wiring.api_app(runtime)) as url,
        ):
            async with make_worker(dev_env.client, runtime, pool):
                context = await browser.new_context(base_url=url, locale="da-DK")
                page = await context.new_page()
                page.set_default_timeout(30_000)
                await browser_sign_in(page, keys[Role.marketer])
                await screenshot(page, "overview")
                await page.get_by_role("link", name="Rejser").click()
                await screenshot(page, "journeys")
                await page.get_by_role("link", name="Abandoned cart").first.click()
                assert await page.locator("[data-status]").get_attribute("data-status") == "draft"
                await page.get_by_role("button", name="Udgiv version 1").first.click()
                await expect(page.locator("[data-status]")).to_have_attribute(
                    "data-status", "published"
                )
                waiting = page.locator('[data-step="wait_1d"] [data-count="waiting"]')
                await expect(waiting).to_have_text("0")
                await asyncio.to_thread(_track, url, keys[Role.ingest], "Checkout Started", "c-1")
                # htmx refreshes the diagram every 5 s: no reload
                await expect(waiting).to_have_text("1")
                await asyncio.to_thread(_track, url, keys[Role.ingest], "Checkout Started", "c-2")
                await expect(waiting).to_have_text("2")
                # the flow picture: a box per step, drawn, carrying the same live counts
                flow = page.locator("svg.flow")
                await expect(flow.locator("[data-node]")).to_have_count(4)
                node = flow.locator('[data-node="wait_1d"] .node-counts')
                await expect(node).to_have_text("2 venter · 0 sendt · 0 konv.")
                box = await flow.locator('[data-node="reminder_2"] rect').bounding_box()
                assert box is not None
                assert box["width"] > 100
                tile = page.locator(".kpi", has_text="Venter nu").locator(".value")
                await expect(tile).to_have_text("2")  # the journey's tiles refresh with it
                await screenshot(page, "journey")
                await asyncio.to_thread(_track, url, keys[Role.ingest], "Order Completed", "c-1")
                await expect(waiting).to_have_text("1")
                await page.reload()
                await expect(page.get_by_role("link", name="prf_").first).to_be_visible()
                await context.close()
    finally:
        stop.set()
        await processor
        client = dev_env.client
        with Session(runtime.engine) as s:
            wids = service.workflow_ids_of(s, key=KEY, statuses=("running",))
        for wid in wids:
            await client.get_workflow_handle(wid).terminate()


async def test_build_an_audience_and_see_the_preview_size(page, keys, engine):
    for name, country in (("Ida", "DK"), ("Bo", "DK"), ("Sven", "SE")):
        profile(engine, country=country, first_name=name)
    await browser_sign_in(page, keys[Role.marketer])
    await page.get_by_role("link", name="Målgrupper").click()
    await page.get_by_role("link", name="Ny målgruppe").click()
    await page.get_by_label("Nøgle").fill("danes")
    await page.get_by_label("Navn", exact=True).fill("Danes")
    condition = page.get_by_label("Betingelse (JSON)")
    await condition.fill('{"trait": "country", "op": "eq", "value": "SE"}')
    size = page.locator("[data-preview-size]")
    await expect(size).to_have_attribute("data-preview-size", "1")
    await condition.fill("")
    await condition.press_sequentially('{"trait": "country", "op": "eq", "value": "DK"}')
    await expect(size).to_have_attribute("data-preview-size", "2")
    await page.get_by_label("Fakta: hvem er de?").fill("Bor i Danmark")
    await page.get_by_label("Prioritet (1 = højest)").select_option("1")
    await screenshot(page, "audience-builder")
    await page.get_by_role("button", name="Gem").click()
    await expect(page.locator(".kpi [data-size]")).to_have_attribute("data-size", "2")
    await screenshot(page, "audience")
    await page.get_by_role("link", name="← Målgrupper").click()
    await screenshot(page, "audiences")
    # a broken condition: its error beside the field, and nothing saved
    await page.goto("/console/audiences/new")
    await page.get_by_label("Nøgle").fill("broken")
    await page.get_by_label("Navn", exact=True).fill("Broken")
    await page.get_by_label("Betingelse (JSON)").fill('{"audience": "nope"}')
    await page.get_by_role("button", name="Gem").click()
    await expect(page.locator("#f-condition-error")).to_be_visible()
    await screenshot(page, "audience-builder-error")


async def test_the_journey_editor_shows_errors_at_their_steps(page, keys, runtime):
    publish(runtime, abandoned_cart())
    await browser_sign_in(page, keys[Role.marketer])
    await page.goto(f"/console/journeys/{KEY}/edit")
    bad = abandoned_cart()
    bad["steps"]["wait_2d"]["for"] = "two days"
    await page.get_by_label("Definition (JSON)").fill(json.dumps(bad, indent=2))
    await page.get_by_role("button", name="Gem").click()
    await expect(page.locator('[data-field="steps.wait_2d.for"]')).to_be_visible()
    await expect(page.locator("#f-definition-error")).to_be_visible()
    await screenshot(page, "journey-editor-errors")


async def test_an_analyst_finds_no_button_that_changes_anything(page, keys, runtime, engine):
    publish(runtime, abandoned_cart())
    profile(engine, country="DK", first_name="Ida")
    with Session(engine) as s:
        from rejse.audiences.definition import AudienceDefinition
        from rejse.audiences.service import create_audience
        from rejse.db import utcnow

        create_audience(
            s,
            AudienceDefinition(
                key="dk", name="Danes", condition={"trait": "country", "op": "eq", "value": "DK"}
            ),
            now=utcnow(),
        )
        s.commit()
    await browser_sign_in(page, keys[Role.analyst])
    pages = [
        "/console/overview",
        "/console/journeys",
        f"/console/journeys/{KEY}",
        "/console/audiences",
        "/console/audiences/dk",
    ]
    for url in pages:
        await page.goto(url)
        assert await page.locator("main form[method=post]").count() == 0, url
        labels = await page.locator("main button, main a.button").all_inner_texts()
        # what is left reads (GET forms): a filter and a download
        assert set(labels) <= {"Filtrér", "Eksportér som CSV"}, (url, labels)
        assert await page.locator("main a[href$='/edit'], main a[href$='/new']").count() == 0
    await screenshot(page, "audience-analyst")
    # what the page does not offer, a post cannot do: refused, and the journey unchanged
    answer = await page.evaluate(
        """async (csrf) => (await fetch("/console/journeys/abandoned-cart/pause",
             {method: "POST", body: new URLSearchParams({csrf_token: csrf})})).status""",
        await page.locator("input[name=csrf_token]").first.get_attribute("value"),
    )
    assert answer == 403
    with Session(runtime.engine) as s:
        assert service.get_journey(s, key=KEY).status == "published"


async def test_a_forged_post_without_the_csrf_token_is_refused(page, keys, runtime):
    publish(runtime, abandoned_cart())
    await browser_sign_in(page, keys[Role.marketer])
    await page.goto(f"/console/journeys/{KEY}")
    answer = await page.evaluate(
        """async () => {
             const r = await fetch("/console/journeys/abandoned-cart/archive", {method: "POST"});
             return [r.status, await r.text()];
           }"""
    )
    assert answer[0] == 403
    assert "sikkerhedstoken" in answer[1]
    with Session(runtime.engine) as s:
        assert service.get_journey(s, key=KEY).status == "published"


async def test_a_revoked_keys_session_ends(page, keys, live_url):
    await browser_sign_in(page, keys[Role.marketer])
    await page.goto("/console/journeys")
    assert page.url.endswith("/console/journeys")
    r = await asyncio.to_thread(
        httpx.delete,
        f"{live_url}/api/keys/{key_id(keys[Role.marketer])}",
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code in (200, 204), r.text
    await page.reload()
    assert "/console/sign-in" in page.url
    await expect(page.get_by_role("status")).to_contain_text("Log ind igen")
