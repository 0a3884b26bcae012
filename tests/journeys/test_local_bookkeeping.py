"""The journey's database bookkeeping runs as local activities (PATCH_LOCAL_BOOKKEEPING): only
the send is scheduled on the server, and each bookkeeping activity may run again (a local
activity is re-run when its workflow task is retried after a worker crash, with a later
workflow time) without logging or counting anything twice."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType

from activities.journeys import JourneyActivities
from rejse.contracts import SEND_MESSAGE
from rejse.journeys import runtypes as rt
from rejse.models.journeys import JourneyStep
from rejse.models.timeline import TimelineEntry
from tests.journeys.conftest import (
    abandoned_cart,
    at_step,
    event,
    new_profile,
    publish,
    result,
    runs,
)


def timeline(runtime, pid: str) -> list[str]:
    with Session(runtime.engine) as s:
        rows = s.exec(
            select(TimelineEntry)
            .where(TimelineEntry.profile_id == pid)
            .order_by(col(TimelineEntry.id))
        )
        return [r.summary for r in rows]


def steps(runtime, run_id: str) -> list[str]:
    with Session(runtime.engine) as s:
        rows = s.exec(
            select(JourneyStep).where(JourneyStep.run_id == run_id).order_by(col(JourneyStep.id))
        )
        return [r.step_id for r in rows]


async def test_only_the_send_is_a_regular_activity(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"

    history = await time_env.client.get_workflow_handle(run.workflow_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [SEND_MESSAGE, SEND_MESSAGE]
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    # the patch marker, BEGIN_RUN, 4 x RECORD_STEP, 2 x RECORD_OUTCOME, FINISH_RUN
    assert len(markers) == 1 + 1 + 4 + 2 + 1, [m.marker_recorded_event_attributes for m in markers]
    # and the books are as before
    assert steps(jruntime, run.id) == ["wait_1d", "reminder_1", "wait_2d", "reminder_2"]


async def test_record_step_run_again_logs_the_step_once(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    await at_step(handle, "wait_1d")
    acts = JourneyActivities(jruntime)
    before = timeline(jruntime, pid)

    # RECORD_STEP of the first step run again, its workflow task retried a moment later
    again = rt.StepRecord(
        run_id=run.id,
        journey_key=run.journey_key,
        version=run.version,
        profile_id=pid,
        step_id="wait_1d",
        step_type="wait",
        at=t0 + dt.timedelta(seconds=7),
        visit=1,
    )
    acts.record_step(again)
    assert steps(jruntime, run.id) == ["wait_1d"]
    assert timeline(jruntime, pid) == before
    assert await result(time_env, run.workflow_id) == "completed"


async def test_finish_run_run_again_ends_the_run_once(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [run] = runs(jruntime, profile_id=pid)
    acts = JourneyActivities(jruntime)
    assert await result(time_env, run.workflow_id) == "completed"
    done = timeline(jruntime, pid)
    [run] = runs(jruntime, profile_id=pid)
    # FINISH_RUN run again after the run ended: no second end on the timeline
    acts.finish_run(
        rt.FinishRecord(
            run_id=run.id,
            journey_key=run.journey_key,
            profile_id=pid,
            status="completed",
            step_id="reminder_2",
            at=t0 + dt.timedelta(days=3, seconds=7),
        )
    )
    assert timeline(jruntime, pid) == done
    [again_run] = runs(jruntime, profile_id=pid)
    assert (again_run.status, again_run.ended_at) == (run.status, run.ended_at)
    # RECORD_OUTCOME run again: the same outcome on the same row
    acts.record_outcome(rt.OutcomeRecord(run_id=run.id, step_id="reminder_2", outcome="sent"))
    assert steps(jruntime, run.id) == ["wait_1d", "reminder_1", "wait_2d", "reminder_2"]
