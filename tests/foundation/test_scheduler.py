"""The scheduler runs the registered jobs on their triggers, survives a failing job, and a
double fire of a job that starts a deterministic workflow id is harmless."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rejse import wiring
from rejse.db import make_engine
from rejse.runtime import Runtime
from rejse.scheduler import (
    ScheduledJob,
    build_scheduler,
    make_trigger,
    run_scheduler,
    start_workflow_once,
)


async def _until(predicate, seconds: float = 5.0) -> None:
    """Until `predicate()` holds; TimeoutError when it does not within `seconds`."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - the jobs signal nothing; poll what they did
            await asyncio.sleep(0.01)


def _bare_runtime():
    """Just what the scheduler itself touches: an engine (a private in-memory database)."""
    return SimpleNamespace(engine=make_engine("sqlite://"))


async def test_jobs_fire_and_a_failing_job_does_not_stop_the_others():
    runtime = _bare_runtime()  # jobs receive the runtime they were given
    seen: list[object] = []

    async def ok(rt) -> None:
        seen.append(rt)

    async def boom(rt) -> None:
        raise RuntimeError("job failed")

    stop = asyncio.Event()
    jobs = [
        ScheduledJob("boom", dt.timedelta(milliseconds=20), boom),
        ScheduledJob("ok", dt.timedelta(milliseconds=20), ok),
    ]
    task = asyncio.create_task(run_scheduler(runtime, stop, jobs=jobs))  # type: ignore[arg-type]
    await _until(lambda: len(seen) >= 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert all(rt is runtime for rt in seen)


async def test_run_on_start_fires_at_once():
    fired = asyncio.Event()

    async def job(rt) -> None:
        fired.set()

    stop = asyncio.Event()
    yearly = ScheduledJob("yearly", "0 0 1 1 *", job, run_on_start=True)
    task = asyncio.create_task(run_scheduler(_bare_runtime(), stop, jobs=[yearly]))  # type: ignore[arg-type]
    await asyncio.wait_for(fired.wait(), 5)
    stop.set()
    await task


def test_triggers_and_ids_are_checked():
    assert isinstance(make_trigger("*/5 * * * *"), CronTrigger)
    assert isinstance(make_trigger(dt.timedelta(hours=1)), IntervalTrigger)
    with pytest.raises(ValueError, match="number of fields"):  # APScheduler's crontab parser
        make_trigger("every tuesday")
    with pytest.raises(ValueError, match="interval must be positive"):
        make_trigger(dt.timedelta(0))

    async def job(rt) -> None: ...

    with pytest.raises(ValueError, match="duplicate"):
        build_scheduler(
            object(),
            [
                ScheduledJob("a", "0 0 * * *", job),  # type: ignore[arg-type]
                ScheduledJob("a", dt.timedelta(minutes=1), job),
            ],
        )


def test_the_registered_jobs_build(runtime):
    """Every job the domains register in `wiring.scheduler_jobs` has a valid trigger and id."""
    jobs = wiring.scheduler_jobs(runtime)
    assert all(isinstance(job, ScheduledJob) for job in jobs)
    scheduler = build_scheduler(runtime, jobs)
    assert {job.id for job in scheduler.get_jobs()} == {job.id for job in jobs}


async def test_a_double_fire_starts_the_workflow_once(settings, engine, dev_env):
    # The dev server, not the time-skipping one: a workflow task left pending on a queue
    # nobody polls (even after terminate) stops the shared time-skipping server from skipping.
    runtime = Runtime.create(settings, engine=engine, temporal_client=dev_env.client)
    workflow_id = f"digest:test:{uuid.uuid4().hex}"
    # No worker polls this queue: the workflow exists (running) without any code behind it.
    assert await start_workflow_once(runtime, "Anything", id=workflow_id, task_queue="nobody")
    assert not await start_workflow_once(runtime, "Anything", id=workflow_id, task_queue="nobody")
    await dev_env.client.get_workflow_handle(workflow_id).terminate("test done")


async def test_only_one_scheduler_runs_jobs_and_a_standby_takes_over(runtime):
    """Two schedulers on one database (SQLite file or PostgreSQL): one runs the jobs, the other
    waits; when the first stops, the second takes over."""
    fired: list[str] = []

    def job_of(name: str) -> ScheduledJob:
        async def job(rt) -> None:
            fired.append(name)

        return ScheduledJob("tick", dt.timedelta(milliseconds=20), job)

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        run_scheduler(runtime, first_stop, jobs=[job_of("first")], poll_seconds=0.05)
    )
    await _until(lambda: "first" in fired)
    second = asyncio.create_task(
        run_scheduler(runtime, second_stop, jobs=[job_of("second")], poll_seconds=0.05)
    )
    await _until(lambda: fired.count("first") >= 5)
    assert "second" not in fired
    first_stop.set()
    await asyncio.wait_for(first, 5)
    await _until(lambda: "second" in fired)
    second_stop.set()
    await asyncio.wait_for(second, 5)
