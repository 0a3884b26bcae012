"""The scheduler: periodic jobs (score decay, sales digest, scheduled journeys, ...) run by
APScheduler 3 in exactly one process (`rejse up`, or `rejse scheduler` when split).

Domains register `ScheduledJob`s in `rejse.wiring.scheduler_jobs`. The rule every job follows:
a job only *starts Temporal workflows with deterministic ids* derived from what it is about and
the period it covers (e.g. `digest:{rep}:{2026-11-23}`), so a double fire — two scheduler
processes by mistake, a retry, a restart inside the period — is a harmless
`WorkflowAlreadyStartedError`. The durable work happens in the workflow, never in the job.

Job store: in memory. Jobs are code, rebuilt from `scheduler_jobs` on every start; a persistent
store would only add replay of fires missed while the process was down, and the deterministic
ids make a job that catches up on start (`run_on_start=True`) simpler and as safe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rejse.logging import get_logger

if TYPE_CHECKING:
    from rejse.runtime import Runtime

log = get_logger("rejse.scheduler")


@dataclass(frozen=True)
class ScheduledJob:
    """`trigger`: a cron expression in UTC (`"0 8 * * 1-5"`), an interval (`timedelta`), or
    any APScheduler trigger. `func(runtime)` must be safe to run twice for the same period."""

    id: str
    trigger: str | dt.timedelta | BaseTrigger
    func: Callable[["Runtime"], Awaitable[None]]
    run_on_start: bool = False   # also fire once right after the scheduler starts


async def start_workflow_once(runtime: "Runtime", workflow: str | Callable, arg: object = None,
                              *, id: str, task_queue: str | None = None) -> bool:
    """Start a workflow with a deterministic id; False when it already runs (a double fire).
    The helper scheduled jobs use to honour the rule above."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    client = await runtime.temporal.client()
    args = [] if arg is None else [arg]
    try:
        await client.start_workflow(workflow, args=args, id=id,
                                    task_queue=task_queue or runtime.settings.task_queue)
    except WorkflowAlreadyStartedError:
        log.info("scheduled_workflow_already_running", workflow_id=id)
        return False
    return True


def make_trigger(trigger: str | dt.timedelta | BaseTrigger) -> BaseTrigger:
    if isinstance(trigger, BaseTrigger):
        return trigger
    if isinstance(trigger, dt.timedelta):
        if trigger.total_seconds() <= 0:
            raise ValueError("interval must be positive")
        return IntervalTrigger(seconds=trigger.total_seconds(), timezone=dt.UTC)
    return CronTrigger.from_crontab(trigger, timezone=dt.UTC)


def _guarded(job: ScheduledJob, runtime: "Runtime") -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.func(runtime)
        except Exception:  # noqa: BLE001 - a failing job must not stop the others
            log.exception("scheduled_job_failed", job=job.id)

    return run


def build_scheduler(runtime: "Runtime", jobs: list[ScheduledJob]) -> AsyncIOScheduler:
    ids = [job.id for job in jobs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate scheduled job ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    for job in jobs:
        scheduler.add_job(
            _guarded(job, runtime), make_trigger(job.trigger), id=job.id, name=job.id,
            max_instances=1, coalesce=True, misfire_grace_time=300,
            **({"next_run_time": now} if job.run_on_start else {}),
        )
    return scheduler


async def run_scheduler(runtime: "Runtime", stop: asyncio.Event,
                        *, jobs: list[ScheduledJob] | None = None) -> None:
    """Run `jobs` (default: `wiring.scheduler_jobs(runtime)`) until `stop` is set."""
    if jobs is None:
        from rejse import wiring

        jobs = wiring.scheduler_jobs(runtime)
    scheduler = build_scheduler(runtime, jobs)
    scheduler.start()
    log.info("scheduler_started", jobs=[job.id for job in jobs])
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        log.info("scheduler_stopped")
