"""`rejse processor` (the event processor without the Temporal worker) and `rejse worker
--no-processor` (the worker without it): the parts the compose file scales apart."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from rejse.roles import Role
from rejse.up import Parts, serve
from tests.conftest import auth


def unprocessed(engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM event WHERE processed_at IS NULL")
            ).scalar_one()
        )


async def run_for(settings, parts: Parts, until, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, parts, stop=stop))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until() and not task.done():  # noqa: ASYNC110 - polls the database
        await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0


async def test_the_processor_part_processes_and_the_bare_worker_does_not(
    settings, engine, client, keys, dev_env
):
    settings = settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    for n in range(3):
        r = await client.post(
            "/v1/track",
            json={"userId": f"p-{n}", "event": "Viewed", "messageId": f"part-{n}"},
            headers=auth(keys[Role.ingest]),
        )
        assert r.status_code == 200
    await run_for(
        settings, Parts(worker=True, worker_services=False), lambda: unprocessed(engine) == 0, 3
    )
    assert unprocessed(engine) == 3  # the worker alone leaves events to the processors
    await run_for(settings, Parts(processor=True), lambda: unprocessed(engine) == 0, 30)
    assert unprocessed(engine) == 0
