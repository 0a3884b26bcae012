"""Fixtures for journey tests: a runtime bound to the time-skipping server, a real worker (the
journey workflow with every registered activity, messaging's real send included), profiles,
events and published journeys."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from rejse import wiring
from rejse.contracts import ProcessedEvent
from rejse.journeys import service
from rejse.journeys.dispatcher import JourneyDispatcher
from rejse.models.journeys import JourneyRun
from rejse.models.messaging import Message
from rejse.profiles.service import create_profile
from rejse.runtime import Runtime
from rejse.temporal import TemporalConnector
from rejse.worker import build_worker

EXAMPLE = Path(__file__).resolve().parents[2] / "rejse" / "examples" / "abandoned_cart.json"


def abandoned_cart() -> dict[str, Any]:
    return copy.deepcopy(json.loads(EXAMPLE.read_text()))


def activity_names(runtime: Runtime) -> set[str]:
    return set(wiring.activity_names())


def publish(runtime: Runtime, definition: dict[str, Any], *, new_version: bool = False) -> None:
    with Session(runtime.engine) as s:
        if new_version:
            service.add_version(s, key=definition["key"], definition=definition)
        else:
            service.create_journey(s, definition=definition)
        service.publish(
            s,
            key=definition["key"],
            activity_names=activity_names(runtime),
            webhook_allow_private=runtime.settings.webhook_allow_private,
        )
        s.commit()


def new_profile(runtime: Runtime, **kw: Any) -> str:
    with Session(runtime.engine) as s:
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        pid = create_profile(
            s,
            traits={"email": email, "first_name": "Ida", **kw.pop("traits", {})},
            locale=kw.pop("locale", "da-DK"),
            timezone=kw.pop("timezone", "Europe/Copenhagen"),
            consents={"email": "granted"},
            **kw,
        )
        s.commit()
    return pid


def event(profile_id: str, name: str, at: dt.datetime, **properties: Any) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        profile_id=profile_id,
        type="track",
        event=name,
        properties=properties,
        timestamp=at,
        received_at=at,
    )


def runs(runtime: Runtime, **where: Any) -> list[JourneyRun]:
    with Session(runtime.engine) as s:
        stmt = select(JourneyRun)
        for k, v in where.items():
            stmt = stmt.where(getattr(JourneyRun, k) == v)
        return list(s.exec(stmt.order_by(JourneyRun.entered_at)))


def messages(runtime: Runtime, profile_id: str) -> list[Message]:
    with Session(runtime.engine) as s:
        return list(
            s.exec(
                select(Message).where(Message.profile_id == profile_id).order_by(Message.sent_at)
            )
        )


HISTORIES = Path(__file__).resolve().parent / "histories"


@pytest.fixture
async def jruntime(runtime: Runtime, time_env, request) -> AsyncIterator[Runtime]:
    """The test's runtime on the time-skipping server. With REJSE_RECORD_HISTORIES=1 the
    histories of the journey runs a test made are saved for the replay test."""
    runtime.temporal = TemporalConnector(runtime.settings, time_env.client)
    runtime.settings.message_quiet_hours = {}
    yield runtime
    if os.environ.get("REJSE_RECORD_HISTORIES") and "sqlite" in request.node.name:
        await save_histories(time_env.client, runtime, request.node.name.split("[")[0])


async def save_histories(client, runtime: Runtime, name: str) -> None:
    from temporalio.client import WorkflowExecutionStatus

    wids = sorted({r.workflow_id for r in runs(runtime)})
    for n, wid in enumerate(wids):
        handle = client.get_workflow_handle(wid)
        if (await handle.describe()).status in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.TERMINATED,
        ):
            continue
        history = await handle.fetch_history()
        (HISTORIES / f"{name.removeprefix('test_')}-{n}.json").write_text(history.to_json())


@pytest.fixture
def private_webhooks(jruntime: Runtime) -> Runtime:
    """Webhook steps may call loopback: the tests' receivers listen there, which a journey
    refuses by default (`REJSE_WEBHOOK_ALLOW_PRIVATE`)."""
    jruntime.settings.webhook_allow_private = True
    return jruntime


@pytest.fixture
async def worker(jruntime: Runtime, time_env) -> AsyncIterator[Any]:
    w = build_worker(
        time_env.client,
        task_queue=jruntime.settings.task_queue,
        workflows=wiring.workflows(),
        activities=wiring.activities(jruntime),
    )
    assert w is not None
    async with w:
        yield w
        # leave nothing running: a leftover timer on the shared time-skipping server would make
        # later tests wait for a workflow task no worker picks up
        from temporalio.service import RPCError

        for run in runs(jruntime):
            if run.status in ("running", "held"):
                # (idle in a timer: terminating mid-task can stall the test server)
                with contextlib.suppress(RPCError):
                    await time_env.client.get_workflow_handle(run.workflow_id).terminate()


@pytest.fixture
def dispatcher(jruntime: Runtime) -> JourneyDispatcher:
    return JourneyDispatcher(jruntime)


async def result(time_env, workflow_id: str) -> Any:
    """The run's result, letting the time-skipping server jump over its timers (handles from
    `get_workflow_handle` do not unlock time skipping by themselves)."""
    async with time_env.time_skipping_unlocked():
        return await time_env.client.get_workflow_handle(workflow_id).result()


async def at_step(handle, step: str, *, attempts: int = 200) -> dict[str, Any]:
    """Poll the run's `state` query until it waits at `step` (time does not skip meanwhile;
    waiting means no activity is in flight, so the run may be cancelled or terminated)."""
    import asyncio

    state: dict[str, Any] = {}
    for _ in range(attempts):
        state = await handle.query("state")
        if state["step"] == step and state.get("waiting"):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"run never reached {step!r}: {state}")
