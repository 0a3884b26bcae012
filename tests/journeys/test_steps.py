"""Step types, lifecycle and erasure on the time-skipping server, through the API and the
dispatcher, with the real worker (journey workflow + every registered activity)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus

from rejse.journeys.dispatcher import JourneyEraser
from rejse.models.journeys import JourneyStep
from rejse.profiles.service import load_snapshot
from rejse.roles import Role
from tests.conftest import auth
from tests.journeys.conftest import at_step, event, messages, new_profile, publish, result, runs

SEND = {"type": "send", "channel": "email", "template": "abandoned_cart/reminder"}


def journey(
    key: str, steps: dict[str, Any], *, start: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "name": key.replace("-", " "),
        "trigger": {"type": "manual"},
        "start": start or next(iter(steps)),
        "steps": steps,
        **extra,
    }


async def enter(client, keys, key: str, profile_id: str, **properties: Any) -> dict[str, Any]:
    r = await client.post(
        f"/api/journeys/{key}/enter",
        headers=auth(keys[Role.marketer]),
        json={"profile_id": profile_id, "properties": properties},
    )
    assert r.status_code == 201, r.text
    return r.json()


def traits(runtime, pid: str) -> dict[str, Any]:
    with Session(runtime.engine) as s:
        snap = load_snapshot(s, profile_id=pid)
        assert snap is not None
        return snap.traits


WAIT_FOR_ORDER = {
    "key": "order-followup",
    "name": "Order follow-up",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "entry_key": "properties.checkout_id",
    "start": "await_order",
    "steps": {
        "await_order": {
            "type": "wait_for_event",
            "event": "Order Completed",
            "match": {"properties.checkout_id": "{{ trigger.properties.checkout_id }}"},
            "timeout": "P2D",
            "on_event": "thanks",
            "on_timeout": "nudge",
        },
        "thanks": {"type": "update_profile", "traits": {"followup": "thanks"}},
        "nudge": {"type": "update_profile", "traits": {"followup": "nudge"}},
    },
}


async def test_wait_for_event_takes_on_event_for_the_matching_event(
    jruntime, worker, dispatcher, time_env
):
    publish(jruntime, WAIT_FOR_ORDER)
    pid = new_profile(jruntime)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", now, checkout_id="k1")])
    await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="other")])
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    await at_step(handle, "await_order")
    await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="k1")])
    assert await result(time_env, run.workflow_id) == "completed"
    assert traits(jruntime, pid)["followup"] == "thanks"


async def test_wait_for_event_matches_on_the_event_type(jruntime, worker, dispatcher, time_env):
    definition = copy.deepcopy(WAIT_FOR_ORDER)
    definition["key"] = "tracked-order-followup"
    definition["steps"]["await_order"]["match"]["type"] = "track"
    publish(jruntime, definition)
    pid = new_profile(jruntime)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", now, checkout_id="k1")])
    [run] = runs(jruntime, profile_id=pid)
    await at_step(time_env.client.get_workflow_handle(run.workflow_id), "await_order")
    await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="k1")])
    assert await result(time_env, run.workflow_id) == "completed"
    assert traits(jruntime, pid)["followup"] == "thanks"


async def test_wait_for_event_times_out_to_on_timeout(jruntime, worker, dispatcher, time_env):
    publish(jruntime, WAIT_FOR_ORDER)
    pid = new_profile(jruntime)
    t0 = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", t0, checkout_id="k1")])
    [run] = runs(jruntime, profile_id=pid)
    assert await result(time_env, run.workflow_id) == "completed"
    assert traits(jruntime, pid)["followup"] == "nudge"
    with Session(jruntime.engine) as s:
        nudge = s.exec(
            select(JourneyStep).where(JourneyStep.run_id == run.id, JourneyStep.step_id == "nudge")
        ).one()
    assert abs(nudge.at - t0 - dt.timedelta(days=2)) < dt.timedelta(minutes=5)


async def test_branch_on_trait_and_exit(jruntime, worker, client, keys, time_env):
    definition = journey(
        "by-country",
        {
            "route": {
                "type": "branch",
                "if": [{"when": {"trait": "country", "op": "eq", "value": "DK"}, "next": "dk"}],
                "else": "elsewhere",
            },
            "dk": {"type": "update_profile", "traits": {"route": "dk"}, "next": "stop"},
            "stop": {"type": "exit"},
            "elsewhere": {"type": "update_profile", "traits": {"route": "other"}},
        },
    )
    publish(jruntime, definition)
    dk = new_profile(jruntime, traits={"country": "DK"})
    se = new_profile(jruntime, traits={"country": "SE"})
    runs_ = [await enter(client, keys, "by-country", p) for p in (dk, se)]
    assert [await result(time_env, r["workflow_id"]) for r in runs_] == ["exited", "completed"]
    assert traits(jruntime, dk)["route"] == "dk"
    assert traits(jruntime, se)["route"] == "other"


async def test_wait_until_a_time_of_day_in_the_profiles_zone(
    jruntime, worker, client, keys, time_env
):
    publish(
        jruntime,
        journey(
            "morning",
            {
                "nine": {"type": "wait", "until": "09:00", "next": "mark"},
                "mark": {"type": "update_profile", "traits": {"woke": True}},
            },
        ),
    )
    pid = new_profile(jruntime, timezone="America/New_York")
    started = await time_env.get_current_time()
    run = await enter(client, keys, "morning", pid)
    assert await result(time_env, run["workflow_id"]) == "completed"
    with Session(jruntime.engine) as s:
        mark = s.exec(
            select(JourneyStep).where(
                JourneyStep.run_id == run["run_id"], JourneyStep.step_id == "mark"
            )
        ).one()
    local = mark.at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert dt.timedelta(0) < mark.at - started <= dt.timedelta(days=1)


async def test_split_is_deterministic_and_stats_compare_variants(
    jruntime, worker, client, keys, time_env
):
    from rejse.journeys.definition import SplitStep
    from rejse.journeys.split import assign

    definition = journey(
        "ab",
        {
            "split": {
                "type": "split",
                "hypothesis": "a second nudge lifts conversion",
                "variants": [
                    {"key": "control", "weight": 1, "next": "a"},
                    {"key": "nudge", "weight": 1, "next": "b"},
                ],
                "holdout": {"weight": 1, "window": "PT1H"},
            },
            "a": {"type": "update_profile", "traits": {"arm": "control"}},
            "b": {"type": "update_profile", "traits": {"arm": "nudge"}},
        },
    )
    publish(jruntime, definition)
    step = SplitStep.model_validate(definition["steps"]["split"])
    pids = [new_profile(jruntime) for _ in range(6)]
    entered = [await enter(client, keys, "ab", p) for p in pids]
    for r in entered:
        await result(time_env, r["workflow_id"])
    for pid in pids:
        expected = assign(step, journey_key="ab", step_id="split", profile_id=pid)
        [run] = runs(jruntime, profile_id=pid)
        assert run.variant == expected
        if expected != "holdout":
            assert traits(jruntime, pid)["arm"] == expected
    r = await client.get("/api/journeys/ab/stats", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["runs"] == 6
    assert body["steps"]["split"]["entered"] == 6
    assert body["variants"]["hypothesis"] == "a second nudge lifts conversion"
    assert sum(a["runs"] for a in body["variants"]["arms"].values()) == 6


@contextmanager
def hook_server(on_post: Callable[[dict[str, str], bytes], None]) -> Iterator[str]:
    """A local webhook receiver: calls `on_post(headers, body)` per POST, answers 204;
    yields its URL."""

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            on_post(dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()


async def test_webhook_step_posts_signed_json(
    jruntime, private_webhooks, worker, client, keys, time_env
):
    got: list[tuple[dict[str, str], bytes]] = []
    with hook_server(lambda headers, body: got.append((headers, body))) as url:
        publish(
            jruntime,
            journey(
                "hook",
                {"call": {"type": "webhook", "url": url, "body": {"offer": "free-shipping"}}},
            ),
        )
        pid = new_profile(jruntime)
        run = await enter(client, keys, "hook", pid, checkout_id="k1")
        assert await result(time_env, run["workflow_id"]) == "completed"
    [(headers, body)] = got
    t, v1 = (p.split("=", 1)[1] for p in headers["X-Rejse-Signature"].split(","))
    secret = jruntime.settings.secret_key.encode()
    assert hmac.compare_digest(
        v1, hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    )
    assert headers["Idempotency-Key"] == f"{run['workflow_id']}:call"
    payload = json.loads(body)
    assert payload["data"] == {"offer": "free-shipping"}
    assert payload["profile_id"] == pid
    assert "@" not in body.decode()  # no email in the payload


async def test_pause_holds_runs_and_new_entries_resume_continues(
    jruntime, worker, client, keys, dispatcher, time_env
):
    definition = journey(
        "paused",
        {"wait": {"type": "wait", "for": "PT1H", "next": "mail"}, "mail": SEND},
        trigger={"type": "event", "event": "Checkout Started"},
    )
    publish(jruntime, definition)
    pid = new_profile(jruntime)
    now = await time_env.get_current_time()
    await dispatcher.dispatch([event(pid, "Checkout Started", now)])
    [run] = runs(jruntime, profile_id=pid)
    handle = time_env.client.get_workflow_handle(run.workflow_id)
    await at_step(handle, "wait")

    r = await client.post("/api/journeys/paused/pause", headers=auth(keys[Role.marketer]))
    assert r.status_code == 200
    assert r.json()["status"] == "paused"
    assert r.json()["runs_told"] == 1
    await time_env.sleep(dt.timedelta(hours=3))
    assert messages(jruntime, pid) == []  # held before its next step
    assert (await handle.query("state"))["paused"] is True
    [run] = runs(jruntime, profile_id=pid)
    assert run.status == "held"
    assert run.current_step == "mail"

    other = new_profile(jruntime)
    await dispatcher.dispatch([event(other, "Checkout Started", now)])
    assert runs(jruntime, profile_id=other) == []  # no new entries while paused
    r = await client.post(
        "/api/journeys/paused/enter", headers=auth(keys[Role.marketer]), json={"profile_id": other}
    )
    assert r.status_code == 409

    r = await client.post("/api/journeys/paused/resume", headers=auth(keys[Role.marketer]))
    assert r.status_code == 200
    assert r.json()["status"] == "published"
    assert await result(time_env, run.workflow_id) == "completed"
    assert [m.template for m in messages(jruntime, pid)] == ["abandoned_cart/reminder"]


async def test_archive_cancels_running_runs(jruntime, worker, client, keys, time_env):
    publish(
        jruntime,
        journey("old", {"wait": {"type": "wait", "for": "P1D", "next": "mail"}, "mail": SEND}),
    )
    pid = new_profile(jruntime)
    run = await enter(client, keys, "old", pid)
    handle = time_env.client.get_workflow_handle(run["workflow_id"])
    await at_step(handle, "wait")
    r = await client.post("/api/journeys/old/archive", headers=auth(keys[Role.marketer]))
    assert r.status_code == 200
    assert r.json()["runs_told"] == 1
    status = None
    for _ in range(200):
        status = (await handle.describe()).status
        if status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.02)
    assert status == WorkflowExecutionStatus.CANCELED
    [row] = runs(jruntime, profile_id=pid)
    assert row.status == "cancelled"
    assert messages(jruntime, pid) == []
    r = await client.post("/api/journeys/old/publish", headers=auth(keys[Role.marketer]))
    assert r.status_code == 409


async def test_erasing_a_profile_deletes_its_runs_and_stops_its_workflows(
    jruntime, worker, client, keys, time_env
):
    publish(
        jruntime,
        journey("erase-me", {"wait": {"type": "wait", "for": "P1D", "next": "mail"}, "mail": SEND}),
    )
    pid = new_profile(jruntime)
    run = await enter(client, keys, "erase-me", pid)
    handle = time_env.client.get_workflow_handle(run["workflow_id"])
    await at_step(handle, "wait")
    eraser = JourneyEraser(jruntime)
    with Session(jruntime.engine) as s:
        eraser.erase(s, pid)
        s.commit()
    await eraser.cancel_running(pid)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert runs(jruntime, profile_id=pid) == []
    with Session(jruntime.engine) as s:
        assert s.exec(select(JourneyStep).where(JourneyStep.run_id == run["run_id"])).all() == []


async def test_a_send_in_quiet_hours_is_held_until_they_end(
    jruntime, worker, client, keys, time_env
):
    jruntime.settings.message_quiet_hours = {"email": "21:00-08:00"}
    publish(
        jruntime,
        journey("late", {"late": {"type": "wait", "until": "22:00", "next": "mail"}, "mail": SEND}),
    )
    pid = new_profile(jruntime, timezone="Europe/Copenhagen")
    run = await enter(client, keys, "late", pid)
    assert await result(time_env, run["workflow_id"]) == "completed"
    [sent] = messages(jruntime, pid)
    local = sent.sent_at.astimezone(ZoneInfo("Europe/Copenhagen"))
    assert sent.status == "sent"
    assert (local.hour, local.minute) == (8, 0)


async def test_wait_for_event_counts_an_event_that_arrives_during_the_step_before(
    jruntime, private_webhooks, worker, dispatcher, time_env
):
    """The order comes while the webhook step before the wait is still in flight: it happened
    after the customer entered, so `wait_for_event` takes `on_event` (it used to be missed)."""
    in_call, release = threading.Event(), threading.Event()

    def hold(headers: dict[str, str], body: bytes) -> None:
        in_call.set()
        release.wait(10)

    with hook_server(hold) as url:
        try:
            definition = copy.deepcopy(WAIT_FOR_ORDER)
            definition["key"] = "call-then-wait"
            definition["start"] = "call"
            definition["steps"]["call"] = {"type": "webhook", "next": "await_order", "url": url}
            publish(jruntime, definition)
            pid = new_profile(jruntime)
            now = await time_env.get_current_time()
            await dispatcher.dispatch([event(pid, "Checkout Started", now, checkout_id="k1")])
            assert await asyncio.to_thread(in_call.wait, 10)
            [run] = runs(jruntime, profile_id=pid)
            await dispatcher.dispatch([event(pid, "Order Completed", now, checkout_id="k1")])
            handle = time_env.client.get_workflow_handle(run.workflow_id)
            for _ in range(100):  # the signal is in the history before the call returns
                if any(
                    e.HasField("workflow_execution_signaled_event_attributes")
                    for e in (await handle.fetch_history()).events
                ):
                    break
                await asyncio.sleep(0.02)
            release.set()
            assert await result(time_env, run.workflow_id) == "completed"
        finally:  # never leave the receiver holding a request
            release.set()
    assert traits(jruntime, pid)["followup"] == "thanks"
