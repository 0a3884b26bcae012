"""Scheduled journeys (`"trigger": {"type": "schedule", "cron": "0 9 * * MON"}`).

One scheduler job (`journeys.schedule`, every minute) looks for cron fire times of published
schedule journeys in the last two minutes and enters every live profile (audiences do not exist
yet, so a schedule journey addresses all profiles that are not erased). Each entry's workflow id
is deterministic, `journey:{key}:{profile}:{fire time}`, and so is its trigger event id, so the
next tick, a second scheduler or a restart re-planning the same fire time starts nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from rejse.contracts import ProcessedEvent
from rejse.crontab import parse_crontab
from rejse.db import session_scope, utcnow
from rejse.journeys.definition import ScheduleTrigger
from rejse.journeys.entry import Entry, plan_entry
from rejse.journeys.service import published_definitions
from rejse.logging import get_logger
from rejse.runtime import Runtime

if TYPE_CHECKING:
    from rejse.scheduler import ScheduledJob

log = get_logger("rejse.journeys")
LOOKBACK = dt.timedelta(minutes=2)
PAGE = 500


def due_fire_time(trigger: ScheduleTrigger, now: dt.datetime) -> dt.datetime | None:
    """The latest cron fire time in (now - LOOKBACK, now], if any."""
    cron = parse_crontab(trigger.cron, timezone=trigger.timezone)
    fire, latest = cron.get_next_fire_time(None, now - LOOKBACK), None
    while fire is not None and fire <= now:
        latest = fire
        fire = cron.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return latest.astimezone(dt.UTC) if latest else None


def _live_profiles(session: Session, after: str, limit: int) -> list[str]:
    from rejse.models.profiles import Profile

    return list(
        session.exec(
            select(Profile.id)
            .where(col(Profile.erased_at).is_(None), Profile.id > after)
            .order_by(Profile.id)
            .limit(limit)
        )
    )


def plan_scheduled(runtime: Runtime, *, now: dt.datetime) -> list[Entry]:
    entries: list[Entry] = []
    with session_scope(runtime.engine) as session:
        for journey, defn in published_definitions(session, trigger_types=("schedule",)):
            schedule = defn.trigger
            if not isinstance(schedule, ScheduleTrigger):  # selected by trigger type above
                raise TypeError(f"journey {journey.key}: {schedule.type} trigger, not schedule")
            fire = due_fire_time(schedule, now)
            if fire is None:
                continue
            stamp = fire.strftime("%Y%m%dT%H%MZ")
            after = ""
            while page := _live_profiles(session, after, PAGE):
                after = page[-1]
                for pid in page:
                    trigger = ProcessedEvent(
                        event_id=f"schedule:{journey.key}:{stamp}:{pid}",
                        profile_id=pid,
                        type="internal",
                        event="Journey Scheduled",
                        properties={"fired_at": fire.isoformat()},
                        timestamp=fire,
                        received_at=now,
                    )
                    entry = plan_entry(
                        session,
                        journey=journey,
                        defn=defn,
                        event=trigger,
                        workflow_id=f"journey:{journey.key}:{pid}:{stamp}",
                    )
                    if entry is not None:
                        entries.append(entry)
    return entries


async def fire_scheduled_journeys(runtime: Runtime, *, now: dt.datetime | None = None) -> int:
    """The scheduler job; returns how many new runs it started (re-planned ones are only
    re-sent to Temporal, which ignores them)."""
    from rejse.journeys.dispatcher import start_entry

    entries = await asyncio.to_thread(plan_scheduled, runtime, now=now or utcnow())
    if not entries:
        return 0
    client = await runtime.temporal.client()
    started = 0
    for n in range(0, len(entries), 50):
        chunk = entries[n : n + 50]
        results = await asyncio.gather(*(start_entry(client, runtime, e) for e in chunk))
        # `gather` answers once per entry of the chunk, in order
        started += sum(1 for e, ok in zip(chunk, results, strict=True) if ok and not e.redelivery)
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
