"""The whole path on the time-skipping server: POST /v1/identify + /v1/track (200) -> the event
processor (identity, then every registered dispatcher) -> start of the journey ->
emails in the development outbox; a later `Order Completed` for the same checkout converts."""

from __future__ import annotations

import datetime as dt

import pytest
from temporalio.service import RPCError

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


async def test_temporal_unreachable_defers_the_batch_and_starts_the_run_once_back(
    jruntime, worker, client, keys, time_env
):
    """With Temporal unreachable (nothing listens at its address) the checkout is applied and
    kept: no attempt spent, no dead letter, no run; once Temporal answers, its run starts once."""
    from sqlmodel import Session, select

    from rejse.db import utcnow
    from rejse.models.events import DeadLetter, OutboxEntry
    from rejse.temporal import TemporalConnector
    from tests.foundation.procs import free_port

    publish(jruntime, abandoned_cart())
    r = await client.post(
        "/v1/track",
        headers=auth(keys[Role.ingest]),
        json={
            "userId": "u-7",
            "event": "Checkout Started",
            "messageId": "co-7",
            "properties": {"checkout_id": "chk-7", "abandoned_checkout_url": "https://s/r/7"},
        },
    )
    assert r.status_code == 200, r.text
    reachable = jruntime.temporal
    away = jruntime.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    jruntime.temporal = TemporalConnector(away)
    processor = wiring.event_processor(jruntime)
    assert await processor.run_once() == 1
    with Session(jruntime.engine) as s:
        [kept] = s.exec(select(OutboxEntry)).all()
        assert (kept.state, kept.attempts) == ("applied", 0)
        assert s.exec(select(DeadLetter)).all() == []
    [planned] = runs(jruntime)  # the run is recorded before its start, and not started yet
    with pytest.raises(RPCError):
        await time_env.client.get_workflow_handle(planned.workflow_id).describe()

    jruntime.temporal = reachable
    with Session(jruntime.engine) as s:  # due now, not after the outage delay
        kept = s.exec(select(OutboxEntry)).one()
        kept.available_at = utcnow()
        s.add(kept)
        s.commit()
    await processor.drain()
    assert [r.workflow_id for r in runs(jruntime)] == [planned.workflow_id]
    await time_env.client.get_workflow_handle(planned.workflow_id).describe()  # started
    assert processor.outage_delay == 0
