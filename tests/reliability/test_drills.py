"""Fault drills on the stack as the split processes run it (`rejse api`, `rejse worker` with
its event processor, a persisted Temporal dev server, a real SMTP server), all on loopback:
a fault in the middle of real traffic, then the books are checked: every event processed
once, every journey run once, every email delivered once (counted at the SMTP server)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.reliability import private_pg
from tests.reliability.stack import Stack, assert_books, post_all, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.timeout(600)]


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path, f"sqlite:///{tmp_path / 'rejse.db'}")
    s.prepare()
    yield s
    s.stop()


def test_processor_sigkilled_mid_batch_processes_every_event_once(stack):
    """SIGKILL the worker (and its event processor) while it works through a backlog; the
    restarted one finishes it: no event processed twice, none lost, every journey once."""
    stack.start()
    worker = stack.workers[0]
    worker.stop()  # build a backlog first, so the kill lands inside a batch
    n, views = 200, 600
    events = stack.checkouts(0, n) + stack.views(0, views, n)
    post_all(stack, events)
    total = n + views
    worker.start()
    wait_until(lambda: stack.unprocessed() < total - 100, 120, "processing under way", 0.02)
    worker.kill()
    left = stack.unprocessed()
    assert 0 < left < total, left  # killed mid-backlog
    worker.start()
    assert_books(stack, checkouts=n, views=views)
    assert worker.runs == 3


def test_worker_sigkilled_mid_journey_and_mid_send(stack):
    """The SMTP server answers RCPT slowly, so sends are in flight; SIGKILL the worker while
    runs wait and send, twice; the restarted worker delivers each reminder exactly once."""

    async def slow_rcpt(address: str) -> None:
        await asyncio.sleep(0.2)

    stack.smtp.box.rcpt_delay = slow_rcpt
    stack.start()
    n = 100
    post_all(stack, stack.checkouts(0, n))
    worker = stack.workers[0]
    for _ in range(2):
        wait_until(
            lambda: stack.scalar("SELECT count(*) FROM message WHERE status = 'sending'") > 0,
            120,
            "sends in flight",
            0.02,
        )
        worker.kill()
        worker.start()
    assert_books(stack, checkouts=n)


def test_temporal_stopped_for_60_s_during_ingestion(stack):
    """Temporal is down for a minute while events keep arriving: /v1 and the webhooks answer
    as always, nothing is lost, and every due journey starts once Temporal is back."""
    stack.start()
    post_all(stack, stack.checkouts(0, 20))
    stack.temporal.signal(signal.SIGKILL)
    stack.temporal.proc.wait(10)
    down_at = time.monotonic()
    i = 20
    while time.monotonic() - down_at < 60:
        assert stack.post_batch(stack.checkouts(i, 2)) == 200
        assert stack.post_shopify_checkout(i + 2) == 202
        i += 3
        time.sleep(1)
    assert stack.readyz() == 503  # says it is not ready, but keeps taking events
    stack.start_temporal()
    assert_books(stack, checkouts=i, timeout=300)


@pytest.fixture
def pg():
    if not private_pg.available():
        pytest.skip(f"no PostgreSQL binaries in {private_pg.BIN}")
    server = private_pg.PrivatePostgres()
    server.init()
    server.start()
    yield server
    server.cleanup()


def test_postgresql_restarted_the_service_recovers_by_itself(tmp_path, pg):
    """A private PostgreSQL (started by the test) stops under a running stack: /readyz says
    503 while it is away and 200 again once it is back, with no process restarted by hand,
    and what was accepted before and after is processed once."""
    stack = Stack(tmp_path, pg.url)
    stack.prepare()
    try:
        stack.start()
        post_all(stack, stack.checkouts(0, 40), chunk=20)
        pg.stop()
        wait_until(lambda: stack.readyz() == 503, 30, "/readyz 503 while PostgreSQL is down")
        refused = stack.post_batch(stack.checkouts(1000, 5))
        assert refused == 503, refused  # not accepted, and said so: the sender retries
        time.sleep(5)
        pg.start()
        wait_until(lambda: stack.readyz() == 200, 60, "/readyz 200 once PostgreSQL is back")
        post_all(stack, stack.checkouts(40, 40), chunk=20)
        assert_books(stack, checkouts=80)
        assert all(p.running for p in (*stack.apis, *stack.workers)), stack.output()
    finally:
        stack.stop()


def test_smtp_server_down_for_five_minutes(stack):
    """The SMTP server is away for five minutes while reminders fall due: every send is
    retried (the activity's backoff is capped at a minute) and, once it is back, each reminder
    arrives exactly once."""
    stack.start()
    stack.smtp.stop()
    n = 30
    post_all(stack, stack.checkouts(0, n))
    wait_until(
        lambda: stack.scalar("SELECT count(*) FROM message WHERE status = 'sending'") == n,
        120,
        "every send attempted and waiting for its retry",
    )
    time.sleep(300 - 2)
    assert stack.sent() == 0
    assert stack.scalar("SELECT min(attempts) FROM message") >= 3  # retried, with backoff
    stack.smtp.start()
    assert_books(stack, checkouts=n)
