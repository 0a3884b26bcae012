"""Acceptance: a one-click unsubscribe while the abandoned-cart journey waits stops its day-3
email. The real JourneyWorkflow (journeys domain) on the time-skipping server, messaging's real
activity, a real SMTP server, the unsubscribe POSTed to the API."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from rejse.temporal import TemporalConnector
from tests.journeys.conftest import (  # noqa: F401
    abandoned_cart,
    dispatcher,
    event,
    messages,
    publish,
    result,
    runs,
    worker,
)
from tests.messaging.conftest import CHECKOUT, mette

DAY = dt.timedelta(days=1)


@pytest.fixture
def jruntime(runtime, time_env, smtp):
    runtime.temporal = TemporalConnector(runtime.settings, time_env.client)
    runtime.settings.message_quiet_hours = {}
    runtime.settings.smtp_url = smtp[1]
    return runtime


async def test_unsubscribe_during_wait_stops_day3_email(jruntime, worker, dispatcher, time_env, smtp, client):  # noqa: F811
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
    r = await client.post(urlsplit(first["List-Unsubscribe"].strip("<>")).path,
                          content="List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200

    assert await result(time_env, run.workflow_id) == "completed"
    assert len(box.messages) == 1                                   # no day-3 email
    log = {m.step_id: m for m in messages(jruntime, pid)}
    assert log["reminder_1"].status == "sent"
    assert log["reminder_2"].status == "skipped" and log["reminder_2"].reason.startswith("no_consent")
