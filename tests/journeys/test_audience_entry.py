"""Entries of an audience: a cron `schedule` journey on an audience and a manual entry of one
enter exactly its members, once per fire or request (also when two schedulers fire, or a
driver stops midway), at the configured rate, with the progress visible."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from rejse.journeys import bulk
from rejse.journeys.schedule import fire_scheduled_journeys, open_fires
from rejse.models.journeys import JourneyEntry
from rejse.models.profiles import Profile
from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.audiences_support import make_audience
from tests.journeys.conftest import new_profile, publish, result, runs

CPH = ZoneInfo("Europe/Copenhagen")
NINE = dt.datetime(2026, 11, 23, 9, 0, 30, tzinfo=CPH)

WEEKLY_VIP: dict[str, Any] = {
    "key": "weekly-vip",
    "name": "Weekly VIP",
    "trigger": {
        "type": "schedule",
        "cron": "0 9 * * *",
        "timezone": "Europe/Copenhagen",
        "audience": "vip",
    },
    "start": "mark",
    "steps": {"mark": {"type": "update_profile", "traits": {"weekly": True}}},
}


def entries(runtime) -> list[JourneyEntry]:
    with Session(runtime.engine) as s:
        return list(s.exec(select(JourneyEntry).order_by(JourneyEntry.created_at)))


def members_and_others(runtime, members: int = 2) -> tuple[list[str], list[str]]:
    inside = [new_profile(runtime) for _ in range(members)]
    erased, outside = new_profile(runtime), new_profile(runtime)
    with Session(runtime.engine) as s:
        profile = s.get(Profile, erased)
        assert profile is not None
        profile.erased_at = dt.datetime.now(dt.UTC)
        s.add(profile)
        s.commit()
    make_audience(runtime, "vip", members=[*inside, erased])
    return inside, [erased, outside]


async def test_a_schedule_on_an_audience_enters_exactly_its_members_once_per_fire(
    jruntime, worker, time_env
):
    inside, outside = members_and_others(jruntime)
    publish(jruntime, WEEKLY_VIP)
    assert await fire_scheduled_journeys(jruntime, now=NINE) == 2
    assert await fire_scheduled_journeys(jruntime, now=NINE + dt.timedelta(seconds=40)) == 0
    for pid in outside:
        assert runs(jruntime, profile_id=pid) == []
    for pid in inside:
        [run] = runs(jruntime, profile_id=pid)
        assert run.workflow_id == f"journey:weekly-vip:{pid}:20261123T0800Z"
        assert await result(time_env, run.workflow_id) == "completed"
    [entry] = entries(jruntime)
    assert (entry.id, entry.audience, entry.status) == ("schedule-20261123T0800Z", "vip", "done")
    assert (entry.total, entry.entered, entry.skipped) == (2, 2, 0)

    # the next day two schedulers fire at once: each member is entered once more, not twice
    tomorrow = NINE + dt.timedelta(days=1)
    started = await asyncio.gather(
        fire_scheduled_journeys(jruntime, now=tomorrow),
        fire_scheduled_journeys(jruntime, now=tomorrow + dt.timedelta(seconds=1)),
    )
    assert sum(started) == 2
    for pid in inside:
        assert sorted(r.workflow_id for r in runs(jruntime, profile_id=pid)) == [
            f"journey:weekly-vip:{pid}:20261123T0800Z",
            f"journey:weekly-vip:{pid}:20261124T0800Z",
        ]
    assert [(e.entered, e.status) for e in entries(jruntime)] == [(2, "done"), (2, "done")]


async def test_a_fire_that_stopped_midway_resumes_without_entering_anyone_twice(
    jruntime, worker, time_env, monkeypatch
):
    monkeypatch.setattr(bulk, "PAGE_MAX", 2)
    inside, _ = members_and_others(jruntime, members=5)
    publish(jruntime, WEEKLY_VIP)
    [entry_id] = open_fires(jruntime, now=NINE)
    # a driver planned the first page (its runs are written) and stopped before starting them
    planned = bulk._plan_page(jruntime, "weekly-vip", entry_id, "gone", page_size=2)
    assert planned is not None
    assert len(planned[0]) == 2
    with Session(jruntime.engine) as s:
        row = s.get(JourneyEntry, ("weekly-vip", entry_id))
        assert row is not None
        assert row.lease_owner == "gone"
        row.lease_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # its lease ran out
        s.add(row)
        s.commit()

    await fire_scheduled_journeys(jruntime, now=NINE + dt.timedelta(seconds=30))
    for pid in inside:
        [run] = runs(jruntime, profile_id=pid)
        assert await result(time_env, run.workflow_id) == "completed"
    [entry] = entries(jruntime)
    assert (entry.total, entry.entered, entry.skipped, entry.status) == (5, 5, 0, "done")


async def test_entries_keep_to_the_configured_rate(jruntime, worker, time_env):
    jruntime.settings.journey_entry_rate = 4
    inside, _ = members_and_others(jruntime, members=8)
    publish(jruntime, WEEKLY_VIP)
    began = time.monotonic()
    assert await fire_scheduled_journeys(jruntime, now=NINE) == 8
    # 4 at once, the next 4 a second later
    assert time.monotonic() - began >= 0.95


async def test_manual_entry_of_an_audience_enters_its_members_with_progress(
    jruntime, worker, time_env, client, keys
):
    m, a = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    inside, outside = members_and_others(jruntime)
    publish(jruntime, {**WEEKLY_VIP, "key": "vip-news", "trigger": {"type": "manual"}})
    body = {"audience": "vip", "idempotency_key": "news-1", "properties": {"issue": 7}}
    r = await client.post("/api/journeys/vip-news/enter", json=body, headers=m)
    assert r.status_code == 202, r.text
    progress = r.json()
    assert (progress["audience"], progress["total"], progress["source"]) == ("vip", 2, "manual")
    entry_id = progress["id"]
    assert entry_id.startswith("manual-")
    assert "news-1" not in entry_id

    for _ in range(200):
        r = await client.get(f"/api/journeys/vip-news/entries/{entry_id}", headers=a)
        if r.json()["status"] == "done":
            break
        await asyncio.sleep(0.02)
    assert r.status_code == 200
    assert (r.json()["entered"], r.json()["skipped"], r.json()["status"]) == (2, 0, "done")
    for pid in outside:
        assert runs(jruntime, profile_id=pid) == []
    for pid in inside:
        [run] = runs(jruntime, profile_id=pid)
        assert run.workflow_id == f"journey:vip-news:{pid}"
        assert await result(time_env, run.workflow_id) == "completed"

    # the same idempotency key is the same entry: nobody enters again
    r = await client.post("/api/journeys/vip-news/enter", json=body, headers=m)
    assert (r.status_code, r.json()["id"], r.json()["entered"]) == (202, entry_id, 2)
    await asyncio.sleep(0.1)
    assert all(len(runs(jruntime, profile_id=pid)) == 1 for pid in inside)
    r = await client.get("/api/journeys/vip-news/entries", headers=a)
    assert [e["id"] for e in r.json()] == [entry_id]

    # a new entry: the members finished their runs, so `after_exit` lets them in again
    r = await client.post("/api/journeys/vip-news/enter", json={"audience": "vip"}, headers=m)
    assert r.status_code == 202


async def test_manual_entry_bad_input_names_the_field(jruntime, client, keys):
    m = auth(keys[Role.marketer])
    make_audience(jruntime, "vip")
    publish(jruntime, {**WEEKLY_VIP, "key": "vip-news", "trigger": {"type": "manual"}})
    pid = new_profile(jruntime)
    cases = [
        ({"audience": "nobody"}, 404, "audience"),
        ({"audience": "vip", "profile_id": pid}, 422, "audience"),
        ({}, 422, "profile_id"),
        ({"audience": ""}, 422, "audience"),
    ]
    for body, code, field in cases:
        r = await client.post("/api/journeys/vip-news/enter", json=body, headers=m)
        assert r.status_code == code, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, (body, r.json())
    r = await client.get("/api/journeys/vip-news/entries/manual-0", headers=m)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "entry_id"
    assert entries(jruntime) == []
