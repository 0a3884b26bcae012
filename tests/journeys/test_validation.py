"""Broken definitions are rejected with errors naming the step and field (table-driven)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rejse.contracts import ADD_SCORE, SEND_MESSAGE, START_HANDOFF
from rejse.journeys.definition import check_definition, parse_definition, publish_issues
from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import abandoned_cart


def steps(d: dict[str, Any]) -> dict[str, Any]:
    return d["steps"]


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("start missing", lambda d: d.update(start="nope"), "start", "does not exist"),
    (
        "next missing",
        lambda d: steps(d)["wait_1d"].update(next="reminder_x"),
        "steps.wait_1d.next",
        "'reminder_x' does not exist",
    ),
    (
        "unreachable step",
        lambda d: steps(d).update(orphan={"type": "exit"}),
        "steps.orphan",
        "unreachable",
    ),
    (
        "loop without a wait",
        lambda d: (
            steps(d)["reminder_2"].update(next="again"),
            steps(d).update(
                again={
                    "type": "send",
                    "channel": "email",
                    "template": "abandoned_cart/reminder",
                    "next": "reminder_2",
                }
            ),
        ),
        "steps.reminder_2.next",
        "loop without a wait",
    ),
    (
        "bad duration",
        lambda d: steps(d)["wait_1d"].update({"for": "one day"}),
        "steps.wait_1d.for",
        "ISO-8601",
    ),
    (
        "months refused",
        lambda d: steps(d)["wait_2d"].update({"for": "P1M"}),
        "steps.wait_2d.for",
        "months",
    ),
    (
        "template does not exist",
        lambda d: steps(d)["reminder_1"].update(template="x/none"),
        "steps.reminder_1.template",
        "template 'x/none' does not exist",
    ),
    (
        "unknown step type",
        lambda d: steps(d)["reminder_1"].update(type="fax"),
        "steps.reminder_1",
        "type",
    ),
    (
        "missing template",
        lambda d: steps(d)["reminder_1"].pop("template"),
        "steps.reminder_1.template",
        "required",
    ),
    (
        "unknown field",
        lambda d: steps(d)["reminder_1"].update(subject="hi"),
        "steps.reminder_1.subject",
        "not permitted",
    ),
    (
        "bad channel",
        lambda d: steps(d)["reminder_1"].update(channel="pigeon"),
        "steps.reminder_1.channel",
        "email",
    ),
    (
        "wait needs for or until",
        lambda d: steps(d)["wait_1d"].pop("for"),
        "steps.wait_1d.for",
        "exactly one",
    ),
    (
        "bad time of day",
        lambda d: steps(d)["wait_1d"].update({"until": "25:00", "for": None}),
        "steps.wait_1d.until",
        "time of day",
    ),
    (
        "split without hypothesis",
        lambda d: steps(d).update(
            wait_2d={
                "type": "split",
                "variants": [
                    {"key": "a", "weight": 1, "next": "reminder_2"},
                    {"key": "b", "weight": 1},
                ],
            }
        ),
        "steps.wait_2d.hypothesis",
        "required",
    ),
    (
        "split weight zero",
        lambda d: steps(d).update(
            wait_2d={
                "type": "split",
                "hypothesis": "free shipping converts better",
                "variants": [
                    {"key": "a", "weight": 0, "next": "reminder_2"},
                    {"key": "b", "weight": 1},
                ],
            }
        ),
        "steps.wait_2d.variants[0].weight",
        "greater than 0",
    ),
    (
        "split with one arm",
        lambda d: steps(d).update(
            wait_2d={
                "type": "split",
                "hypothesis": "free shipping converts better",
                "variants": [{"key": "a", "weight": 1, "next": "reminder_2"}],
            }
        ),
        "steps.wait_2d.variants",
        "at least two",
    ),
    (
        "bad branch condition",
        lambda d: steps(d).update(
            wait_2d={
                "type": "branch",
                "if": [
                    {
                        "when": {"trait": "country", "op": "like", "value": "DK"},
                        "next": "reminder_2",
                    }
                ],
            }
        ),
        "steps.wait_2d.if[0].when.op",
        "must be one of",
    ),
    (
        "wait_for_event without timeout",
        lambda d: steps(d).update(
            wait_2d={
                "type": "wait_for_event",
                "event": "Order Completed",
                "on_timeout": "reminder_2",
            }
        ),
        "steps.wait_2d.timeout",
        "required",
    ),
    (
        "bad cooldown",
        lambda d: d.update(reentry={"cooldown": "a week"}),
        "reentry.cooldown",
        "ISO-8601",
    ),
    (
        "bad exit_when template",
        lambda d: d["exit_when"][0]["match"].update(
            {"properties.checkout_id": "{{ profile.email }}"}
        ),
        "exit_when[0].match.properties.checkout_id",
        "trigger",
    ),
    ("bad trigger type", lambda d: d["trigger"].update(type="telepathy"), "trigger", "tag"),
    (
        "bad cron",
        lambda d: d.update(trigger={"type": "schedule", "cron": "every monday"}),
        "trigger.cron",
        "crontab",
    ),
    ("bad key", lambda d: d.update(key="Abandoned Cart!"), "key", "pattern"),
]


def template_exists(key: str, channel: str) -> bool:
    return key.startswith("abandoned_cart/")


@pytest.mark.parametrize(
    ("mutate", "field", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_definition_is_rejected_naming_step_and_field(mutate, field, words):
    data = abandoned_cart()
    mutate(data)
    defn, issues = parse_definition(data)
    if defn is not None:
        issues = check_definition(defn, template_exists=template_exists)
    assert issues, "accepted a broken definition"
    hits = [i for i in issues if i.field == field]
    assert hits, f"no issue for {field}: {[str(i) for i in issues]}"
    assert any(words.lower() in i.message.lower() for i in hits), [str(i) for i in hits]


def test_the_example_is_valid():
    defn, issues = parse_definition(abandoned_cart())
    assert defn is not None
    assert issues == []
    assert check_definition(defn, template_exists=template_exists) == []


def test_loops_with_a_wait_are_fine():
    data = abandoned_cart()
    data["steps"]["reminder_2"]["next"] = "wait_2d"  # a weekly nag: waits in the loop
    defn, _ = parse_definition(data)
    assert defn is not None
    assert check_definition(defn, template_exists=template_exists) == []


def test_publishing_needs_the_activities_of_its_steps():
    data = abandoned_cart()
    data["steps"]["reminder_2"]["next"] = "bump"
    data["steps"]["bump"] = {
        "type": "score",
        "points": 10,
        "reason": "abandoned twice",
        "next": "handoff",
    }
    data["steps"]["handoff"] = {"type": "crm_handoff"}
    defn, _ = parse_definition(data)
    assert defn is not None
    issues = publish_issues(defn, activity_names={SEND_MESSAGE})
    assert {i.field for i in issues} == {"steps.bump.type", "steps.handoff.type"}
    assert "is not installed" in issues[0].message
    assert publish_issues(defn, activity_names={SEND_MESSAGE, ADD_SCORE, START_HANDOFF}) == []


async def test_api_answers_422_naming_step_and_field(client, keys):
    data = abandoned_cart()
    data["steps"]["reminder_1"]["template"] = "abandoned_cart/nope"
    data["steps"]["wait_2d"]["for"] = "soon"
    r = await client.post("/api/journeys", json=data, headers=auth(keys[Role.marketer]))
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"steps.reminder_1.template", "steps.wait_2d.for"}
    assert (
        "steps.reminder_1.template: template 'abandoned_cart/nope' does not exist"
        in r.json()["detail"]
    )
    r = await client.get("/api/journeys", headers=auth(keys[Role.marketer]))
    assert r.json() == []  # nothing half-written
    r = await client.post("/api/journeys", json=[1, 2], headers=auth(keys[Role.marketer]))
    assert r.status_code == 422
