"""Scheduled journeys: a cron fire enters every live profile once, with deterministic ids, so a
double fire starts nothing twice."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from rejse import wiring
from rejse.journeys.definition import ScheduleTrigger
from rejse.journeys.schedule import due_fire_time, fire_scheduled_journeys
from tests.journeys.conftest import new_profile, publish, result, runs

CPH = ZoneInfo("Europe/Copenhagen")


def test_due_fire_time_looks_back_two_minutes():
    trigger = ScheduleTrigger(type="schedule", cron="0 9 * * *", timezone="Europe/Copenhagen")
    nine = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CPH)
    assert due_fire_time(trigger, nine + dt.timedelta(seconds=30)) == nine.astimezone(dt.UTC)
    assert due_fire_time(trigger, nine + dt.timedelta(minutes=1, seconds=59)) is not None
    assert due_fire_time(trigger, nine + dt.timedelta(minutes=3)) is None
    assert due_fire_time(trigger, nine - dt.timedelta(seconds=1)) is None


def test_the_job_is_registered_with_the_scheduler(runtime):
    assert "journeys.schedule" in {job.id for job in wiring.scheduler_jobs(runtime)}


async def test_a_fire_enters_each_profile_once(jruntime, worker, time_env):
    publish(
        jruntime,
        {
            "key": "monday-mail",
            "name": "Weekly",
            "trigger": {"type": "schedule", "cron": "0 9 * * *", "timezone": "Europe/Copenhagen"},
            "start": "mark",
            "steps": {"mark": {"type": "update_profile", "traits": {"weekly": True}}},
        },
    )
    a, b = new_profile(jruntime), new_profile(jruntime)
    now = dt.datetime(2026, 11, 23, 9, 0, 30, tzinfo=CPH)
    assert await fire_scheduled_journeys(jruntime, now=now) == 2
    assert await fire_scheduled_journeys(jruntime, now=now + dt.timedelta(seconds=40)) == 0
    for pid in (a, b):
        [run] = runs(jruntime, profile_id=pid)
        assert run.workflow_id == f"journey:monday-mail:{pid}:20261123T0800Z"
        assert await result(time_env, run.workflow_id) == "completed"
    assert await fire_scheduled_journeys(jruntime, now=now + dt.timedelta(minutes=5)) == 0
