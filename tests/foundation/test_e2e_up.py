"""`rejse up` as a real process on free ports with its own data folder: ready within 20 s,
docs and Temporal Web UI answer, Segment's and RudderStack's own SDKs deliver to it unchanged,
SIGINT/SIGTERM stop everything (no orphaned `temporal` child), and Temporal state survives a
restart."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from temporalio.client import Client, WorkflowExecutionStatus

from tests.foundation.procs import REPO, RejseUp, alive, run_cli
from tests.test_sdks import Collect

pytestmark = pytest.mark.e2e


@pytest.fixture
def up(tmp_path):
    # The data folder rejse up uses by default, so the CLI in the same folder finds it.
    instance = RejseUp(tmp_path, data_dir=tmp_path / ".rejse")
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


JSON = {"Content-Type": "application/json"}
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


def readme_walkthrough() -> list[str]:
    """The code blocks of the README's "First event to first email", in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("### First event to first email", 1)[1].split("\nInstall and run", 1)[0]
    blocks = re.findall(r"```\w*\n(.*?)```", section, re.DOTALL)
    return [textwrap.dedent(block) for block in blocks]  # list items indent them


def block_with(blocks: list[str], marker: str) -> str:
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"the README walk-through has {len(found)} blocks with {marker!r}"
    return found[0]


def curl_body(block: str) -> dict[str, Any]:
    """The JSON a README curl command sends with -d '...'."""
    match = re.search(r"-d '(\{.*?\})'", block, re.DOTALL)
    assert match, block
    return json.loads(match.group(1))


def run_readme_segment_snippet(block: str, write_key: str, host: str) -> None:
    """The README's Segment snippet as written, with the reader's key and host filled in."""
    assert 'analytics.write_key = "rjk_..."' in block
    assert 'analytics.host = "http://127.0.0.1:8000"' in block
    code = block.replace('"rjk_..."', repr(write_key)).replace(
        '"http://127.0.0.1:8000"', repr(host)
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    analytics = namespace["analytics"]
    analytics.shutdown()  # the module keeps a default client; stop its thread
    analytics.default_client = None


async def until(what: str, probe: Any, seconds: float = 20) -> Any:
    """Poll the async `probe` until it returns something truthy (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while not (found := await probe()):
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.1)
    return found


async def check_readme_walkthrough(up: RejseUp, admin_key: str) -> None:
    """ "First event to first email" as the README tells it, in a second terminal beside the
    running `rejse up` (same folder, same ./.rejse): the CLI makes the ingest key and installs
    the example journey, the README's curl body and its Segment snippet each start a run at
    wait_1d, the message log answers, the quick copy (its waits in seconds here, not minutes)
    sends its first email into the development outbox, and the audience of step 7 is made."""
    blocks = readme_walkthrough()
    cli = {"cwd": up.workdir, "timeout": 60}

    # 1. Keys: the CLI on the same folder, while rejse up runs.
    assert "rejse keys create --role ingest --name webshop" in block_with(blocks, "keys create")
    made = run_cli("keys", "create", "--role", "ingest", "--name", "webshop", **cli)
    assert made.returncode == 0, made.stderr
    ingest_key = re.search(r"rjk_[0-9a-f]{8}_\S+", made.stdout).group(0)

    # 2. The journey.
    installed = run_cli("journeys", "install-examples", **cli)
    assert installed.returncode == 0, installed.stderr
    assert "abandoned-cart" in installed.stdout

    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=up.api, timeout=10) as http:

        async def run_of(journey: str, user_id: str) -> dict[str, Any] | None:
            r = await http.get("/api/profiles/lookup", params={"user_id": user_id}, headers=admin)
            if r.status_code == 404:
                return None
            assert r.status_code == 200, r.text
            pid = r.json()["id"]
            runs = await http.get(
                f"/api/journeys/{journey}/runs", params={"profile_id": pid}, headers=admin
            )
            assert runs.status_code == 200, runs.text
            # The run row exists at once; the step once the workflow has reached it.
            return runs.json()[0] if runs.json() and runs.json()[0]["current_step"] else None

        # 3. One event, with curl: 200 success, and a run waits at wait_1d.
        body = curl_body(block_with(blocks, "/v1/track"))
        r = await http.post(
            "/v1/track", json=body, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["success"], r.json()["accepted"]) == (True, 1)
        run = await until(
            "curl's run at wait_1d",
            lambda: run_of("abandoned-cart", body["userId"]),
        )
        assert (run["status"], run["current_step"]) == ("running", "wait_1d"), run

        # 4. The same with Segment's Python library, the README's snippet as written.
        snippet = block_with(blocks, "import segment.analytics")
        await asyncio.to_thread(run_readme_segment_snippet, snippet, ingest_key, up.api)
        user_2 = re.search(r'user_id="([^"]+)"', snippet).group(1)
        run = await until("Segment's run", lambda: run_of("abandoned-cart", user_2))
        assert run["current_step"] == "wait_1d", run

        # 5. Where the email appears: the message log answers (nothing sent before a day).
        log_url = re.search(r"'http://127.0.0.1:8000(/api/messages\?[^']+)'", "".join(blocks))
        assert log_url, "the README walk-through reads the message log"
        r = await http.get(log_url.group(1), headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == []

        # 6. Without waiting a day: the README's own copy script, its waits in seconds.
        quick = block_with(blocks, "abandoned-cart-quick")
        script = quick.split("<<'PY' > quick.json\n", 1)[1].split("\nPY\n", 1)[0]
        assert '"PT1M", "PT2M"' in script
        made = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-"],
            input=script.replace('"PT1M", "PT2M"', '"PT1S", "PT30S"'),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert made.returncode == 0, made.stderr
        r = await http.post("/api/journeys", content=made.stdout, headers={**admin, **JSON})
        assert r.status_code == 201, r.text
        r = await http.post("/api/journeys/abandoned-cart-quick/publish", json={}, headers=admin)
        assert r.status_code == 200, r.text
        quick_body = {**body, "userId": "cust-1003"}
        quick_body["properties"] = {**body["properties"], "checkout_id": "chk-3"}
        quick_body["context"] = {"traits": {"email": "mads@example.com"}}
        r = await http.post(
            "/v1/track", json=quick_body, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        assert r.status_code == 200, r.text

        async def sent() -> list[dict[str, Any]]:
            r = await http.get("/api/messages?journey=abandoned-cart-quick", headers=admin)
            assert r.status_code == 200, r.text
            return [m for m in r.json() if m["status"] == "sent"]

        (email,) = await until("the quick copy's first email", sent)
        assert (email["channel"], email["to_address"]) == ("email", "mads@example.com")
        assert email["subject"], email
        assert "Rain jacket" in email["body_text"], email  # the cart of that checkout
        r = await http.post("/api/journeys/abandoned-cart-quick/archive", headers=admin)
        assert r.status_code == 200, r.text

        # 7. An audience.
        audience = curl_body(block_with(blocks, "/api/audiences -H"))
        r = await http.post("/api/audiences", json=audience, headers=admin)
        assert r.status_code == 201, r.text
        r = await http.get(f"/api/audiences/{audience['key']}", headers=admin)
        assert r.status_code == 200, r.text


async def test_up_serves_api_docs_and_temporal_ui_and_stops_on_sigterm(up, capsys):
    # Quiet hours off, as the README suggests for trying it in the evening.
    up.start(REJSE_MESSAGE_QUIET_HOURS="{}")
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
        # The README's "first event to first email", step by step.
        started = time.monotonic()
        await check_readme_walkthrough(up, key)
        report(capsys, f"README walk-through in {time.monotonic() - started:.2f} s")
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
