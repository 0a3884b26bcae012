"""`rejse up` as a real process on free ports with its own data folder: ready within 20 s,
docs and Temporal Web UI answer, SIGINT/SIGTERM stop everything (no orphaned `temporal`
child), and Temporal state survives a restart."""

from __future__ import annotations

import asyncio
import re
import signal

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tests.foundation.procs import RejseUp, alive

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
