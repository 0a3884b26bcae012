"""`exit_when` goals on the time-skipping server: a goal's `match` sees the same event data as a
trigger's, the event's `type` included."""

from __future__ import annotations

from typing import Any

from tests.journeys.conftest import at_step, event, new_profile, publish, result, runs

TRACKED_ORDER_ENDS_IT: dict[str, Any] = {
    "key": "tracked-order-ends-it",
    "name": "Tracked order ends it",
    "trigger": {"type": "event", "event": "Checkout Started", "match": {"type": "track"}},
    "entry_key": "properties.checkout_id",
    "exit_when": [
        {
            "event": "Order Completed",
            "match": {
                "type": "track",
                "properties.checkout_id": "{{ trigger.properties.checkout_id }}",
            },
        }
    ],
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "for": "P1D", "next": "mark"},
        "mark": {"type": "update_profile", "traits": {"reminded": True}},
    },
}


async def test_a_goal_matching_on_the_event_type_converts_the_run(
    jruntime, worker, dispatcher, time_env
):
    publish(jruntime, TRACKED_ORDER_ENDS_IT)
    now = await time_env.get_current_time()
    tracked, internal = new_profile(jruntime), new_profile(jruntime)
    for pid in (tracked, internal):
        await dispatcher.dispatch([event(pid, "Checkout Started", now, checkout_id="k1")])
    [tracked_run] = runs(jruntime, profile_id=tracked)
    [internal_run] = runs(jruntime, profile_id=internal)
    for run in (tracked_run, internal_run):
        await at_step(time_env.client.get_workflow_handle(run.workflow_id), "wait")

    await dispatcher.dispatch([event(tracked, "Order Completed", now, checkout_id="k1")])
    # the same name with another type is no goal: that run waits its day out
    other_type = event(internal, "Order Completed", now, checkout_id="k1")
    await dispatcher.dispatch([other_type.model_copy(update={"type": "internal"})])

    assert await result(time_env, tracked_run.workflow_id) == "converted"
    assert await result(time_env, internal_run.workflow_id) == "completed"
