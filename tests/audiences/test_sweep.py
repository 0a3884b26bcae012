"""The recheck sweep: time alone moves profiles out of (and into) audiences, from the recheck
rows, within a sweep of the moment; re-running it changes nothing."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session

from rejse import wiring
from rejse.audiences.sweep import INTERVAL, sweep_due
from rejse.db import utcnow
from rejse.models.audiences import AudienceMembership, AudienceRecheck
from tests.audiences.membership_helpers import (
    audience_event_rows,
    audience_events,
    create,
    members,
    pid_of,
    rechecks,
    track,
)

BUYERS = {"event": "Order Completed", "within": "P90D"}


async def _buyer(client, keys, runtime, engine, *, days_ago: float) -> tuple[str, dt.datetime]:
    ordered = utcnow() - dt.timedelta(days=days_ago)
    await track(client, keys, "u-1", "Order Completed", at=ordered, total=10)
    await wiring.event_processor(runtime).drain()
    return pid_of(engine, "u-1"), ordered


async def test_a_member_leaves_within_a_minute_of_the_window_passing(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    pid, ordered = await _buyer(client, keys, runtime, engine, days_ago=89)
    assert members(engine, "buyers") == {pid}
    expires = ordered + dt.timedelta(days=90)
    [due] = rechecks(engine, "buyers").values()
    assert expires <= due <= expires + dt.timedelta(seconds=1)

    early = sweep_due(runtime.engine, now=expires - dt.timedelta(minutes=1))
    assert early.checked == 0
    assert members(engine, "buyers") == {pid}

    # a sweep runs every 30 s: the first one after the moment takes the profile out
    result = sweep_due(runtime.engine, now=expires + INTERVAL)
    assert (result.checked, result.exited, result.entered) == (1, 1, 0)
    assert members(engine, "buyers") == set()
    assert rechecks(engine) == {}
    assert audience_events(engine, pid)[-1] == (pid, "Audience Exited", "buyers")
    # the exit event goes through the processor like any other
    assert await wiring.event_processor(runtime).drain() == 1


async def test_a_new_order_before_the_window_passes_keeps_the_member(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    pid, ordered = await _buyer(client, keys, runtime, engine, days_ago=89)
    await track(client, keys, "u-1", "Order Completed", total=10)  # today
    await wiring.event_processor(runtime).drain()
    sweep_due(runtime.engine, now=ordered + dt.timedelta(days=91))
    assert members(engine, "buyers") == {pid}
    assert [e for _, e, _ in audience_events(engine, pid)] == ["Audience Entered"]
    [due] = rechecks(engine, "buyers").values()
    assert due > ordered + dt.timedelta(days=91)  # looked at again later, not every sweep


async def test_time_also_brings_profiles_in(client, keys, runtime, engine):
    create(engine, "quiet", {"not": {"event": "Order Completed", "within": "P7D"}})
    pid, ordered = await _buyer(client, keys, runtime, engine, days_ago=1)
    assert members(engine, "quiet") == set()
    result = sweep_due(runtime.engine, now=ordered + dt.timedelta(days=7, seconds=30))
    assert result.entered == 1
    assert members(engine, "quiet") == {pid}
    assert audience_events(engine, pid)[-1] == (pid, "Audience Entered", "quiet")


async def test_rerunning_the_sweep_stores_no_event_twice(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    pid, ordered = await _buyer(client, keys, runtime, engine, days_ago=89)
    [due] = rechecks(engine, "buyers").values()
    now = ordered + dt.timedelta(days=90, seconds=30)
    assert sweep_due(runtime.engine, now=now).exited == 1
    again = sweep_due(runtime.engine, now=now)
    assert again.checked == 0
    # A second scheduler that read the same recheck row before the first committed: the row
    # and the membership are as they were, and the same transition is found again.
    with Session(engine) as s:
        s.add(AudienceMembership(audience_key="buyers", profile_id=pid, entered_at=ordered))
        s.add(AudienceRecheck(audience_key="buyers", profile_id=pid, due_at=due))
        s.commit()
    sweep_due(runtime.engine, now=now)
    exits = [r for r in audience_event_rows(engine) if r.event == "Audience Exited"]
    assert len(exits) == 1
    assert exits[0].message_id.startswith(f"aud:buyers:{pid}:exited:due@")
    assert members(engine, "buyers") == set()


async def test_sweep_pages_and_drops_rows_of_deleted_audiences(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    now = utcnow()
    for n in range(5):
        await track(client, keys, f"u-{n}", "Order Completed", at=now - dt.timedelta(days=89))
    await wiring.event_processor(runtime).drain()
    assert len(members(engine, "buyers")) == 5
    with Session(engine) as s:  # a row left by an audience that is gone
        s.add(AudienceRecheck(audience_key="gone", profile_id="prf_nobody", due_at=now))
        s.commit()
    result = sweep_due(runtime.engine, now=now + dt.timedelta(days=2), limit=2)
    assert (result.checked, result.exited) == (6, 5)
    assert members(engine, "buyers") == set()
    with Session(engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(AudienceRecheck)).scalar() == 0


def test_the_sweep_is_a_scheduler_job_every_30_seconds(runtime):
    [job] = [j for j in wiring.scheduler_jobs(runtime) if j.id == "audiences.recheck"]
    assert job.trigger == dt.timedelta(seconds=30)


async def test_a_decaying_score_leaves_a_score_audience_by_time(client, keys, runtime, engine):
    from rejse.scoring import service as scoring
    from rejse.scoring.definition import ScoringDefinition

    model = {
        "event_rules": [{"id": "demo", "event": "Demo Requested", "points": 40}],
        "half_life": "P7D",
        "thresholds": {"lead": 10, "aql": 100},
    }
    with Session(engine) as s:
        scoring.create_model(s, definition=ScoringDefinition.model_validate(model), activate=True)
        s.commit()
    create(engine, "hot", {"score": {"gte": 30}})
    requested = utcnow()
    await track(client, keys, "u-1", "Demo Requested", at=requested)
    await wiring.event_processor(runtime).drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "hot") == {pid}
    # 40 points halve every 7 days: below 30 after 7 * log2(4/3) days, about 2.9
    [due] = rechecks(engine, "hot").values()
    crossing = requested + dt.timedelta(days=7 * 0.41503749927884376)
    assert abs((due - crossing).total_seconds()) < 60
    assert sweep_due(runtime.engine, now=due - dt.timedelta(minutes=1)).checked == 0
    assert sweep_due(runtime.engine, now=due + INTERVAL).exited == 1
    assert members(engine, "hot") == set()
