"""The A/B programme on runs the journey worker made: two split steps in one journey (the
second reached only by runs that did not convert at the first), a holdout that waits out its
window, conversions by the journey's goal; each arm's figures equal what the assignment and the
orders say."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from rejse.journeys.definition import SplitStep
from rejse.journeys.split import HOLDOUT, assign
from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import (  # noqa: F401  # fixtures
    at_step,
    dispatcher,
    event,
    jruntime,
    new_profile,
    publish,
    result,
    runs,
    worker,
)


async def ended(handle, attempts: int = 300) -> None:
    for _ in range(attempts):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id} still runs")


JOURNEY: dict[str, Any] = {
    "key": "ab-e2e",
    "name": "Two tests in a row",
    "trigger": {"type": "manual"},
    "exit_when": [{"event": "Order Completed"}],
    "start": "subject",
    "steps": {
        "subject": {
            "type": "split",
            "hypothesis": "a short subject line gets more orders",
            "variants": [
                {"key": "short", "weight": 1, "next": "wait_a"},
                {"key": "long", "weight": 1, "next": "wait_a"},
            ],
            "holdout": {"weight": 1, "window": "P1D"},
        },
        "wait_a": {"type": "wait", "for": "PT1H", "next": "offer"},
        "offer": {
            "type": "split",
            "hypothesis": "free shipping beats 10 % off",
            "variants": [
                {"key": "ten", "weight": 1, "next": "wait_b"},
                {"key": "free", "weight": 1, "next": "wait_b"},
            ],
        },
        "wait_b": {"type": "wait", "for": "P1D", "next": "done"},
        "done": {"type": "update_profile", "traits": {"ab_done": True}},
    },
}


async def test_every_split_step_counts_its_own_arms(
    jruntime,  # noqa: F811
    worker,  # noqa: F811
    dispatcher,  # noqa: F811
    client,
    keys,
    time_env,
):
    publish(jruntime, JOURNEY)
    subject = SplitStep.model_validate(JOURNEY["steps"]["subject"])
    offer = SplitStep.model_validate(JOURNEY["steps"]["offer"])
    pids = [new_profile(jruntime) for _ in range(12)]
    arm1 = {p: assign(subject, journey_key="ab-e2e", step_id="subject", profile_id=p) for p in pids}
    arm2 = {p: assign(offer, journey_key="ab-e2e", step_id="offer", profile_id=p) for p in pids}
    for p in pids:
        r = await client.post(
            "/api/journeys/ab-e2e/enter",
            headers=auth(keys[Role.marketer]),
            json={"profile_id": p},
        )
        assert r.status_code == 201, r.text
    handles = {
        p: time_env.client.get_workflow_handle(runs(jruntime, profile_id=p)[0].workflow_id)
        for p in pids
    }

    # the first third of each arm (holdout included) orders while it waits after the first split
    first: set[str] = set()
    for key in ("short", "long", HOLDOUT):
        members = [p for p in pids if arm1[p] == key]
        first |= set(members[: max(1, len(members) // 3)] if members else [])
    now = await time_env.get_current_time()
    for p in pids:
        await at_step(handles[p], "subject" if arm1[p] == HOLDOUT else "wait_a")
    await dispatcher.dispatch([event(p, "Order Completed", now) for p in sorted(first)])
    for p in first:  # (without skipping time: the others stay where they wait)
        await ended(handles[p])

    # the rest of the treated reach the second split; every other one orders after it
    second_split = [p for p in pids if p not in first and arm1[p] != HOLDOUT]
    await time_env.sleep(3700)
    for p in second_split:
        await at_step(handles[p], "wait_b")
    second = set(second_split[::2])
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(p, "Order Completed", now) for p in sorted(second)])
    outcomes = {p: await result(time_env, handles[p].id) for p in pids}
    converted = first | second
    assert {p for p, o in outcomes.items() if o == "converted"} == converted

    def expected(arm_of: dict[str, str], entered: list[str]) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for p in entered:
            n, c = out.get(arm_of[p], (0, 0))
            out[arm_of[p]] = (n + 1, c + (p in converted))
        return out

    h = auth(keys[Role.analyst])
    one = (await client.get("/api/experiments/ab-e2e/subject", headers=h)).json()
    two = (await client.get("/api/experiments/ab-e2e/offer", headers=h)).json()
    got1 = {a["key"]: (a["entered"], a["converted"]) for a in one["arms"] if a["entered"]}
    got2 = {a["key"]: (a["entered"], a["converted"]) for a in two["arms"] if a["entered"]}
    assert got1 == expected(arm1, pids)
    assert got2 == expected(arm2, second_split)
    assert one["hypothesis"] == "a short subject line gets more orders"
    assert two["hypothesis"] == "free shipping beats 10 % off"
    assert one["holdout_lift"]["holdout"] == sum(1 for p in pids if arm1[p] == HOLDOUT)
    listed = (await client.get("/api/experiments", headers=h)).json()["experiments"]
    assert [(e["journey"], e["step"], e["status"]) for e in listed] == [
        ("ab-e2e", "offer", "running"),
        ("ab-e2e", "subject", "running"),
    ]
