"""The whole path on the time-skipping server: POST /v1/identify + /v1/track (200) -> the event
processor (identity, then every registered dispatcher) -> start of the journey ->
emails in the development outbox; a later `Order Completed` for the same checkout converts."""

from __future__ import annotations

import datetime as dt

from rejse import wiring
from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import abandoned_cart, messages, publish, result, runs


async def test_tracked_checkout_enters_and_order_converts(jruntime, worker, client, keys, time_env):
    publish(jruntime, abandoned_cart())
    ingest = auth(keys[Role.ingest])
    r = await client.post(
        "/v1/identify",
        headers=ingest,
        json={
            "userId": "u-42",
            "traits": {"email": "mette@example.dk", "first_name": "Mette"},
            "messageId": "id-1",
        },
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/track",
        headers=ingest,
        json={
            "userId": "u-42",
            "event": "Checkout Started",
            "messageId": "co-1",
            "properties": {
                "checkout_id": "chk-1",
                "abandoned_checkout_url": "https://shop.example/r/1",
            },
        },
    )
    assert r.status_code == 200, r.text
    processor = wiring.event_processor(jruntime)
    await processor.drain()

    [run] = runs(jruntime)
    assert run.journey_key == "abandoned-cart"
    assert "@" not in run.workflow_id
    await time_env.sleep(dt.timedelta(days=1, hours=1))
    assert [m.template for m in messages(jruntime, run.profile_id)] == ["abandoned_cart/reminder"]

    for mid in ("ord-1", "ord-1"):  # a duplicated delivery acts once
        r = await client.post(
            "/v1/track",
            headers=ingest,
            json={
                "userId": "u-42",
                "event": "Order Completed",
                "messageId": mid,
                "properties": {"checkout_id": "chk-1", "total": 499.0},
            },
        )
        assert r.status_code == 200
    await processor.drain()
    assert await result(time_env, run.workflow_id) == "converted"
    assert len(messages(jruntime, run.profile_id)) == 1
    [run] = runs(jruntime)
    assert run.converted
