"""Consent precedence end to end: a customer unsubscribes with one click, then checks out at
Shopify with the accepts-marketing box ticked (a signed `checkouts/create` webhook, through the
event processor and the journey dispatcher). The abandoned-cart journey (JourneyWorkflow on
the time-skipping server, the real send activity, a real SMTP server) sends nothing; a later
explicit opt-in in the preference centre restores sending for the next checkout."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session

from rejse import wiring
from rejse.contracts import SendRequest
from rejse.events.webhooks import sign_shopify
from rejse.messaging.sender import send_message
from rejse.profiles.service import load_snapshot
from rejse.roles import Role
from rejse.temporal import TemporalConnector
from tests.conftest import auth
from tests.events.helpers import EXAMPLES
from tests.journeys.conftest import abandoned_cart, messages, publish, result, runs
from tests.messaging.conftest import CHECKOUT, mette

SECRET = "shop-secret-0123456789abcdef"


@pytest.fixture
def jruntime(runtime, time_env, smtp):
    runtime.temporal = TemporalConnector(runtime.settings, time_env.client)
    runtime.settings.message_quiet_hours = {}
    runtime.settings.message_frequency_cap = 0
    runtime.settings.smtp_url = smtp[1]
    return runtime


def checkout(token: str, at: dt.datetime) -> dict[str, Any]:
    """The Shopify example checkout (box ticked), as a new cart created at `at`."""
    payload = json.loads((EXAMPLES / "shopify_checkouts_create.json").read_text())
    assert payload["buyer_accepts_marketing"] is True
    stamp = at.isoformat()
    payload.update(token=token, cart_token=f"cart-{token}", created_at=stamp, updated_at=stamp)
    return payload


async def deliver(client, topic: str, payload: dict[str, Any], webhook_id: str) -> None:
    body = json.dumps(payload).encode()
    r = await client.post(
        "/webhooks/shopify",
        content=body,
        headers={
            "X-Shopify-Hmac-Sha256": sign_shopify(body, SECRET),
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "butik.myshopify.com",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 202, r.text


def email_consent(runtime, pid: str) -> str | None:
    with Session(runtime.engine) as s:
        return load_snapshot(s, profile_id=pid).consents.get("email")


def journey_log(runtime, pid: str, workflow_id: str) -> dict[str, tuple[str, str | None]]:
    """What one journey run's send steps did (their idempotency keys start with its id)."""
    return {
        m.step_id: (m.status, m.reason)
        for m in messages(runtime, pid)
        if m.idempotency_key.startswith(f"{workflow_id}:")
    }


async def test_shopify_box_does_not_undo_an_unsubscribe_until_an_explicit_opt_in(
    jruntime, worker, time_env, smtp, client, keys
):
    box, _ = smtp
    r = await client.post(
        "/api/webhook-sources",
        json={"kind": "shopify", "name": "butik.myshopify.com", "secret": SECRET},
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code == 201, r.text
    publish(jruntime, abandoned_cart())
    pid = mette(jruntime)  # mette.hansen@example.dk, as in the Shopify example

    # a newsletter earlier; she unsubscribes with one click (as Gmail's button does)
    first = send_message(
        jruntime.settings,
        jruntime.engine,
        SendRequest(
            idempotency_key=f"newsletter:{pid}",
            profile_id=pid,
            channel="email",
            template="abandoned_cart/reminder",
            trigger=CHECKOUT,
        ),
        now=await time_env.get_current_time(),
    )
    assert first.status == "sent"
    r = await client.post(
        urlsplit(box.messages[0]["List-Unsubscribe"].strip("<>")).path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert email_consent(jruntime, pid) == "revoked"

    # then she checks out at Shopify with the accepts-marketing box ticked
    now = dt.datetime.now(dt.UTC)
    await deliver(client, "checkouts/create", checkout("cart-one", now), "wh-one")
    await wiring.event_processor(jruntime).drain()
    assert email_consent(jruntime, pid) == "revoked"  # the flag did not override her

    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"
    assert journey_log(jruntime, pid, run.workflow_id) == {
        "reminder_1": ("skipped", "no_consent (email revoked)"),
        "reminder_2": ("skipped", "no_consent (email revoked)"),
    }
    assert len(box.messages) == 1  # the journey sent nothing

    # later she opts in again, explicitly, in the preference centre of that first email
    text = box.messages[0].get_body(preferencelist=("plain",)).get_content()
    [prefs] = re.findall(r"http://testserver(/p/[A-Za-z0-9_.-]+)", text)
    r = await client.post(prefs, data={"email": "on", "sms": "on", "save": "1"})
    assert r.status_code == 200, r.text
    assert email_consent(jruntime, pid) == "granted"

    # the next checkout's reminders go out, addressed with the names the checkout brought
    later = dt.datetime.now(dt.UTC)
    await deliver(client, "checkouts/create", checkout("cart-two", later), "wh-two")
    await wiring.event_processor(jruntime).drain()
    [second] = [r for r in runs(jruntime, profile_id=pid) if r.workflow_id != run.workflow_id]
    assert await result(time_env, second.workflow_id) == "completed"
    assert journey_log(jruntime, pid, second.workflow_id) == {
        "reminder_1": ("sent", None),
        "reminder_2": ("sent", None),
    }
    assert [m["Subject"] for m in box.messages[1:]] == [
        "Mette, din kurv venter stadig på dig",
        "Fri fragt på din kurv – fragten er på os",
    ]


async def test_all_marketing_revoked_blocks_the_journey_on_every_channel(
    jruntime, worker, dispatcher, time_env, smtp, client, keys
):
    """An API opt-out of all marketing stops a journey's emails though email consent is
    granted; a receipt (transactional) still goes out."""
    from tests.journeys.conftest import event

    box, _ = smtp
    publish(jruntime, abandoned_cart())
    pid = mette(jruntime, consents={"email": "granted"})
    r = await client.put(
        f"/api/profiles/{pid}/consents/marketing",
        json={"status": "revoked", "source": "customer service call"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 200, r.text
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, **CHECKOUT["properties"])])
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"
    log = {m.step_id: (m.status, m.reason) for m in messages(jruntime, pid)}
    assert log == {
        "reminder_1": ("skipped", "no_consent (marketing revoked)"),
        "reminder_2": ("skipped", "no_consent (marketing revoked)"),
    }
    receipt = send_message(
        jruntime.settings,
        jruntime.engine,
        SendRequest(
            idempotency_key=f"receipt:{pid}",
            profile_id=pid,
            channel="email",
            template="abandoned_cart/reminder",
            trigger=CHECKOUT,
            transactional=True,
        ),
        now=t0,
    )
    assert receipt.status == "sent"
    assert len(box.messages) == 1
