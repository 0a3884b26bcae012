"""Journeys read audiences: a branch on `{"audience": key}` sees live membership (the member
takes the member path, the non-member the other), and `wait_for_event` waits for a profile to
enter an audience."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from rejse.models.profiles import Profile
from tests.journeys.audiences_support import make_audience, membership_event
from tests.journeys.conftest import at_step, event, new_profile, publish, result, runs

VIP_BRANCH: dict[str, Any] = {
    "key": "vip-branch",
    "name": "VIP branch",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "start": "check",
    "steps": {
        "check": {
            "type": "branch",
            "if": [{"when": {"all": [{"audience": "vip"}]}, "next": "vip"}],
            "else": "regular",
        },
        "vip": {"type": "update_profile", "traits": {"path": "vip"}},
        "regular": {"type": "update_profile", "traits": {"path": "regular"}},
    },
}


def trait(runtime, profile_id: str, name: str) -> Any:
    with Session(runtime.engine) as s:
        profile = s.get(Profile, profile_id)
        assert profile is not None
        return profile.traits.get(name)


async def test_a_branch_on_an_audience_takes_the_member_and_the_non_member_path(
    jruntime, worker, dispatcher, time_env
):
    member, other = new_profile(jruntime), new_profile(jruntime)
    make_audience(jruntime, "vip", members=[member])
    publish(jruntime, VIP_BRANCH)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", now) for pid in (member, other)])
    for pid in (member, other):
        [run] = runs(jruntime, profile_id=pid)
        assert await result(time_env, run.workflow_id) == "completed"
    assert trait(jruntime, member, "path") == "vip"
    assert trait(jruntime, other, "path") == "regular"


async def test_wait_for_event_waits_for_the_audience_entry(jruntime, worker, dispatcher, time_env):
    make_audience(jruntime, "vip")
    publish(
        jruntime,
        {
            "key": "wait-for-vip",
            "name": "Wait for VIP",
            "trigger": {"type": "event", "event": "Signed Up"},
            "start": "wait",
            "steps": {
                "wait": {
                    "type": "wait_for_event",
                    "event": "Audience Entered",
                    "match": {"properties.audience": "vip"},
                    "timeout": "P7D",
                    "on_event": "vip",
                    "on_timeout": "regular",
                },
                "vip": {"type": "update_profile", "traits": {"path": "vip"}},
                "regular": {"type": "update_profile", "traits": {"path": "regular"}},
            },
        },
    )
    now = await time_env.get_current_time()
    pid = new_profile(jruntime)
    await dispatcher.dispatch([event(pid, "Signed Up", now)])
    [run] = runs(jruntime, profile_id=pid)
    await at_step(time_env.client.get_workflow_handle(run.workflow_id), "wait")
    await dispatcher.dispatch(
        [membership_event(pid, "churners", now), membership_event(pid, "vip", now)]
    )
    assert await result(time_env, run.workflow_id) == "completed"
    assert trait(jruntime, pid, "path") == "vip"
