"""A rejse worker process for the kill test: `python -m tests.journeys.worker_proc` (REJSE_* env).
Every workflow and activity of `rejse.wiring`, no background services; a short sticky-queue
timeout so that the restarted worker takes over quickly after a SIGKILL."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from temporalio.worker import Worker

from rejse import wiring
from rejse.runtime import Runtime
from rejse.settings import Settings
from rejse.temporal import connect


def make_worker(client, runtime: Runtime, pool: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=runtime.settings.task_queue,
        workflows=wiring.workflows(),
        activities=wiring.activities(runtime),
        activity_executor=pool,
        sticky_queue_schedule_to_start_timeout=dt.timedelta(seconds=1),
    )


async def main() -> None:
    settings = Settings()
    client = await connect(settings)
    runtime = Runtime.create(settings, temporal_client=client)
    with ThreadPoolExecutor(max_workers=8) as pool:
        async with make_worker(client, runtime, pool):
            print("worker ready", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
