"""The worker process: Temporal worker plus the background services (event processor, ...)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from rejse import wiring
from rejse.logging import get_logger
from rejse.runtime import Runtime

log = get_logger("rejse.worker")


def build_worker(client: Client, runtime: Runtime, *, task_queue: str | None = None,
                 executor: ThreadPoolExecutor | None = None) -> Worker | None:
    """A worker with every workflow and activity of rejse. Activities are sync functions
    (database, SMTP, HTTP) and run on `executor`. None while nothing is registered."""
    workflows, activities = wiring.workflows(), wiring.activities(runtime)
    if not workflows and not activities:
        return None
    return Worker(
        client,
        task_queue=task_queue or runtime.settings.task_queue,
        workflows=workflows,
        activities=activities,
        activity_executor=executor or ThreadPoolExecutor(max_workers=16),
        max_concurrent_activities=16,
    )


async def run_worker(runtime: Runtime, stop: asyncio.Event, *, with_services: bool = True) -> None:
    client = await runtime.temporal.client()
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, runtime, executor=executor)
        services = wiring.background_services(runtime) if with_services else []
        tasks = [asyncio.create_task(service(stop)) for service in services]
        log.info("worker_started", task_queue=runtime.settings.task_queue, services=len(tasks))
        if worker is None:
            await stop.wait()
        else:
            async with worker:
                await stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("worker_stopped")
