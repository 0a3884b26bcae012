"""The worker runs `REJSE_WORKER_ACTIVITY_SLOTS` activities at once, the sync ones on at most
`REJSE_WORKER_ACTIVITY_THREADS` threads: the sends in flight (async, no thread each) are what
the send coalescer batches, so the slots bound a batch's size."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from rejse import worker as worker_module
from rejse.settings import Settings


class FakeWorker:
    made: list[dict[str, Any]] = []

    def __init__(self, client: object, **kwargs: Any) -> None:
        type(self).made.append(kwargs)
        self.stopped = asyncio.Event()

    async def run(self) -> None:  # until shut down, as Temporal's
        await self.stopped.wait()

    async def shutdown(self) -> None:
        self.stopped.set()


def test_slots_come_from_the_settings(monkeypatch):
    assert Settings().worker_activity_slots == 512
    assert Settings().worker_activity_threads == 128
    monkeypatch.setenv("REJSE_WORKER_ACTIVITY_SLOTS", "24")
    monkeypatch.setenv("REJSE_WORKER_ACTIVITY_THREADS", "8")
    assert Settings().worker_activity_slots == 24
    assert Settings().worker_activity_threads == 8


@pytest.mark.parametrize(("slots", "threads", "expected_threads"), [(24, 128, 24), (512, 8, 8)])
async def test_the_worker_runs_as_many_activities_as_it_has_slots(
    monkeypatch, slots, threads, expected_threads
):
    monkeypatch.setattr(worker_module, "Worker", FakeWorker)
    FakeWorker.made.clear()

    class Temporal:
        async def client(self) -> object:
            return object()

    class Runtime:
        settings = Settings(worker_activity_slots=slots, worker_activity_threads=threads)
        temporal = Temporal()

    stop = asyncio.Event()

    async def stop_soon(_: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.sleep(0.05)  # a service returns after the stop, not with it

    await worker_module.run_worker(
        Runtime(),  # type: ignore[arg-type]
        stop,
        workflows=[object],
        activities=[],
        services=[stop_soon],
    )
    [kwargs] = FakeWorker.made
    assert kwargs["max_concurrent_activities"] == slots
    assert kwargs["activity_executor"]._max_workers == expected_threads  # never more than slots


async def test_fewer_threads_than_slots_is_no_warning(time_env):
    """The SDK warns when the executor has fewer threads than the slots; here that is the
    design (the send activity is async), so a worker starts without the warning in its log."""
    from concurrent.futures import ThreadPoolExecutor

    from temporalio import activity

    @activity.defn(name="slots.sync")
    def sync_work() -> None:
        """A sync activity: the executor's threads run it."""

    with ThreadPoolExecutor(max_workers=8) as executor, warnings.catch_warnings():
        warnings.simplefilter("error")
        worker = worker_module.build_worker(
            time_env.client,
            task_queue="slots",
            workflows=[],
            activities=[sync_work],
            executor=executor,
            slots=512,
        )
    assert worker is not None
