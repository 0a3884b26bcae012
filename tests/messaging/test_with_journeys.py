"""Messaging inside real journeys (JourneyWorkflow on the time-skipping server, the real send
activity, a real SMTP server, the API for tracking links):
- acceptance: a one-click unsubscribe while the abandoned-cart journey waits stops its day-3 email;
- a tracked click becomes an `Email Clicked` event that a `wait_for_event` step acts on."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from rejse import wiring
from rejse.temporal import TemporalConnector
from tests.journeys.conftest import (
    abandoned_cart,
    event,
    messages,
    publish,
    result,
    runs,
)
from tests.messaging.conftest import CHECKOUT, mette

DAY = dt.timedelta(days=1)


@pytest.fixture
def jruntime(runtime, time_env, smtp):
    runtime.temporal = TemporalConnector(runtime.settings, time_env.client)
    runtime.settings.message_quiet_hours = {}
    runtime.settings.smtp_url = smtp[1]
    return runtime


async def test_unsubscribe_during_wait_stops_day3_email(
    jruntime, worker, dispatcher, time_env, smtp, client
):
    box, _ = smtp
    publish(jruntime, abandoned_cart())
    pid = mette(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, **CHECKOUT["properties"])])
    [run] = runs(jruntime, profile_id=pid)

    await time_env.sleep(DAY + dt.timedelta(hours=2))
    assert len(box.messages) == 1
    first = box.messages[0]
    assert first["Subject"] == "Mette, din kurv venter stadig på dig"
    r = await client.post(
        urlsplit(first["List-Unsubscribe"].strip("<>")).path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200

    assert await result(time_env, run.workflow_id) == "completed"
    assert len(box.messages) == 1  # no day-3 email
    log = {m.step_id: m for m in messages(jruntime, pid)}
    assert log["reminder_1"].status == "sent"
    assert log["reminder_2"].status == "skipped"
    assert log["reminder_2"].reason.startswith("no_consent")


CLICK_DEMO = {
    "key": "click-demo",
    "name": "Follow up a click",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "entry_key": "properties.checkout_id",
    "start": "remind",
    "steps": {
        "remind": {
            "type": "send",
            "channel": "email",
            "template": "abandoned_cart/reminder",
            "next": "wait_click",
        },
        "wait_click": {
            "type": "wait_for_event",
            "event": "Email Clicked",
            "match": {"properties.journey": "click-demo"},
            "timeout": "P2D",
            "on_event": "thanks",
        },
        "thanks": {"type": "send", "channel": "email", "template": "abandoned_cart/free_shipping"},
    },
}


async def test_a_click_is_an_event_a_journey_waits_for(
    jruntime, worker, dispatcher, time_env, smtp, client
):
    import asyncio
    import re

    box, _ = smtp
    publish(jruntime, CLICK_DEMO)
    pid = mette(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, **CHECKOUT["properties"])])
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    for _ in range(200):  # click once the run listens (wait_for_event counts from step entry)
        if box.messages and (await handle.query("state"))["step"] == "wait_click":
            break
        await asyncio.sleep(0.05)
    html = box.messages[0].get_body(preferencelist=("html",)).get_content()
    link = re.search(r'href="http://testserver(/t/c/[^"]+)"', html).group(1)
    assert (await client.get(link)).status_code == 302

    await wiring.event_processor(jruntime).drain()  # Email Clicked -> routed to the waiting run
    assert await result(time_env, run.workflow_id) == "completed"
    assert [m["Subject"] for m in box.messages] == [
        "Mette, din kurv venter stadig på dig",
        "Fri fragt på din kurv – fragten er på os",
    ]
    log = {m.step_id: m for m in messages(jruntime, pid)}
    assert log["remind"].status == "clicked"
    assert log["thanks"].status == "sent"
