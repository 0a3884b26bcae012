"""The worker's concurrent sends go out together: many callers, few batches, each caller its
own result or its own error; a lone send waits for nobody."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from activities.messaging import MessagingActivities
from rejse.contracts import SendRequest, SendResult
from rejse.messaging.coalescer import SendCoalescer
from tests.messaging.conftest import NOON, mette, with_settings
from tests.messaging.test_email_delivery import request

NOW = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)


def _req(key: str) -> SendRequest:
    return SendRequest(idempotency_key=key, profile_id="p", channel="email", template="t")


def test_concurrent_callers_share_batches_and_get_their_own_outcome():
    seen: list[list[str]] = []

    def batch(sends):
        keys = [r.idempotency_key for r, _ in sends]
        seen.append(keys)
        time.sleep(0.05)  # the database and SMTP work: the next callers queue meanwhile
        return [
            ValueError(k) if k.endswith("7") else SendResult(status="sent", message_id=k)
            for k in keys
        ]

    coalescer = SendCoalescer(batch, lanes=1)

    def call(i: int):
        try:
            return coalescer.send(_req(f"k{i}"), NOW).message_id
        except ValueError as exc:
            return f"error {exc}"

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(call, range(32)))
    assert answers == [f"error k{i}" if i % 10 == 7 else f"k{i}" for i in range(32)]
    assert sorted(k for keys in seen for k in keys) == sorted(f"k{i}" for i in range(32))
    assert len(seen) < 10  # batched, not one call each
    assert list(coalescer.batches) == [len(keys) for keys in seen]


def test_a_lone_send_goes_at_once_and_idle_lanes_end():
    coalescer = SendCoalescer(
        lambda sends: [SendResult(status="sent") for _ in sends], idle_seconds=0.1
    )
    start = time.monotonic()
    assert coalescer.send(_req("one"), NOW).status == "sent"
    assert time.monotonic() - start < 1
    deadline = time.monotonic() + 5
    while coalescer._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert coalescer._running == 0
    assert coalescer.send(_req("two"), NOW).status == "sent"  # a new lane starts


def test_a_batch_raising_fails_every_caller_in_it():
    def broken(sends):
        raise ConnectionError("database gone")

    coalescer = SendCoalescer(broken)
    with pytest.raises(ConnectionError):
        coalescer.send(_req("x"), NOW)


async def test_the_activity_coalesces_concurrent_sends(mail_runtime, smtp):
    """As the worker runs it: 40 activities awaiting on one event loop, no thread each."""
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pids = [mette(rt, identifiers={"email": f"c{i}@example.dk"}) for i in range(40)]
    acts = MessagingActivities(rt)
    assert inspect.iscoroutinefunction(acts.send)  # an async activity: it holds no thread
    results = await asyncio.gather(
        *(acts.send_at(request(pid, "reminder_1"), NOON) for pid in pids)
    )
    statuses = [r.status for r in results]
    assert statuses == ["sent"] * 40
    assert sorted(box.by_message_id().values()) == [1] * 40
    assert sum(acts.coalescer.batches) == 40
    assert len(acts.coalescer.batches) < 40


async def test_a_caller_that_stops_waiting_stops_no_other():
    """A cancelled activity's request still goes out with its batch (its result is recorded for
    the retry); the lane settles the others and goes on."""
    release = threading.Event()

    def batch(sends):
        release.wait(5)
        return [SendResult(status="sent", message_id=r.idempotency_key) for r, _ in sends]

    coalescer = SendCoalescer(batch, lanes=1)
    first = asyncio.ensure_future(coalescer.send_async(_req("gone"), NOW))
    second = asyncio.ensure_future(coalescer.send_async(_req("stays"), NOW))
    await asyncio.sleep(0.05)
    first.cancel()
    release.set()
    assert (await asyncio.wait_for(second, 5)).message_id == "stays"
    assert (await coalescer.send_async(_req("later"), NOW)).message_id == "later"
    assert sum(coalescer.batches) == 3
