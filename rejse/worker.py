"""The worker process: a Temporal worker plus the background services (event processor, ...),
all handed in by the composition root."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from rejse.logging import get_logger
from rejse.runtime import Runtime

log = get_logger("rejse.worker")

_FEWER_THREADS = "Worker max_concurrent_activities is .* but activity_executor's max_workers"


def build_worker(
    client: Client,
    *,
    task_queue: str,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    executor: ThreadPoolExecutor | None = None,
    slots: int = 16,
    **tuning: int,
) -> Worker | None:
    """A Temporal worker for `workflows` and `activities`, at most `slots` activities at once.
    Sync activities (database, CRM, HTTP) run on `executor`'s threads (without one, as many as
    `slots`); async ones (the send) on the worker's event loop, holding no thread. None while
    nothing is registered. `tuning`: Worker settings (max_cached_workflows, ...) over the
    defaults, for benchmarks."""
    if not workflows and not activities:
        return None
    with warnings.catch_warnings():
        # fewer threads than slots on purpose: the send activity is async and holds no thread
        # (the SDK warns about any executor smaller than the slots)
        warnings.filterwarnings("ignore", message=_FEWER_THREADS, category=UserWarning)
        return Worker(
            client,
            task_queue=task_queue,
            workflows=workflows,
            activities=activities,
            activity_executor=executor or ThreadPoolExecutor(max_workers=slots),
            max_concurrent_activities=slots,
            **tuning,  # type: ignore[arg-type]
        )


async def run_worker(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    services: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]],
) -> None:
    """Run the Temporal worker and the background `services` until `stop` is set. A worker or
    a service that ends on its own before that is an error: the others are stopped and it is
    raised, so the process exits and its supervisor restarts it."""
    client = await runtime.temporal.client()
    slots = runtime.settings.worker_activity_slots
    threads = min(runtime.settings.worker_activity_threads, slots)
    with ThreadPoolExecutor(max_workers=threads) as executor:
        worker = build_worker(
            client,
            task_queue=runtime.settings.task_queue,
            workflows=workflows,
            activities=activities,
            executor=executor,
            slots=slots,
        )
        parts: set[asyncio.Task[None]] = {
            asyncio.create_task(service(stop), name=getattr(service, "__qualname__", "service"))
            for service in services
        }
        worker_task = asyncio.create_task(worker.run(), name="temporal-worker") if worker else None
        if worker_task is not None:
            parts.add(worker_task)
        log.info(
            "worker_started",
            task_queue=runtime.settings.task_queue,
            services=len(services),
            temporal_worker=worker is not None,
        )
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({stopper, *parts}, return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if t is not stopper]
        finally:
            stopper.cancel()
            if worker is not None and worker_task is not None and not worker_task.done():
                await worker.shutdown()
            if not stop.is_set():
                for task in parts:
                    task.cancel()
            results = await asyncio.gather(*parts, return_exceptions=True)
        log.info("worker_stopped")
        for failure in failed:
            exc = failure.exception() if not failure.cancelled() else None
            raise RuntimeError(f"{failure.get_name()} stopped before shutdown") from exc
        # `results` is `gather` over this same unchanged set, in the same order.
        for task, result in zip(parts, results, strict=True):
            if isinstance(result, Exception):
                log.error("service_failed", service=task.get_name(), error=repr(result))
