"""No single event stops the processor: a stored row the loader cannot decode, or an event whose
apply fails in a way no retry can fix, goes to the dead letters at once with a PII-free reason,
and the events after it run, on SQLite and PostgreSQL."""

import asyncio

import sqlalchemy as sa
from sqlmodel import select

from rejse.db import sqlite_time, utcnow
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.models.events import DeadLetter, Event, OutboxEntry
from rejse.roles import Role
from tests.conftest import auth

HUGE = "1" + "0" * 400
EVENT_SQL = (
    "INSERT INTO event (id, message_id, type, event, user_id, properties, traits, context, "
    "timestamp, received_at, source) VALUES (:id, :mid, 'track', 'Big', :user, :properties, "
    "'{}', '{}', :at, :at, 'api')"
)


class Recorder:
    name = "recorder"

    def __init__(self, apply=None):
        self.dispatched: list = []
        self._apply = apply

    def apply(self, session, event):
        return self._apply(session, event) if self._apply else []

    async def dispatch(self, events):
        self.dispatched.extend(events)


def track(name: str, user: str = "u-1"):
    now = utcnow()
    row = event_row(
        type="track",
        message_id=f"m-{name}",
        timestamp=now,
        received_at=now,
        event=name,
        user_id=user,
    )
    return row, bucket_for(user)


def insert_raw(engine, *, event_id: str, properties: str, user: str = "u-1") -> None:
    """An event row and its outbox row written with raw SQL, JSON text as given: what the old
    ingestion stored for an integer of 309+ digits."""
    now = utcnow()
    pg = engine.dialect.name == "postgresql"
    at = now if pg else sqlite_time(now)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                EVENT_SQL.replace(":properties", "CAST(:properties AS JSON)") if pg else EVENT_SQL
            ),
            {
                "id": event_id,
                "mid": f"raw-{event_id}",
                "user": user,
                "properties": properties,
                "at": at,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO event_outbox (event_id, bucket, state, attempts, available_at) "
                "VALUES (:id, :bucket, 'pending', 0, :at)"
            ),
            {"id": event_id, "bucket": bucket_for(user), "at": at},
        )


def outbox(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry))


async def test_an_undecodable_stored_event_is_dead_lettered_and_the_rest_run(
    runtime, engine, session
):
    before = track("Before")
    accept(engine, [before[0]], [before[1]])
    insert_raw(engine, event_id="evt_huge", properties='{"total": ' + HUGE + "}")
    after = track("After")
    accept(engine, [after[0]], [after[1]])
    rec = Recorder()
    proc = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec])
    assert await proc.drain() == 3
    assert [e.event for e in rec.dispatched] == ["Before", "After"]
    assert outbox(session) == 0
    dead = session.exec(select(DeadLetter)).one()
    assert (dead.event_id, dead.stage, dead.attempts) == ("evt_huge", "load", 1)
    assert "properties" in dead.error
    assert "integer" in dead.error
    # a restart finds nothing left to choke on
    assert await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain() == 0


async def test_undecodable_json_text_of_any_kind_is_dead_lettered(runtime, engine, session):
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's json type refuses such text when it is written
    for i, text in enumerate(['{"x": NaN}', '{"x": 1', "[1, 2]", '"text"']):
        insert_raw(engine, event_id=f"evt_bad{i}", properties=text)
    good = track("Good")
    accept(engine, [good[0]], [good[1]])
    rec = Recorder()
    await EventProcessor(runtime, subscribers=[rec], dispatchers=[rec]).drain()
    assert [e.event for e in rec.dispatched] == ["Good"]
    dead = session.exec(select(DeadLetter).order_by(DeadLetter.event_id)).all()
    assert [(d.event_id, d.stage) for d in dead] == [(f"evt_bad{i}", "load") for i in range(4)]
    assert outbox(session) == 0


async def test_a_permanent_apply_failure_is_dead_lettered_at_once_without_pii(
    client, keys, runtime, session, capsys
):
    """A data error (ValueError here) fails the same way on every retry: dead-lettered on the
    first attempt; its message (which may carry an email) stays out of the reason and logs."""

    def apply(session, event):
        if event.event == "Poison":
            raise ValueError("no score for mette.hansen@example.dk")
        return []

    h = auth(keys[Role.ingest])
    for name in ("A", "Poison", "B"):
        await client.post("/v1/track", json={"userId": "u-1", "event": name}, headers=h)
    rec = Recorder(apply)
    await EventProcessor(runtime, subscribers=[rec], dispatchers=[rec]).drain()
    assert [e.event for e in rec.dispatched] == ["A", "B"]
    assert outbox(session) == 0
    dead = session.exec(select(DeadLetter)).one()
    assert (dead.stage, dead.attempts) == ("apply", 1)
    assert "ValueError" in dead.error
    assert "test_dead_letters.py" in dead.error  # where it was raised
    captured = capsys.readouterr()
    for text in (dead.error, captured.out, captured.err):
        assert "mette" not in text.lower()


async def test_a_derived_event_the_database_cannot_hold_dead_letters_its_source(
    client, keys, runtime, session
):
    """A subscriber's derived event with an integer beyond 64 bits is refused when it is written
    (before, it was stored as JSON text that stopped the processor on SQLite)."""

    def apply(session, event):
        return [("Scored", {"points": int(HUGE)})] if event.event == "Poison" else []

    h = auth(keys[Role.ingest])
    for name in ("Poison", "B"):
        await client.post("/v1/track", json={"userId": "u-1", "event": name}, headers=h)
    rec = Recorder(apply)
    proc = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec])
    await proc.drain()
    assert [e.event for e in rec.dispatched] == ["B"]
    dead = session.exec(select(DeadLetter)).one()
    assert (dead.stage, dead.attempts) == ("apply", 1)
    assert session.exec(select(Event).where(Event.type == "internal")).all() == []
    assert outbox(session) == 0


async def test_a_transient_failure_is_still_retried(client, keys, runtime, session):
    calls = []

    def apply(session, event):
        calls.append(event.event)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return []

    await client.post(
        "/v1/track", json={"userId": "u-1", "event": "A"}, headers=auth(keys[Role.ingest])
    )
    rec = Recorder(apply)
    proc = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec], backoff_base=0)
    await proc.drain()
    assert [e.event for e in rec.dispatched] == ["A"]
    assert session.exec(select(DeadLetter)).all() == []


async def test_the_run_loop_keeps_going_past_a_poison_row(runtime, engine, session):
    """The background service itself (not only drain) gets past the row and processes what
    comes after it."""
    insert_raw(engine, event_id="evt_huge", properties='{"total": ' + HUGE + "}")
    later = track("Later")
    accept(engine, [later[0]], [later[1]])
    seen = asyncio.Event()

    class Signalling(Recorder):
        async def dispatch(self, events):
            await super().dispatch(events)
            seen.set()

    rec = Signalling()
    proc = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec], poll_interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(proc.run(stop))
    try:
        async with asyncio.timeout(10):
            await seen.wait()
    finally:
        stop.set()
        await task
    assert [e.event for e in rec.dispatched] == ["Later"]
    assert session.exec(select(DeadLetter.event_id)).all() == ["evt_huge"]
