"""The scheduler: periodic jobs (score decay, sales digest, scheduled journeys, ...) run by
APScheduler 3 in exactly one process (`rejse up`, or `rejse scheduler` when split).

Domains list their `ScheduledJob`s; the composition root hands them to `run_scheduler`. The
rule every job follows: a job only *starts Temporal workflows with deterministic ids* derived
from what it is about and the period it covers (e.g. `digest:{rep}:{2026-11-23}`), so a double
fire — two scheduler processes by mistake, a retry, a restart inside the period — is a harmless
`WorkflowAlreadyStartedError`. The durable work happens in the workflow, never in the job.

Exactly one runs jobs: every scheduler process takes `LeaderLock` first (a PostgreSQL advisory
lock, or a file lock next to the SQLite database); a second one waits in standby and takes
over when the first stops — so a stray second `rejse scheduler` is harmless, and two can run
for availability.

Job store: in memory. Jobs are code, rebuilt from `scheduler_jobs` on every start; a persistent
store would only add replay of fires missed while the process was down, and the deterministic
ids make a job that catches up on start (`run_on_start=True`) simpler and as safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rejse.crontab import parse_crontab
from rejse.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from rejse.runtime import Runtime

log = get_logger("rejse.scheduler")


@dataclass(frozen=True)
class ScheduledJob:
    """`trigger`: a cron expression in UTC (`"0 8 * * 1-5"`), an interval (`timedelta`), or
    any APScheduler trigger. `func(runtime)` must be safe to run twice for the same period."""

    id: str
    trigger: str | dt.timedelta | BaseTrigger
    func: Callable[[Runtime], Awaitable[None]]
    run_on_start: bool = False  # also fire once right after the scheduler starts


async def start_workflow_once(
    runtime: Runtime,
    workflow: str | Callable[..., Awaitable[Any]],
    arg: object = None,
    *,
    id: str,
    task_queue: str | None = None,
) -> bool:
    """Start a workflow with a deterministic id; False when it already runs (a double fire).
    The helper scheduled jobs use to honour the rule above."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    client = await runtime.temporal.client()
    args = [] if arg is None else [arg]
    try:
        await client.start_workflow(
            workflow, args=args, id=id, task_queue=task_queue or runtime.settings.task_queue
        )
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
    return parse_crontab(trigger)


def _guarded(job: ScheduledJob, runtime: Runtime) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.func(runtime)
        except Exception:  # noqa: BLE001 - a failing job must not stop the others
            log.exception("scheduled_job_failed", job=job.id)

    return run


def build_scheduler(runtime: Runtime, jobs: Sequence[ScheduledJob]) -> AsyncIOScheduler:
    ids = [job.id for job in jobs]
    if len(ids) != len(set(ids)):
        raise ValueError(
            f"duplicate scheduled job ids: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    for job in jobs:
        scheduler.add_job(
            _guarded(job, runtime),
            make_trigger(job.trigger),
            id=job.id,
            name=job.id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=300,
            **({"next_run_time": now} if job.run_on_start else {}),
        )
    return scheduler


class LeaderLock:
    """Makes "exactly one scheduler" hold even when two are started: only the holder of this
    lock runs jobs, the others wait in standby and take over when it goes away.
    PostgreSQL: a session advisory lock on a dedicated connection (released by the server if
    the process dies). SQLite: an exclusive `flock` on `<database file>.scheduler.lock`."""

    PG_KEY = 0x72656A7365  # "rejse"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        import sqlalchemy as sa

        if self._engine.dialect.name == "postgresql":
            conn = self._engine.connect()
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.PG_KEY}
            ).scalar()
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return bool(got)
        database = self._engine.url.database
        if not database or database == ":memory:":
            return True  # a private in-memory database: nobody to compete with
        import fcntl

        handle = open(f"{database}.scheduler.lock", "a+")  # noqa: SIM115 - held while leading
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return True
        import sqlalchemy as sa

        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:  # noqa: BLE001 - connection lost: the server released the lock
            return False

    def release(self) -> None:
        if self._conn is not None:
            import sqlalchemy as sa

            # a lost connection released it already
            with contextlib.suppress(Exception):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.PG_KEY})
                self._conn.commit()
            self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_scheduler(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    jobs: Sequence[ScheduledJob],
    poll_seconds: float = 5.0,
) -> None:
    """Run `jobs` (the composition root's `scheduler_jobs`) until `stop` is set, while this
    process holds the scheduler lock; in standby (checking every `poll_seconds`) otherwise."""
    lock = LeaderLock(runtime.engine)
    announced = False
    while not stop.is_set():
        if not await asyncio.to_thread(lock.try_acquire):
            if not announced:
                log.info("scheduler_standby", reason="another scheduler holds the lock")
                announced = True
            await _wait(stop, poll_seconds)
            continue
        scheduler = build_scheduler(runtime, jobs)
        scheduler.start()
        log.info("scheduler_started", jobs=[job.id for job in jobs])
        try:
            while not stop.is_set():
                await _wait(stop, poll_seconds)
                if not stop.is_set() and not await asyncio.to_thread(lock.still_held):
                    log.warning("scheduler_lock_lost")
                    break
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.to_thread(lock.release)
            log.info("scheduler_stopped")
