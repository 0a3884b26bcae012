"""A worker process for the kill test: `python -m tests.messaging.worker_proc` (REJSE_* env)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.messaging import MessagingActivities
from rejse.runtime import Runtime
from rejse.settings import Settings
from rejse.temporal import DATA_CONVERTER
from tests.messaging.workflows import SendPlanWorkflow


async def main() -> None:
    settings = Settings()
    client = await Client.connect(
        settings.effective_temporal_address, data_converter=DATA_CONVERTER
    )
    runtime = Runtime.create(settings, temporal_client=client)
    with ThreadPoolExecutor(max_workers=4) as pool:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[SendPlanWorkflow],
            activities=[MessagingActivities(runtime).send],
            activity_executor=pool,
        ):
            print("worker ready", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
