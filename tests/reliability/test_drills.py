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
from tests.reliability.stack import Stack, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.timeout(600)]


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path, f"sqlite:///{tmp_path / 'rejse.db'}")
    s.prepare()
    yield s
    s.stop()


def post_all(stack: Stack, events: list[dict], chunk: int = 100) -> None:
    for i in range(0, len(events), chunk):
        assert stack.post_batch(events[i : i + chunk]) == 200


def assert_books(stack: Stack, *, checkouts: int, views: int = 0) -> None:
    """Every event processed once, one run per checkout, one email per run; each of the
    `checkouts` customers also viewed `views / checkouts` products."""
    customers = checkouts
    try:
        wait_until(lambda: stack.unprocessed() == 0, 180, "every event processed")
        wait_until(lambda: stack.runs() == checkouts, 120, f"{checkouts} journey runs")
        wait_until(lambda: stack.smtp.box.total >= checkouts, 180, f"{checkouts} emails")
        wait_until(lambda: stack.sent() == checkouts, 60, f"{checkouts} messages sent")
        wait_until(
            lambda: stack.scalar("SELECT count(*) FROM journey_run WHERE status = 'running'") == 0,
            60,
            "every run ended",
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: unprocessed {stack.unprocessed()}, runs {stack.runs()}, "
            f"emails {stack.smtp.box.total}, sent {stack.sent()}\n{stack.output()}"
        ) from None
    time.sleep(1)  # nothing more arrives late
    assert stack.smtp.box.total == checkouts, stack.smtp.box.total
    assert stack.smtp.box.doubled() == {}
    assert stack.scalar("SELECT count(*) FROM event") == checkouts + views
    # exactly-once processing: every profile counted each of its events once
    assert stack.scalar("SELECT coalesce(sum(event_count), 0) FROM profile") == checkouts + views
    assert stack.scalar("SELECT count(*) FROM profile") == customers
    each = 1 + views // customers  # the views are spread evenly over the customers
    assert stack.scalar("SELECT count(*) FROM profile WHERE event_count <> :n", n=each) == 0


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
    post_all(stack, stack.checkouts(0, 50))
    stack.temporal.signal(signal.SIGKILL)
    stack.temporal.proc.wait(10)
    down_at = time.monotonic()
    i = 50
    while time.monotonic() - down_at < 60:
        assert stack.post_batch(stack.checkouts(i, 10)) == 200
        i += 10
        time.sleep(1)
    assert stack.readyz() == 503  # says it is not ready, but keeps taking events
    stack.start_temporal()
    assert_books(stack, checkouts=i)


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
