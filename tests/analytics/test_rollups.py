"""The counters stay exact: after random runs, steps, sends (delivered, skipped by a guard,
failed), opens, clicks, unsubscribes, ends and orders (credited or not) on two journeys, what
the counters say equals a recount from the raw rows, before and after folds made in between;
and a fold moves every delta once (PostgreSQL: also with folds running at the same time).

`World` drives the real code paths without Temporal (the journey activities, the sender with
the development outbox, the tracking service, the event processor with the attribution
subscriber); the other analytics tests use it too."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select

from activities.journeys import JourneyActivities
from rejse import analytics_deltas as deltas
from rejse.analytics import rollups
from rejse.analytics.attribution import AttributionSubscriber, settle
from rejse.analytics.kpis import waiting_now
from rejse.contracts import ProcessedEvent, SendRequest, SendResult
from rejse.db import session_scope
from rejse.events.processor import EventProcessor
from rejse.events.service import record_internal_event
from rejse.journeys import runtypes as rt
from rejse.journeys import service as journeys
from rejse.journeys.entry import plan_entry
from rejse.messaging import preferences
from rejse.messaging import service as messaging
from rejse.messaging.sender import send_message
from rejse.models.analytics import AnalyticsDelta
from rejse.models.journeys import Journey, JourneyRun
from rejse.models.messaging import Message
from rejse.profiles.service import create_profile
from rejse.runtime import Runtime
from tests.journeys.conftest import abandoned_cart, activity_names

NOON = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)  # 12:00 in Copenhagen
DAY = dt.timedelta(days=1)


class World:
    """Journeys, profiles, runs, messages and orders made through rejse's own code."""

    def __init__(self, runtime: Runtime) -> None:
        runtime.settings.message_quiet_hours = {}
        self.runtime = runtime
        self.engine = runtime.engine
        self.activities = JourneyActivities(runtime)
        self.processor = EventProcessor(
            runtime, subscribers=[AttributionSubscriber()], dispatchers=[]
        )

    def publish(self, definition: dict[str, Any]) -> str:
        with Session(self.engine) as s:
            journeys.create_journey(s, definition=definition)
            journeys.publish(s, key=definition["key"], activity_names=activity_names(self.runtime))
            s.commit()
        return str(definition["key"])

    def journey(self, key: str = "abandoned-cart", **changes: Any) -> str:
        definition = abandoned_cart()
        definition.update({"key": key, "name": key, **changes})
        return self.publish(definition)

    def profile(self, **consents: str) -> str:
        with Session(self.engine) as s:
            pid = create_profile(
                s,
                traits={"first_name": "Ida"},
                identifiers={"email": f"{uuid.uuid4().hex[:10]}@example.dk"},
                locale="da-DK",
                timezone="Europe/Copenhagen",
                consents=consents or None,
            )
            s.commit()
        return pid

    def enter(self, key: str, pid: str, at: dt.datetime, **properties: Any) -> JourneyRun:
        event_id = self.store_event(pid, "Checkout Started", at, **properties)
        trigger = ProcessedEvent(
            event_id=event_id,
            profile_id=pid,
            type="track",
            event="Checkout Started",
            properties=properties,
            timestamp=at,
            received_at=at,
        )
        with session_scope(self.engine) as s:
            journey = s.get(Journey, key)
            assert journey is not None
            [defn] = [d for j, d in journeys.published_definitions(s) if j.key == key]
            entry = plan_entry(s, journey=journey, defn=defn, event=trigger)
            assert entry is not None
            run = s.get(JourneyRun, entry.run_input.run_id)
            assert run is not None
            return run

    def step(self, run: JourneyRun, step_id: str, at: dt.datetime) -> None:
        self.activities.record_step(
            rt.StepRecord(
                run_id=run.id,
                journey_key=run.journey_key,
                version=run.version,
                profile_id=run.profile_id,
                step_id=step_id,
                step_type="x",
                at=at,
            )
        )

    def send(self, run: JourneyRun, step_id: str, template: str, at: dt.datetime) -> SendResult:
        self.step(run, step_id, at)
        return send_message(
            self.runtime.settings,
            self.engine,
            SendRequest(
                idempotency_key=f"{run.workflow_id}:{step_id}",
                profile_id=run.profile_id,
                channel="email",
                template=template,
                journey_key=run.journey_key,
                journey_version=run.version,
                step_id=step_id,
                trigger={"properties": {"abandoned_checkout_url": "https://shop.example/r"}},
            ),
            now=at,
        )

    def finish(self, run: JourneyRun, status: str, step_id: str, at: dt.datetime) -> None:
        self.activities.finish_run(
            rt.FinishRecord(
                run_id=run.id,
                journey_key=run.journey_key,
                profile_id=run.profile_id,
                status=status,
                step_id=step_id,
                at=at,
            )
        )

    def open(self, message_id: str, at: dt.datetime) -> None:
        with session_scope(self.engine) as s:
            messaging.record_open(s, message_id=message_id, at=at)

    def click(self, message_id: str, at: dt.datetime) -> None:
        with session_scope(self.engine) as s:
            messaging.record_click(s, message_id=message_id, index=0, at=at)

    def unsubscribe(self, message_id: str, at: dt.datetime) -> None:
        with session_scope(self.engine) as s:
            messaging.unsubscribe(s, message_id=message_id, at=at)

    def preferences_off(self, message_id: str) -> None:
        with session_scope(self.engine) as s:
            preferences.save(
                s,
                message_id=message_id,
                receiving={"email": False, "sms": True},
                all_marketing=False,
                require_opt_in=False,
            )

    def store_event(self, pid: str, name: str, at: dt.datetime, **properties: Any) -> str:
        mid = f"test-{uuid.uuid4().hex}"
        with session_scope(self.engine) as s:
            record_internal_event(
                s, profile_id=pid, event=name, properties=properties, message_id=mid, at=at
            )
        with Session(self.engine) as s:
            from rejse.models.events import Event

            row = s.exec(select(Event).where(Event.message_id == mid)).one()
            return row.id

    async def aorder(self, pid: str, at: dt.datetime, revenue: float, **properties: Any) -> str:
        event_id = self.store_event(pid, "Order Completed", at, revenue=revenue, **properties)
        await self.drain()
        return event_id

    async def drain(self) -> None:
        """The processor (it notes conversion events), then what the scheduler does next."""
        await self.processor.drain()
        settle(self.engine)

    def message(self, run: JourneyRun, step_id: str) -> Message:
        with Session(self.engine) as s:
            row = messaging.get_by_key(s, f"{run.workflow_id}:{step_id}")
            assert row is not None
            return row

    def exact(self) -> dict[tuple[Any, ...], tuple[int, int]]:
        with Session(self.engine) as s:
            current, recount = rollups.current(s), rollups.recount(s)
        assert current == recount
        return current


@pytest.fixture
def world(runtime: Runtime) -> World:
    return World(runtime)


async def test_random_activity_is_counted_exactly(world: World):
    rng = random.Random(14)
    keys = [world.journey(), world.journey("winback")]
    for n in range(24):
        pid = world.profile()
        key = keys[n % 2]
        t = NOON + dt.timedelta(hours=rng.randrange(0, 72))
        run = world.enter(key, pid, t, checkout_id=f"c{n}")
        world.step(run, "wait_1d", t)
        if rng.random() < 0.15:  # bought before any message
            world.finish(run, "converted", "wait_1d", t + dt.timedelta(hours=5))
            continue
        if rng.random() < 0.1:
            continue  # still waiting at wait_1d
        result = world.send(run, "reminder_1", "abandoned_cart/reminder", t + DAY)
        world.step(run, "wait_2d", t + DAY)
        m1 = world.message(run, "reminder_1")
        if result.status == "sent" and rng.random() < 0.2:
            world.click(m1.id, t + DAY + dt.timedelta(hours=1))  # images blocked: no pixel
        elif result.status == "sent" and rng.random() < 0.6:
            world.open(m1.id, t + DAY + dt.timedelta(hours=1))
            if rng.random() < 0.5:
                world.click(m1.id, t + DAY + dt.timedelta(hours=2))
            if rng.random() < 0.2:
                world.open(m1.id, t + DAY + dt.timedelta(hours=3))  # a second open: once
        if rng.random() < 0.15:
            if rng.random() < 0.5:
                world.unsubscribe(m1.id, t + DAY + dt.timedelta(hours=4))
            else:
                world.preferences_off(m1.id)
            world.unsubscribe(m1.id, t + DAY + dt.timedelta(hours=5))  # again: counted once
        if rng.random() < 0.3:
            world.finish(run, "converted", "wait_2d", t + 2 * DAY)
            await world.aorder(pid, t + 2 * DAY, 100 + n, checkout_id=f"c{n}")
            continue
        if rng.random() < 0.2:
            rollups.fold(world.engine)
        world.send(run, "reminder_2", "abandoned_cart/free_shipping", t + 3 * DAY)
        if rng.random() < 0.8:
            world.finish(run, "completed", "reminder_2", t + 3 * DAY)
        later = rng.choice([DAY, 4 * DAY, 6 * DAY])
        if rng.random() < 0.6:
            await world.aorder(pid, t + 3 * DAY + later, 50 + n)
    figures = world.exact()
    metrics = {k[-1] for k in figures}
    assert {"entered", "delivered", "opened", "clicked", "unsubscribed"} <= metrics
    assert {"converted.goal", "converted.window", "ended.completed", "step_left"} <= metrics
    assert any(m.startswith("skipped.") for m in metrics)  # the frequency cap, no consent
    assert rollups.fold(world.engine) > 0
    assert world.exact() == figures
    with Session(world.engine) as s:
        assert s.exec(select(AnalyticsDelta)).first() is None


async def test_a_retried_step_or_end_is_not_counted_twice(world: World):
    world.journey()
    pid = world.profile()
    run = world.enter("abandoned-cart", pid, NOON)
    world.step(run, "wait_1d", NOON)
    world.step(run, "wait_1d", NOON)  # the activity retried: logged once
    world.finish(run, "completed", "wait_1d", NOON + DAY)
    world.finish(run, "completed", "wait_1d", NOON + DAY)  # retried
    figures = world.exact()
    day = NOON.date()
    assert figures[("abandoned-cart", 1, "wait_1d", day, "", "", "step_entered")] == (1, 0)
    assert figures[("abandoned-cart", 1, "wait_1d", day, "", "", "step_left")] == (1, 0)
    assert figures[("abandoned-cart", 1, "wait_1d", day, "", "", "ended.completed")] == (1, 0)


def test_a_message_is_counted_once_when_it_becomes_final(world: World):
    """Two attempts racing past the idempotency check both record `sent`: the message
    counts as delivered once."""
    world.journey()
    run = world.enter("abandoned-cart", world.profile(), NOON)
    world.send(run, "reminder_1", "abandoned_cart/reminder", NOON + DAY)
    m = world.message(run, "reminder_1")
    with session_scope(world.engine) as s:
        row = s.get(Message, m.id)
        assert row is not None
        messaging.record_status(s, row, status="sent")
        messaging.record_status(s, row, status="sent")
    figures = world.exact()
    key = (
        "abandoned-cart",
        1,
        "reminder_1",
        (NOON + DAY).date(),
        "email",
        "abandoned_cart/reminder",
    )
    assert figures[(*key, "delivered")] == (1, 0)


def test_archive_and_erase_leave_nobody_waiting(world: World):
    from rejse.journeys.dispatcher import JourneyEraser

    world.journey()
    world.journey("winback")
    a, b = world.profile(), world.profile()
    run_a = world.enter("abandoned-cart", a, NOON)
    world.step(run_a, "wait_1d", NOON)
    run_b = world.enter("winback", b, NOON)
    world.step(run_b, "wait_1d", NOON)
    with session_scope(world.engine) as s:
        journeys.set_status(s, key="abandoned-cart", status="archived")
    with session_scope(world.engine) as s:
        JourneyEraser(world.runtime).erase(s, b)
    with Session(world.engine) as s:
        assert sum(waiting_now(s, journey_key=None, group_by=()).values()) == 0
        # what the erased run did stays counted; the archived run ended as cancelled
        figures = rollups.current(s)
    assert figures[("winback", 1, "", NOON.date(), "", "", "entered")] == (1, 0)
    assert figures[("abandoned-cart", 1, "wait_1d", NOON.date(), "", "", "ended.cancelled")] == (
        1,
        0,
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_folds_move_each_delta_once(world: World):
    """Writers append while four folds run at once: every delta lands in the rollup once."""
    day = NOON.date()
    dims = deltas.Dims("j", 1, "s", day, "email", "t")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            with session_scope(world.engine) as s:
                for _ in range(50):
                    deltas.add(s, dims, "delivered", 1, 3)
            written[0] += 50

    def folder() -> None:
        while not stop.is_set():
            rollups.fold(world.engine, batch=37)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=folder) for _ in range(4)
    ]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    rollups.fold(world.engine)
    with Session(world.engine) as s:
        [count] = rollups.counts(s, group_by=("journey_key",), journey_key="j")
    assert written[0] > 0
    assert (count.n, count.revenue_units) == (written[0], 3 * written[0])
