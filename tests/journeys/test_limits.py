"""Journey size limits through the API: too many steps, conditions nested too deep or too big,
JSON nested too deep anywhere, too many bytes. Each is a 422 naming the field and the limit, on
create and on a new version, and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest

from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import abandoned_cart

SEND = {"type": "send", "channel": "email", "template": "abandoned_cart/reminder"}


def chain(n: int) -> dict[str, Any]:
    """A journey of `n` send steps in a row."""
    steps = {f"s{i}": {**SEND, "next": f"s{i + 1}"} for i in range(n)}
    del steps[f"s{n - 1}"]["next"]
    return {
        "key": "big",
        "name": "big",
        "trigger": {"type": "manual"},
        "start": "s0",
        "steps": steps,
    }


def branching(when: dict[str, Any], key: str = "deep") -> dict[str, Any]:
    return {
        "key": key,
        "name": key,
        "trigger": {"type": "manual"},
        "start": "b",
        "steps": {
            "b": {"type": "branch", "if": [{"when": when, "next": "x"}], "else": "x"},
            "x": {"type": "exit"},
        },
    }


def nested_not(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"trait": "country", "op": "eq", "value": "DK"}
    for _ in range(depth - 1):
        cond = {"not": cond}
    return cond


async def refused(client, keys, definition: dict[str, Any]) -> dict[str, Any]:
    m = auth(keys[Role.marketer])
    r = await client.post("/api/journeys", json=definition, headers=m)
    assert r.status_code == 422, r.text[:500]
    assert (await client.get(f"/api/journeys/{definition['key']}", headers=m)).status_code == 404
    return r.json()


async def test_ten_thousand_steps_are_refused_naming_the_limit(client, keys):
    body = await refused(client, keys, chain(10_000))
    [error] = body["errors"]
    assert error["field"] == "steps"
    assert "at most 500 steps" in error["message"]
    assert "10,000" in error["message"]


async def test_five_hundred_steps_are_accepted(client, keys):
    r = await client.post("/api/journeys", json=chain(500), headers=auth(keys[Role.marketer]))
    assert r.status_code == 201, r.text[:500]


async def test_a_condition_nested_900_deep_is_refused_naming_its_field(client, keys):
    body = await refused(client, keys, branching(nested_not(900)))
    [error] = body["errors"]
    assert error["field"] == "steps.b.if[0].when"
    assert "at most 32 levels" in error["message"]


async def test_condition_depth_and_node_limits(client, keys):
    m = auth(keys[Role.marketer])
    r = await client.post("/api/journeys", json=branching(nested_not(32), "ok"), headers=m)
    assert r.status_code == 201, r.text[:500]
    await refused(client, keys, branching(nested_not(33)))
    leaf = {"trait": "country", "op": "eq", "value": "DK"}
    wide = {"any": [leaf] * 1_001}
    body = await refused(client, keys, branching(wide, "wide"))
    assert body["errors"][0]["field"] == "steps.b.if[0].when"
    assert "at most 1,000 conditions" in body["errors"][0]["message"]


@pytest.mark.parametrize("depth", [150, 900])
async def test_json_nested_too_deep_anywhere_is_refused(client, keys, depth):
    # written by hand: the client's own JSON encoder stops at its recursion limit
    nested = '{"a": ' * depth + '"x"' + "}" * depth
    text = (
        '{"key": "deep-body", "name": "deep body", "trigger": {"type": "manual"}, '
        '"start": "hook", "steps": {"hook": {"type": "webhook", '
        f'"url": "https://hooks.example/h", "body": {nested}}}}}}}'
    )
    m = auth(keys[Role.marketer])
    r = await client.post(
        "/api/journeys", content=text, headers={**m, "Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text[:500]
    [error] = r.json()["errors"]
    assert error["field"] == "steps.hook.body.a.a"
    assert "deeper than 100 levels" in error["message"]
    assert (await client.get("/api/journeys/deep-body", headers=m)).status_code == 404


async def test_a_definition_over_the_byte_limit_is_refused(client, keys):
    definition = {
        "key": "fat",
        "name": "fat",
        "trigger": {"type": "manual"},
        "start": "hook",
        "steps": {
            "hook": {
                "type": "webhook",
                "url": "https://hooks.example/h",
                "body": {"x": "y" * 300_000},
            }
        },
    }
    body = await refused(client, keys, definition)
    assert body["errors"][0]["field"] == "definition"
    assert "at most 262,144 bytes" in body["errors"][0]["message"]


async def test_a_new_version_is_held_to_the_same_limits(client, keys):
    m = auth(keys[Role.marketer])
    r = await client.post("/api/journeys", json=abandoned_cart(), headers=m)
    assert r.status_code == 201
    big = {**chain(600), "key": "abandoned-cart"}
    r = await client.put("/api/journeys/abandoned-cart", json=big, headers=m)
    assert r.status_code == 422, r.text[:500]
    assert r.json()["errors"][0]["field"] == "steps"
    r = await client.get("/api/journeys/abandoned-cart", headers=m)
    assert [v["version"] for v in r.json()["versions"]] == [1]
