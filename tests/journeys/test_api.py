"""The journeys API: versions, lifecycle answers, runs, stats, diagram, bad input."""

from __future__ import annotations

from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import abandoned_cart, new_profile, result


async def test_versions_publish_and_read(client, keys):
    m, a = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    r = await client.post("/api/journeys", json=abandoned_cart(), headers=m)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["version"]) == ("draft", 1)
    assert (await client.post("/api/journeys", json=abandoned_cart(), headers=m)).status_code == 409

    r = await client.post("/api/journeys/abandoned-cart/publish", headers=m)
    assert r.status_code == 200
    assert r.json()["published_version"] == 1

    v2 = abandoned_cart()
    v2["steps"]["wait_1d"]["for"] = "PT12H"
    r = await client.put("/api/journeys/abandoned-cart", json=v2, headers=m)
    assert r.status_code == 200
    assert r.json()["version"] == 2
    assert r.json()["published_version"] == 1  # a new version is a draft
    wrong = {**v2, "key": "other"}
    r = await client.put("/api/journeys/abandoned-cart", json=wrong, headers=m)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "key"

    r = await client.get("/api/journeys/abandoned-cart?version=1", headers=a)
    assert r.json()["definition"]["steps"]["wait_1d"]["for"] == "P1D"
    assert [v["version"] for v in r.json()["versions"]] == [1, 2]
    r = await client.get("/api/journeys/abandoned-cart", headers=a)
    assert r.json()["definition"]["steps"]["wait_1d"]["for"] == "PT12H"
    assert (
        await client.get("/api/journeys/abandoned-cart?version=9", headers=a)
    ).status_code == 404
    r = await client.post("/api/journeys/abandoned-cart/publish", json={"version": 2}, headers=m)
    assert r.json()["published_version"] == 2
    r = await client.get("/api/journeys?status=published", headers=a)
    assert [j["key"] for j in r.json()] == ["abandoned-cart"]
    assert (await client.put("/api/journeys/abandoned-cart", json=v2, headers=a)).status_code == 403

    r = await client.get("/api/journeys/abandoned-cart/diagram", headers=a)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("flowchart TD")
    assert "wait PT12H" in r.text
    assert "abandoned_cart/free_shipping" in r.text
    assert "goal: Order Completed" in r.text


async def test_lifecycle_rules_and_bad_input(client, keys):
    m = auth(keys[Role.marketer])
    await client.post("/api/journeys", json=abandoned_cart(), headers=m)
    r = await client.post("/api/journeys/abandoned-cart/pause", headers=m)
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "status"
    r = await client.post(
        "/api/journeys/abandoned-cart/enter", headers=m, json={"profile_id": "prf_nobody"}
    )
    assert r.status_code == 409  # not published
    assert (await client.post("/api/journeys/nope/publish", headers=m)).status_code == 404
    r = await client.get("/api/journeys/abandoned-cart/runs?status=sleeping", headers=m)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "status"
    r = await client.post("/api/journeys/abandoned-cart/enter", headers=m, json={})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "profile_id"


async def test_manual_entry_runs_and_stats(jruntime, worker, client, keys, time_env):
    m, a = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    await client.post("/api/journeys", json=abandoned_cart(), headers=m)
    await client.post("/api/journeys/abandoned-cart/publish", headers=m)
    r = await client.post(
        "/api/journeys/abandoned-cart/enter", headers=m, json={"profile_id": "prf_unknown"}
    )
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "profile_id"

    pid = new_profile(jruntime)
    body = {"profile_id": pid, "properties": {"checkout_id": "m1"}, "idempotency_key": "k1"}
    r = await client.post("/api/journeys/abandoned-cart/enter", headers=m, json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    again = await client.post("/api/journeys/abandoned-cart/enter", headers=m, json=body)
    assert again.status_code == 201
    assert again.json()["run_id"] == run["run_id"]
    assert await result(time_env, run["workflow_id"]) == "completed"

    r = await client.get(f"/api/journeys/abandoned-cart/runs?profile_id={pid}", headers=a)
    [row] = r.json()
    assert (row["status"], row["current_step"], row["version"]) == ("completed", "reminder_2", 1)
    r = await client.get("/api/journeys/abandoned-cart/stats", headers=a)
    steps = r.json()["steps"]
    assert list(steps) == ["wait_1d", "reminder_1", "wait_2d", "reminder_2"]
    assert steps["reminder_1"] == {
        "entered": 1,
        "waiting": 0,
        "sent": 1,
        "converted": 0,
        "exited": 0,
    }
    assert steps["reminder_2"]["exited"] == 1
    assert steps["reminder_2"]["sent"] == 1

    r = await client.get(f"/api/profiles/{pid}/timeline", headers=a)
    if r.status_code == 200:  # the profiles API shows our step entries
        assert "journey_step" in r.text


async def test_manual_entry_without_temporal_is_503_and_retry_safe(runtime, client, keys):
    from rejse.temporal import TemporalConnector

    runtime.settings.temporal_address = "127.0.0.1:1"  # nothing listens there
    runtime.temporal = TemporalConnector(runtime.settings)
    m = auth(keys[Role.marketer])
    await client.post("/api/journeys", json=abandoned_cart(), headers=m)
    await client.post("/api/journeys/abandoned-cart/publish", headers=m)
    pid = new_profile(runtime)
    body = {"profile_id": pid, "properties": {"checkout_id": "x"}, "idempotency_key": "k"}
    r = await client.post("/api/journeys/abandoned-cart/enter", headers=m, json=body)
    assert r.status_code == 503
    assert r.json()["errors"][0]["field"] == "idempotency_key"
    r = await client.post("/api/journeys/abandoned-cart/pause", headers=m)
    assert r.status_code == 200
    assert r.json()["runs_told"] == 0
