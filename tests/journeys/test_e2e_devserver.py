"""End to end on the Temporal dev server: the worker process is SIGKILLed while a run waits;
a new worker takes over; the run goes on and each email is sent exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from rejse.journeys.dispatcher import JourneyDispatcher
from rejse.settings import REPO_ROOT
from rejse.temporal import SA_JOURNEY, SA_PROFILE_ID, TemporalConnector
from tests.journeys.conftest import abandoned_cart, event, messages, new_profile, publish, runs
from tests.journeys.worker_proc import make_worker

pytestmark = pytest.mark.e2e


async def poll(predicate, *, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_worker_killed_mid_wait_each_email_once(dev_env, runtime, db_url):
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    runtime.settings.task_queue = queue
    runtime.settings.message_quiet_hours = {}
    runtime.temporal = TemporalConnector(runtime.settings, dev_env.client)
    definition = abandoned_cart()
    definition["steps"]["wait_1d"]["for"] = "PT1S"
    definition["steps"]["wait_2d"]["for"] = "PT2S"
    publish(runtime, definition)
    pid = new_profile(runtime)

    env = {
        **os.environ,
        "REJSE_DATABASE_URL": db_url,
        "REJSE_TASK_QUEUE": queue,
        "REJSE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "REJSE_SECRET_KEY": runtime.settings.secret_key,
        "REJSE_MESSAGE_QUIET_HOURS": "{}",
        "REJSE_ENVIRONMENT": "test",
        "REJSE_PUBLIC_URL": "http://testserver",
        "REJSE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, read in a thread
        [sys.executable, "-m", "tests.journeys.worker_proc"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = await asyncio.to_thread(proc.stdout.readline)
        assert "worker ready" in ready
        now = await asyncio.to_thread(lambda: __import__("rejse.db").db.utcnow())
        await JourneyDispatcher(runtime).dispatch(
            [event(pid, "Checkout Started", now, checkout_id="c-e2e")]
        )
        await poll(
            lambda: (
                len(messages(runtime, pid)) == 1  # first reminder out,
                and runs(runtime, profile_id=pid)[0].current_step == "wait_2d"
            )
        )  # waiting
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        [run] = runs(runtime, profile_id=pid)
        assert run.status == "running"

        handle = dev_env.client.get_workflow_handle(run.workflow_id)
        with ThreadPoolExecutor(max_workers=4) as pool:
            async with make_worker(dev_env.client, runtime, pool):
                assert await asyncio.wait_for(handle.result(), 60) == "completed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    sent = messages(runtime, pid)
    assert [(m.template, m.status) for m in sent] == [
        ("abandoned_cart/reminder", "sent"),
        ("abandoned_cart/free_shipping", "sent"),
    ]
    assert len({m.idempotency_key for m in sent}) == 2
    assert sent[0].idempotency_key == f"{run.workflow_id}:reminder_1"
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(SA_PROFILE_ID) == pid
    assert attrs.get(SA_JOURNEY) == "abandoned-cart"
    assert "@" not in run.workflow_id
