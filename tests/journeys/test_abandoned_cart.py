"""The abandoned-cart journey end to end on the time-skipping server: dispatcher (trigger
routing) -> JourneyWorkflow -> messaging's real send activity (development outbox rows)."""

from __future__ import annotations

import datetime as dt

from temporalio.client import WorkflowExecutionStatus

from tests.journeys.conftest import (
    abandoned_cart,
    at_step,
    event,
    messages,
    new_profile,
    publish,
    result,
    runs,
)

DAY = dt.timedelta(days=1)


def close(actual: dt.timedelta, expected: dt.timedelta) -> bool:
    return abs(actual - expected) < dt.timedelta(minutes=5)


async def test_no_purchase_sends_two_emails_at_day_1_and_3(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch(
        [
            event(
                pid,
                "Checkout Started",
                t0,
                checkout_id="c1",
                abandoned_checkout_url="https://shop.example/c1",
            )
        ]
    )
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"

    sent = messages(jruntime, pid)
    assert [m.template for m in sent] == ["abandoned_cart/reminder", "abandoned_cart/free_shipping"]
    assert all(m.status == "sent" and m.channel == "email" for m in sent)
    assert close(sent[0].sent_at - t0, 1 * DAY), sent[0].sent_at - t0
    assert close(sent[1].sent_at - t0, 3 * DAY), sent[1].sent_at - t0
    [run] = runs(jruntime, profile_id=pid)
    assert (run.status, run.converted, run.current_step) == ("completed", False, "reminder_2")


async def test_matching_order_after_first_reminder_converts(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)

    await time_env.sleep(DAY + dt.timedelta(hours=2))
    assert [m.template for m in messages(jruntime, pid)] == ["abandoned_cart/reminder"]

    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="another")])
    assert (await handle.query("state"))["converted"] is False
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="c1")])
    assert await result(time_env, run.workflow_id) == "converted"
    assert [m.template for m in messages(jruntime, pid)] == ["abandoned_cart/reminder"]
    [run] = runs(jruntime, profile_id=pid)
    assert (run.status, run.converted, run.current_step) == ("converted", True, "wait_2d")


async def test_two_checkouts_two_runs_same_checkout_one_run(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    first = event(pid, "Checkout Started", t0, checkout_id="c1")
    await dispatcher.dispatch([first, event(pid, "Checkout Started", t0, checkout_id="c2")])
    await dispatcher.dispatch(
        [event(pid, "Checkout Started", t0 + dt.timedelta(minutes=1), checkout_id="c1")]
    )
    await dispatcher.dispatch([first])  # a re-delivered event acts once
    both = runs(jruntime, profile_id=pid)
    assert len(both) == 2
    assert len({r.workflow_id for r in both}) == 2
    for r in both:
        assert await result(time_env, r.workflow_id) == "completed"
    assert len(messages(jruntime, pid)) == 4  # 2 per checkout, no duplicates


async def test_cooldown_blocks_reentry_inside_p7d_and_allows_after(
    jruntime, worker, dispatcher, time_env
):
    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"

    await dispatcher.dispatch([event(pid, "Checkout Started", t0 + 5 * DAY, checkout_id="c1")])
    assert len(runs(jruntime, profile_id=pid)) == 1

    await dispatcher.dispatch([event(pid, "Checkout Started", t0 + 8 * DAY, checkout_id="c1")])
    again = runs(jruntime, profile_id=pid)
    assert len(again) == 2
    assert again[1].workflow_id == run.workflow_id
    assert await result(time_env, run.workflow_id) == "completed"
    assert len(messages(jruntime, pid)) == 4  # the second entry sends again


async def test_reentry_while_the_previous_run_is_closing_is_retried_not_lost(
    jruntime, worker, dispatcher, time_env
):
    """The previous run has recorded its end in `journey_run` but its workflow has not closed
    yet: the re-entry's start fails, the dispatch raises (the processor retries the event), and
    the retried delivery starts the new run once the id is free."""
    import pytest
    from sqlmodel import Session

    from rejse.journeys.dispatcher import PreviousRunClosing
    from rejse.models.journeys import JourneyRun

    definition = abandoned_cart()
    definition["reentry"] = "after_exit"
    publish(jruntime, definition)
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="c1")])
    [first] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(first.workflow_id)
    await at_step(handle, "wait_1d")
    with Session(jruntime.engine) as s:  # as FINISH_RUN leaves it, a moment before close
        s.get(JourneyRun, first.id).status = "completed"
        s.commit()
    again = event(pid, "Checkout Started", t0, checkout_id="c1")
    with pytest.raises(PreviousRunClosing):
        await dispatcher.dispatch([again])
    await handle.terminate()  # the previous run closes
    await dispatcher.dispatch([again])  # the processor's retry of the same event
    rows = runs(jruntime, profile_id=pid)
    assert sorted((r.entry_no, r.trigger_event_id) for r in rows)[1] == (2, again.event_id)
    latest = time_env.client.get_workflow_handle(first.workflow_id)
    await at_step(latest, "wait_1d")  # the new run of the same workflow id
    assert (await latest.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_new_version_applies_to_new_entries_only(jruntime, worker, dispatcher, time_env):
    v1 = abandoned_cart()
    publish(jruntime, v1)
    old, new = new_profile(jruntime), new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(old, "Checkout Started", t0, checkout_id="c1")])

    v2 = abandoned_cart()
    v2["steps"]["reminder_2"]["template"] = "abandoned_cart/reminder"
    v2["steps"]["wait_1d"]["for"] = "PT12H"
    publish(jruntime, v2, new_version=True)
    await dispatcher.dispatch([event(new, "Checkout Started", t0, checkout_id="c9")])

    [r_old], [r_new] = runs(jruntime, profile_id=old), runs(jruntime, profile_id=new)
    assert (r_old.version, r_new.version) == (1, 2)
    for r in (r_old, r_new):
        assert await result(time_env, r.workflow_id) == "completed"
    assert [(m.template, m.journey_version) for m in messages(jruntime, old)] == [
        ("abandoned_cart/reminder", 1),
        ("abandoned_cart/free_shipping", 1),
    ]
    assert [(m.template, m.journey_version) for m in messages(jruntime, new)] == [
        ("abandoned_cart/reminder", 2),
        ("abandoned_cart/reminder", 2),
    ]


async def test_only_events_a_run_listens_to_are_signalled(jruntime, worker, dispatcher, time_env):
    from temporalio.api.enums.v1 import EventType

    publish(jruntime, abandoned_cart())
    pid = new_profile(jruntime)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", now, checkout_id="c1")])
    await dispatcher.dispatch(
        [
            event(pid, "Product Viewed", now, sku="x"),
            event(pid, "Order Completed", now, checkout_id="zz"),
        ]
    )
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    await at_step(handle, "wait_1d")
    history = await handle.fetch_history()
    signals = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert len(signals) == 1  # the order; not the product view (the trigger is the input)


async def test_runs_follow_a_merged_profile(jruntime, worker, dispatcher, time_env):
    publish(jruntime, abandoned_cart())
    anon, known = new_profile(jruntime), new_profile(jruntime)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(anon, "Checkout Started", now, checkout_id="c1")])
    merged = event(known, "Order Completed", now, checkout_id="c1")
    merged.merged_from = [anon]  # anon logged in as `known`
    await dispatcher.dispatch([merged])
    [run] = runs(jruntime, profile_id=known)
    assert await result(time_env, run.workflow_id) == "converted"
