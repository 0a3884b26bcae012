"""Scale-out on one machine: two `rejse api` processes, two `rejse worker` processes (each with
its event processor, sharing the outbox buckets with FOR UPDATE SKIP LOCKED) on one PostgreSQL
database, against one Temporal dev server. 10,000 events over 1,000 customers, each of whom
starts the abandoned-cart journey (with waits of a second): every event processed once, every
journey run once, every email delivered once, counted at a real aiosmtpd."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.reliability import private_pg
from tests.reliability.stack import Stack, assert_books

pytestmark = [pytest.mark.drill, pytest.mark.timeout(900)]

CUSTOMERS, VIEWS = 1_000, 9_000


@pytest.fixture
def pg_url():
    """A fresh database on the test server (REJSE_TEST_DATABASE_URL), else on a private one."""
    base = os.environ.get("REJSE_TEST_DATABASE_URL")
    if base:
        url = make_url(base)
        name = f"rejse_scale_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    if not private_pg.available():
        pytest.skip("needs REJSE_TEST_DATABASE_URL or PostgreSQL's binaries")
    server = private_pg.PrivatePostgres()
    server.init()
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


def test_two_apis_two_processors_two_workers_on_postgresql(tmp_path, pg_url):
    stack = Stack(tmp_path, pg_url, apis=2, workers=2)
    stack.prepare()
    try:
        stack.start()
        events = stack.checkouts(0, CUSTOMERS) + stack.views(0, VIEWS, CUSTOMERS)
        # interleave, so both kinds arrive throughout; then 100 per batch from four senders
        # spread over both API processes
        events = [events[i] for i in sorted(range(len(events)), key=lambda i: i % 10)]
        batches = [events[i : i + 100] for i in range(0, len(events), 100)]

        def send(n: int) -> int:
            return stack.post_batch(batches[n], stack.api_ports[n % 2])

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert set(pool.map(send, range(len(batches)))) == {200}
        assert_books(stack, checkouts=CUSTOMERS, views=VIEWS, timeout=600)
        # both processors and both workers took part
        assert all(p.running for p in (*stack.apis, *stack.workers)), stack.output()
    finally:
        stack.stop()
