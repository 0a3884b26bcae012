"""`rejse up` as a real process on free ports with its own data folder: ready within 20 s,
docs and Temporal Web UI answer, Segment's and RudderStack's own SDKs deliver to it unchanged,
SIGINT/SIGTERM stop everything (no orphaned `temporal` child), and Temporal state survives a
restart."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from temporalio.client import Client, WorkflowExecutionStatus

from tests.foundation.procs import RejseUp, alive
from tests.test_sdks import Collect

pytestmark = pytest.mark.e2e


@pytest.fixture
def up(tmp_path):
    instance = RejseUp(tmp_path)
    yield instance
    instance.kill()


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[e2e] {text}")


def assert_stopped_cleanly(up: RejseUp, sig: int) -> None:
    code, kids = up.stop(sig)
    assert code == 0, up.output()
    assert kids, "rejse up should have had a temporal child process"
    assert not [pid for pid in kids if alive(pid)], f"orphaned children: {kids}"


SDKS = {"segment": SegmentClient, "rudderstack": RudderClient}


def sdk_identify_and_track(sdk: str, write_key: str, host: str) -> list[str]:
    """The SDK as a shop's backend uses it: write key and host, everything else its defaults
    (Segment sends plain JSON, RudderStack gzips), except two retries instead of ten, so a
    server that refuses fails this test in seconds instead of minutes of backoff (any retry
    is logged by `backoff` and fails it anyway). Returns the errors the SDK reported."""
    errors: list[str] = []
    client = SDKS[sdk](
        write_key,
        host=host,
        on_error=lambda exc, _: errors.append(repr(exc)),
        max_retries=2,
    )
    sent = [
        client.identify(
            user_id=f"{sdk}-user",
            anonymous_id=f"{sdk}-anon",
            traits={"email": f"{sdk}@example.dk", "first_name": "Mette"},
        ),
        client.track(
            user_id=f"{sdk}-user",
            event="Checkout Started",
            properties={"cart_id": f"{sdk}-cart", "total": 249.0, "currency": "DKK"},
        ),
    ]
    client.flush()
    client.join()
    assert all(ok for ok, _ in sent), sent
    return errors


async def profile_with_events(
    http: httpx.AsyncClient, headers: dict[str, str], user_id: str, count: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wait (at most 20 s) until `rejse up`'s own processor has put `count` events on the
    profile of `user_id`; returns the profile and its events."""
    deadline = time.monotonic() + 20
    while True:
        r = await http.get("/api/profiles/lookup", params={"user_id": user_id}, headers=headers)
        if r.status_code == 200:
            profile = r.json()
            t = await http.get(f"/api/profiles/{profile['id']}/timeline", headers=headers)
            assert t.status_code == 200, t.text
            events = [item["data"] for item in t.json() if item["kind"] == "event"]
            if len(events) >= count:
                return profile, events
        else:
            assert r.status_code == 404, r.text
        assert time.monotonic() < deadline, f"{user_id}: {count} events not processed in 20 s"
        await asyncio.sleep(0.1)


async def check_sdks_deliver(up: RejseUp, admin_key: str) -> None:
    """Both SDKs, unchanged, against the running `rejse up`: identify + track and flush; no
    error, no retry and nothing above debug logged by either SDK; the events land on the
    profile they name, as the API shows it."""
    async with httpx.AsyncClient(base_url=up.api, timeout=10) as http:
        admin = {"Authorization": f"Bearer {admin_key}"}
        r = await http.post("/api/keys", json={"name": "shop", "role": "ingest"}, headers=admin)
        assert r.status_code == 201, r.text
        write_key = r.json()["key"]
        r = await http.post("/api/keys", json={"name": "look", "role": "analyst"}, headers=admin)
        assert r.status_code == 201, r.text
        analyst = {"Authorization": f"Bearer {r.json()['key']}"}

        logs = Collect()
        loggers = [logging.getLogger(name) for name in ("segment", "rudderstack", "backoff")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addHandler(logs)
            logger.setLevel(logging.DEBUG)
        try:
            sent = {
                sdk: await asyncio.to_thread(sdk_identify_and_track, sdk, write_key, up.api)
                for sdk in SDKS
            }
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.removeHandler(logs)
                logger.setLevel(level)
        lines = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in logs.records]
        assert [line for line in lines if " DEBUG: " not in line] == []
        for sdk, errors in sent.items():
            assert errors == [], (sdk, errors)
            # Each SDK's own logger ("segment", "rudderstack") saw its upload succeed.
            assert f"{sdk} DEBUG: data uploaded successfully" in lines, lines
            profile, events = await profile_with_events(http, analyst, f"{sdk}-user", 2)
            assert sorted((e["type"], e["event"]) for e in events) == [
                ("identify", None),
                ("track", "Checkout Started"),
            ]
            assert profile["identifiers"] == {
                "anonymous_id": [f"{sdk}-anon"],
                "user_id": [f"{sdk}-user"],
                "email": [f"{sdk}@example.dk"],
            }
            assert profile["traits"] == {"email": f"{sdk}@example.dk", "first_name": "Mette"}
            track = next(e for e in events if e["type"] == "track")
            assert track["properties"] == {
                "cart_id": f"{sdk}-cart",
                "total": 249.0,
                "currency": "DKK",
            }


async def test_up_serves_api_docs_and_temporal_ui_and_stops_on_sigterm(up, capsys):
    up.start()
    seconds = await asyncio.to_thread(up.wait_ready, 20)
    report(capsys, f"rejse up: /readyz 200 after {seconds:.2f} s")
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{up.api}/docs")).status_code == 200
        assert (await http.get(f"http://127.0.0.1:{up.ui_port}/")).status_code == 200
        # The first start printed a new admin key once; it works.
        key = re.search(r"rjk_[0-9a-f]{8}_\S+", up.stdout_path.read_text()).group(0)
        r = await http.get(f"{up.api}/api/keys", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        assert [k["role"] for k in r.json()] == ["admin"]
        # Software nobody here wrote delivers to it unchanged.
        started = time.monotonic()
        await check_sdks_deliver(up, key)
        report(capsys, f"both SDKs delivered in {time.monotonic() - started:.2f} s")
        # Logged requests carry their request id and never the query string (PII).
        r = await http.get(
            f"{up.api}/api/keys?email=alice%40example.com&name=Alice",
            headers={"X-Request-ID": "e2e-req-1"},
        )
        assert r.status_code == 401
    assert_stopped_cleanly(up, signal.SIGTERM)
    logs = up.stderr_path.read_text()
    assert "e2e-req-1" in logs
    assert '"route": "/api/keys"' in logs
    assert "alice" not in logs.lower()
    assert "example.com" not in logs


async def test_restart_keeps_temporal_state_and_sigint_leaves_no_child(up):
    # This test is about state, not speed: generous waits keep it steady on a busy machine.
    up.start()
    await asyncio.to_thread(up.wait_ready, 60)
    client = await Client.connect(up.temporal_address)
    # A workflow type nobody implements on a queue nobody polls: it simply stays RUNNING.
    await client.start_workflow("Anything", id="e2e-survives-restart", task_queue="nobody")
    assert_stopped_cleanly(up, signal.SIGINT)

    up.start()
    await asyncio.to_thread(up.wait_ready, 60)
    client = await Client.connect(up.temporal_address)
    described = await client.get_workflow_handle("e2e-survives-restart").describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert_stopped_cleanly(up, signal.SIGINT)
