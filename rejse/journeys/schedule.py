"""Scheduled journeys (`"trigger": {"type": "schedule", "cron": "0 9 * * MON", "audience": "vip"}`).

One scheduler job (`journeys.schedule`, every minute) looks for cron fire times of published
schedule journeys in the last two minutes and opens an entry for each fire
(`rejse.journeys.bulk`): the audience's members, or every live profile when the trigger names
no audience. The entry's id is the fire time and each run's workflow id is deterministic,
`journey:{key}:{profile}:{fire time}`, and so is its trigger event id, so the next tick, a
second scheduler or a restart re-planning the same fire time starts nothing twice. The same job
then drives every unfinished entry (its own, and manual ones whose driver stopped) at
`REJSE_JOURNEY_ENTRY_RATE`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from rejse.crontab import parse_crontab
from rejse.db import session_scope, utcnow
from rejse.journeys.bulk import drive_unfinished, open_entry, schedule_entry_id
from rejse.journeys.definition import ScheduleTrigger
from rejse.journeys.service import published_definitions
from rejse.logging import get_logger
from rejse.runtime import Runtime

if TYPE_CHECKING:
    from rejse.scheduler import ScheduledJob

log = get_logger("rejse.journeys")
LOOKBACK = dt.timedelta(minutes=2)


def due_fire_time(trigger: ScheduleTrigger, now: dt.datetime) -> dt.datetime | None:
    """The latest cron fire time in (now - LOOKBACK, now], if any."""
    cron = parse_crontab(trigger.cron, timezone=trigger.timezone)
    fire, latest = cron.get_next_fire_time(None, now - LOOKBACK), None
    while fire is not None and fire <= now:
        latest = fire
        fire = cron.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return latest.astimezone(dt.UTC) if latest else None


def open_fires(runtime: Runtime, *, now: dt.datetime) -> list[str]:
    """Open an entry for each due fire (an existing one is left as it is); their ids."""
    opened = []
    with session_scope(runtime.engine) as session:
        for journey, defn in published_definitions(session, trigger_types=("schedule",)):
            schedule = defn.trigger
            if not isinstance(schedule, ScheduleTrigger):  # selected by trigger type above
                raise TypeError(f"journey {journey.key}: {schedule.type} trigger, not schedule")
            fire = due_fire_time(schedule, now)
            if fire is None:
                continue
            row = open_entry(
                session,
                journey_key=journey.key,
                entry_id=schedule_entry_id(fire),
                source="schedule",
                audience=schedule.audience,
                fired_at=fire,
            )
            opened.append(row.id)
    return opened


async def fire_scheduled_journeys(runtime: Runtime, *, now: dt.datetime | None = None) -> int:
    """The scheduler job; returns how many new runs it started (re-planned ones are only
    re-sent to Temporal, which ignores them)."""
    import asyncio

    await asyncio.to_thread(open_fires, runtime, now=now or utcnow())
    started = await drive_unfinished(runtime)
    if started:
        log.info("scheduled_journeys_started", runs=started)
    return started


def scheduler_jobs(runtime: Runtime) -> list[ScheduledJob]:
    from rejse.scheduler import ScheduledJob

    async def job(rt: Runtime) -> None:
        await fire_scheduled_journeys(rt)

    return [
        ScheduledJob(
            id="journeys.schedule", trigger=dt.timedelta(minutes=1), func=job, run_on_start=True
        )
    ]
