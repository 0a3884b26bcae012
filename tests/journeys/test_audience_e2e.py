"""End to end on the Temporal dev server: a tracked order (`/v1/track`) makes the profile a
member of "buyers" in the event processor's transaction, the derived `Audience Entered` event
is processed next, and the `audience_entered` journey's run has started within one second of
the request."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import Session
from temporalio.service import RPCError

from rejse import wiring
from rejse.audiences.definition import AudienceDefinition
from rejse.db import utcnow
from rejse.roles import Role
from rejse.temporal import TemporalConnector
from tests.conftest import auth, role_keys
from tests.journeys.conftest import publish, runs
from tests.journeys.test_e2e_devserver import poll
from tests.journeys.worker_proc import make_worker

pytestmark = pytest.mark.e2e


async def start_time(handle) -> dt.datetime | None:
    """When Temporal started the run (its row is written just before the start call)."""
    for _ in range(100):
        try:
            return (await handle.describe()).start_time
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError("the run never started")


async def test_a_tracked_order_starts_the_audience_journey_within_a_second(dev_env, runtime):
    from rejse.audiences.service import create_audience

    runtime.settings.task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    runtime.settings.message_quiet_hours = {}
    runtime.temporal = TemporalConnector(runtime.settings, dev_env.client)
    with Session(runtime.engine) as s:
        create_audience(
            s,
            AudienceDefinition(
                key="buyers",
                name="Buyers",
                condition={"event": "Order Completed", "within": "P90D"},
            ),
            now=utcnow(),
        )
        s.commit()
    publish(
        runtime,
        {
            "key": "thank-buyers",
            "name": "Thank buyers",
            "trigger": {"type": "audience_entered", "audience": "buyers"},
            "start": "wait",
            "steps": {"wait": {"type": "wait", "for": "P1D"}},
        },
    )
    ingest = auth(role_keys(runtime)[Role.ingest])
    stop = asyncio.Event()
    processor = asyncio.create_task(wiring.event_processor(runtime).run(stop))
    transport = httpx.ASGITransport(app=wiring.api_app(runtime))
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            async with (
                make_worker(dev_env.client, runtime, pool),
                httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            ):
                await asyncio.sleep(0.5)  # the processor's first (empty) polls
                sent = dt.datetime.now(dt.UTC)
                r = await client.post(
                    "/v1/track",
                    headers=ingest,
                    json={
                        "userId": "u-e2e",
                        "event": "Order Completed",
                        "messageId": "ord-e2e",
                        "properties": {"order_id": "o-1", "revenue": 250.0, "currency": "DKK"},
                    },
                )
                assert r.status_code == 200, r.text
                await poll(lambda: len(runs(runtime)) == 1, seconds=10)
                [run] = runs(runtime)
                handle = dev_env.client.get_workflow_handle(run.workflow_id)
                started = await start_time(handle)
                assert started is not None
                assert started - sent < dt.timedelta(seconds=1), started - sent
                await poll(lambda: runs(runtime)[0].current_step == "wait", seconds=10)
                await handle.terminate()
    finally:
        stop.set()
        await processor
