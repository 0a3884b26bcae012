"""`audience_entered` / `audience_left` triggers and `exit_when` on leaving an audience, on the
time-skipping server; publishing refuses audiences that do not exist, naming the field."""

from __future__ import annotations

import copy
from typing import Any

from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.audiences_support import make_audience, membership_event
from tests.journeys.conftest import at_step, event, new_profile, publish, result, runs

WELCOME_VIP: dict[str, Any] = {
    "key": "welcome-vip",
    "name": "Welcome VIP",
    "trigger": {"type": "audience_entered", "audience": "vip"},
    "exit_when": [{"audience_left": "vip"}],
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "for": "P1D", "next": "mark"},
        "mark": {"type": "update_profile", "traits": {"welcomed": True}},
    },
}


def welcome_vip(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(WELCOME_VIP), **changes}


async def test_entering_the_audience_starts_the_run_and_leaving_it_ends_it(
    jruntime, worker, dispatcher, time_env
):
    make_audience(jruntime, "vip")
    make_audience(jruntime, "churners")
    publish(jruntime, welcome_vip())
    now = await time_env.get_current_time()
    vip, churner, tracked = new_profile(jruntime), new_profile(jruntime), new_profile(jruntime)
    await dispatcher.dispatch(
        [
            membership_event(vip, "vip", now),
            membership_event(churner, "churners", now),
            # a tracked event that only bears the name enters no one
            event(tracked, "Audience Entered", now, audience="vip"),
        ]
    )
    assert runs(jruntime, profile_id=churner) == runs(jruntime, profile_id=tracked) == []
    [run] = runs(jruntime, profile_id=vip)
    assert run.workflow_id == f"journey:welcome-vip:{vip}"
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    await at_step(handle, "wait")

    # leaving another audience, or a tracked lookalike, is no goal; leaving vip is
    await dispatcher.dispatch(
        [
            membership_event(vip, "churners", now, entered=False),
            event(vip, "Audience Exited", now, audience="vip"),
        ]
    )
    await at_step(handle, "wait")
    await dispatcher.dispatch([membership_event(vip, "vip", now, entered=False)])
    assert await result(time_env, run.workflow_id) == "converted"


async def test_audience_left_trigger_and_reentry_rules(jruntime, worker, dispatcher, time_env):
    make_audience(jruntime, "vip")
    publish(
        jruntime,
        {
            "key": "win-back",
            "name": "Win back",
            "trigger": {"type": "audience_left", "audience": "vip"},
            "reentry": "never",
            "start": "mark",
            "steps": {"mark": {"type": "update_profile", "traits": {"won_back": True}}},
        },
    )
    now = await time_env.get_current_time()
    pid = new_profile(jruntime)
    await dispatcher.dispatch([membership_event(pid, "vip", now)])
    assert runs(jruntime, profile_id=pid) == []
    await dispatcher.dispatch([membership_event(pid, "vip", now, entered=False)])
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"
    # leaving again: `reentry: never` keeps the profile out, as for event triggers
    await dispatcher.dispatch([membership_event(pid, "vip", now, entered=False)])
    assert len(runs(jruntime, profile_id=pid)) == 1


async def test_publish_refuses_an_audience_that_does_not_exist(client, keys, runtime):
    m = auth(keys[Role.marketer])
    definition = welcome_vip(
        exit_when=[{"event": "Audience Exited", "match": {"properties.audience": "gone"}}],
        steps={
            "check": {
                "type": "branch",
                "if": [
                    {
                        "when": {
                            "all": [
                                {"consent": "email"},
                                {"any": [{"audience": "vip"}, {"audience": "vvip"}]},
                            ]
                        },
                        "next": "wait",
                    }
                ],
            },
            "wait": {
                "type": "wait_for_event",
                "event": "Audience Entered",
                "match": {"properties.audience": "loyal"},
                "timeout": "P1D",
            },
        },
        start="check",
    )
    r = await client.post("/api/journeys", json=definition, headers=m)
    assert r.status_code == 201, r.text  # a draft may name audiences still to be made
    r = await client.post("/api/journeys/welcome-vip/publish", headers=m)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [
        "trigger.audience",
        "exit_when[0].match.properties.audience",
        "steps.check.if[0].when.all[1].any[0].audience",
        "steps.check.if[0].when.all[1].any[1].audience",
        "steps.wait.match.properties.audience",
    ]
    r = await client.get("/api/journeys/welcome-vip", headers=m)
    assert r.json()["status"] == "draft"

    make_audience(runtime, "vip")
    make_audience(runtime, "vvip")
    make_audience(runtime, "loyal")
    r = await client.post("/api/journeys/welcome-vip/publish", headers=m)
    assert [e["field"] for e in r.json()["errors"]] == ["exit_when[0].match.properties.audience"]
    make_audience(runtime, "gone")
    r = await client.post("/api/journeys/welcome-vip/publish", headers=m)
    assert r.status_code == 200, r.text


async def test_a_schedule_on_an_unknown_audience_is_refused(client, keys):
    m = auth(keys[Role.marketer])
    definition = {
        "key": "weekly-vip",
        "name": "Weekly VIP",
        "trigger": {"type": "schedule", "cron": "0 9 * * MON", "audience": "vip"},
        "start": "mark",
        "steps": {"mark": {"type": "update_profile", "traits": {"weekly": True}}},
    }
    assert (await client.post("/api/journeys", json=definition, headers=m)).status_code == 201
    r = await client.post("/api/journeys/weekly-vip/publish", headers=m)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "trigger.audience", "message": "audience 'vip' does not exist"}
    ]


def test_the_exit_shorthand_is_stored_expanded():
    from rejse.journeys.definition import parse_definition

    defn, issues = parse_definition(welcome_vip())
    assert issues == []
    assert defn is not None
    assert defn.dump()["exit_when"] == [
        {"event": "Audience Exited", "match": {"type": "internal", "properties.audience": "vip"}}
    ]


def test_an_audience_key_longer_than_a_key_is_refused_at_create():
    from rejse.journeys.definition import parse_definition

    for trigger in (
        {"type": "audience_entered", "audience": "v" * 65},
        {"type": "schedule", "cron": "0 9 * * *", "audience": "v" * 65},
        {"type": "schedule", "cron": "0 9 * * *", "audience": ""},
    ):
        defn, issues = parse_definition(welcome_vip(trigger=trigger))
        assert defn is None
        assert [i.field for i in issues] == ["trigger.audience"], issues
