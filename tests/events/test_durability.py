"""Durability and exactly-once: a killed API loses nothing, a crash between apply and dispatch
applies nothing twice, two processors on PostgreSQL share one outbox in per-profile order."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from rejse.db import make_engine
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.keys import create_key
from rejse.models.events import Event, OutboxEntry
from rejse.models.profiles import Profile
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.settings import Settings
from tests.conftest import auth

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    name = "recorder"

    def __init__(self):
        self.applied, self.dispatched = [], []

    def apply(self, session, event):
        self.applied.append(event.event_id)
        return []

    async def dispatch(self, events):
        self.dispatched.extend(events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outbox_count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(OutboxEntry))


async def test_killed_api_loses_nothing_and_processes_once(tmp_path, sqlite_template):
    db = tmp_path / "crash.db"
    shutil.copyfile(sqlite_template, db)
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    with Session(engine) as s:
        _, key = create_key(s, name="shop", role=Role.ingest)
        s.commit()
    port = free_port()
    env = {
        **os.environ,
        "REJSE_DATABASE_URL": url,
        "REJSE_ENVIRONMENT": "test",
        "REJSE_SECRET_KEY": "crash-test-secret-" + "x" * 20,
        "PYTHONPATH": str(ROOT),
    }
    # spawned off the event loop (a fork can take a moment); the handle is used synchronously
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.events.crash_app:app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    accepted = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (
                    proc.stderr.read1().decode() if proc.poll() else "no start"
                )
                await asyncio.sleep(0.1)
            for i in range(40):
                r = await c.post(
                    "/v1/track",
                    headers=auth(key),
                    json={
                        "userId": f"u-{i % 7}",
                        "event": "Product Viewed",
                        "messageId": f"crash-{i}",
                    },
                )
                assert r.status_code == 200
                accepted += r.json()["accepted"]
            batch = {
                "batch": [
                    {
                        "type": "track",
                        "anonymousId": f"a-{i % 5}",
                        "event": "Cart Viewed",
                        "messageId": f"crash-b-{i}",
                    }
                    for i in range(60)
                ]
            }
            r = await c.post("/v1/batch", headers=auth(key), json=batch)
            assert r.status_code == 200
            accepted += r.json()["accepted"]
    finally:
        proc.send_signal(signal.SIGKILL)  # right after the last 200, nothing processed yet
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert accepted == 100
    assert outbox_count(engine) == 100

    runtime = Runtime.create(Settings(environment="test", database_url=url), engine=engine)
    rec = Recorder()
    assert await EventProcessor(runtime, subscribers=[rec], dispatchers=[rec]).drain() == 100
    assert await EventProcessor(runtime, subscribers=[rec], dispatchers=[rec]).drain() == 0
    assert len(rec.applied) == len(set(rec.applied)) == 100
    assert sorted(e.event_id for e in rec.dispatched) == sorted(rec.applied)
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.sum(Profile.event_count))) == 100
        assert s.scalar(sa.select(sa.func.count()).select_from(Profile)) == 12
    engine.dispose()


async def test_crash_between_apply_and_dispatch_applies_once(runtime, session, engine):
    rows = [
        event_row(
            type="track",
            message_id=f"m-{i}",
            timestamp=runtime_now(),
            received_at=runtime_now(),
            event="E",
            user_id="u-1",
        )
        for i in range(5)
    ]
    accept(engine, rows, [bucket_for("u-1")] * 5)
    rec = Recorder()
    first = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec])
    claim = first._claim()
    entries, _ = first._load(claim.buckets)
    first._apply_batch(entries)  # committed ... then the process "dies"
    claim.release()
    assert len(rec.applied) == 5
    assert rec.dispatched == []
    second = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec])
    assert await second.drain() == 5
    assert len(rec.applied) == 5  # not applied again
    assert [e.event_id for e in rec.dispatched] == [r["id"] for r in rows]  # dispatched, in order
    assert session.exec(select(Profile)).one().event_count == 5
    assert outbox_count(engine) == 0


def runtime_now():
    from rejse.db import utcnow

    return utcnow()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processors_share_the_outbox_on_postgresql(db_url, engine, settings):
    profiles, per_profile = 1000, 10
    rows, buckets = [], []
    now = runtime_now()
    for seq in range(per_profile):
        for p in range(profiles):
            uid = f"user-{p}"
            rows.append(
                event_row(
                    type="track",
                    message_id=f"{uid}-{seq}",
                    timestamp=now,
                    received_at=now,
                    event="Step",
                    user_id=uid,
                    properties={"seq": seq},
                )
            )
            buckets.append(bucket_for(uid))
    for i in range(0, len(rows), 1000):
        accept(engine, rows[i : i + 1000], buckets[i : i + 1000])
    assert outbox_count(engine) == 10_000

    order: list[tuple[str, int, str]] = []

    class OrderRecorder(Recorder):
        def __init__(self, who):
            super().__init__()
            self.who = who

        def apply(self, session, event):
            order.append((event.profile_id, event.properties["seq"], self.who))
            return []

    async def run(who: str) -> int:
        runtime = Runtime.create(settings, engine=make_engine(db_url))
        proc = EventProcessor(
            runtime, subscribers=[OrderRecorder(who)], dispatchers=[], batch_size=200
        )
        total = 0
        while outbox_count(runtime.engine) > 0:
            total += await proc.run_once()
        runtime.engine.dispose()
        return total

    done = await asyncio.gather(run("A"), run("B"))
    assert sum(done) == 10_000, done
    assert min(done) > 0, done  # both worked
    assert len(order) == 10_000
    seen: dict[str, list[int]] = {}
    for pid, seq, _ in order:
        seen.setdefault(pid, []).append(seq)
    assert len(seen) == profiles
    assert all(seqs == list(range(per_profile)) for seqs in seen.values())  # once each, in order
    with engine.connect() as conn:
        counts = conn.execute(sa.select(Profile.event_count)).scalars().all()
        assert counts == [per_profile] * profiles
        assert (
            conn.scalar(
                sa.select(sa.func.count()).select_from(Event).where(Event.processed_at.is_(None))
            )
            == 0
        )
