"""Membership kept current per event: through /v1, the real event processor with every
registered subscriber, and the database; merges and GDPR erase."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import Session

from rejse import wiring
from rejse.audiences import service
from rejse.audiences.subscriber import AudienceSubscriber
from rejse.contracts import ProcessedEvent
from rejse.db import utcnow
from rejse.models.profiles import ProfileMerge
from rejse.profiles.gdpr import erase_profile
from tests.audiences.membership_helpers import (
    audience_events,
    create,
    identify,
    members,
    pid_of,
    rechecks,
    track,
)

BUYERS = {"event": "Order Completed", "within": "P90D"}
DK = {"trait": "country", "op": "eq", "value": "DK"}


async def test_events_enter_and_leave_audiences_through_the_processor(
    client, keys, runtime, engine
):
    create(engine, "buyers", BUYERS)
    create(engine, "dk", DK)
    processor = wiring.event_processor(runtime)
    await identify(client, keys, {"userId": "u-1", "traits": {"country": "DK"}})
    await track(client, keys, "u-1", "Order Completed", total=100)
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "buyers") == {pid}
    assert members(engine, "dk") == {pid}
    await identify(client, keys, {"userId": "u-1", "traits": {"country": "SE"}})
    await processor.drain()
    assert members(engine, "dk") == set()
    assert members(engine, "buyers") == {pid}
    assert audience_events(engine, pid) == [
        (pid, "Audience Entered", "dk"),
        (pid, "Audience Entered", "buyers"),
        (pid, "Audience Exited", "dk"),
    ]
    with Session(engine) as s:
        assert service.get_audience(s, "buyers").size == 1
        assert service.get_audience(s, "dk").size == 0
    # the membership events were processed like any event: nothing is left in the outbox
    assert await processor.drain() == 0


async def test_an_old_event_outside_the_window_enters_nothing(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    await track(client, keys, "u-1", "Order Completed", at=utcnow() - dt.timedelta(days=91))
    await wiring.event_processor(runtime).drain()
    assert members(engine, "buyers") == set()
    assert rechecks(engine) == {}


async def test_an_audience_naming_another_follows_it_in_the_same_event(
    client, keys, runtime, engine
):
    create(engine, "repeat", {"event": "Order Completed", "count": {"gte": 2}})
    create(engine, "dk-repeat", {"all": [{"audience": "repeat"}, DK]})
    create(engine, "not-repeat", {"not": {"audience": "repeat"}})
    processor = wiring.event_processor(runtime)
    await identify(client, keys, {"userId": "u-1", "traits": {"country": "DK"}})
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "not-repeat") == {pid}  # a new profile checks every audience
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    assert members(engine, "repeat") == {pid}
    assert members(engine, "dk-repeat") == {pid}
    assert members(engine, "not-repeat") == set()
    assert audience_events(engine, pid)[-3:] == [
        (pid, "Audience Entered", "repeat"),
        (pid, "Audience Entered", "dk-repeat"),
        (pid, "Audience Exited", "not-repeat"),
    ]


async def test_customer_value_is_read_as_this_event_left_it(client, keys, runtime, engine):
    """The audience subscriber runs after customer value: the order that makes a high
    spender enters them in the same event."""
    create(engine, "high-spenders", {"customer": "revenue", "op": "gte", "value": 1000})
    processor = wiring.event_processor(runtime)
    await track(client, keys, "u-1", "Order Completed", order_id="o-1", revenue=600)
    await processor.drain()
    assert members(engine, "high-spenders") == set()
    await track(client, keys, "u-1", "Order Completed", order_id="o-2", revenue=600)
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "high-spenders") == {pid}
    await track(client, keys, "u-1", "Order Refunded", order_id="o-2", revenue=600)
    await processor.drain()
    assert members(engine, "high-spenders") == set()
    assert [e for _, e, _ in audience_events(engine, pid)] == [
        "Audience Entered",
        "Audience Exited",
    ]


def _event(pid: str, name: str | None, **kw) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=uuid.uuid4().hex,
        profile_id=pid,
        type="track" if name else "identify",
        event=name,
        timestamp=utcnow(),
        received_at=utcnow(),
        **kw,
    )


def test_wants_only_events_that_can_change_an_audience(engine):
    sub = AudienceSubscriber()

    def wants(name: str | None, **kw) -> bool:
        with Session(engine) as s:  # a new transaction sees the audiences saved meanwhile
            return sub.wants(s, _event("prf_x", name, **kw))

    assert not wants("Order Completed")  # no audiences
    create(engine, "buyers", BUYERS)
    create(engine, "dk", DK)
    create(engine, "mailable", {"consent": "email"})
    assert wants("Order Completed")
    assert not wants("Page Viewed")
    assert wants(None, traits={"country": "DK"})
    assert not wants(None, traits={"first_name": "Ida"})
    assert wants("Page Viewed", merged_from=["prf_old"])
    consent = [{"channel": "email", "status": "granted", "source": "form"}]
    assert wants("Page Viewed", consent_changes=consent)
    # an audience an empty profile is in: every event may be a new profile's first
    create(engine, "no-orders", {"not": {"event": "Order Completed"}})
    assert wants("Page Viewed")


async def test_a_merge_moves_memberships_to_the_survivor(client, keys, runtime, engine):
    create(engine, "browsers", {"event": "Product Viewed"})
    create(engine, "buyers", BUYERS)
    processor = wiring.event_processor(runtime)
    await send_anonymous(client, keys, "anon-1", "Product Viewed")
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    buyer = pid_of(engine, "u-1")
    assert members(engine, "buyers") == {buyer}
    assert rechecks(engine, "buyers").keys() == {("buyers", buyer)}
    await identify(client, keys, {"anonymousId": "anon-1", "userId": "u-1"})
    await processor.drain()
    survivor = pid_of(engine, "u-1")
    assert survivor != buyer  # the older, anonymous profile survives
    with Session(engine) as s:
        assert s.get(ProfileMerge, buyer).into_profile_id == survivor
    assert members(engine, "browsers") == {survivor}
    assert members(engine, "buyers") == {survivor}
    assert {pid for _, pid in rechecks(engine)} == {survivor}
    # each audience was entered once; the move itself is silent
    entered = [(e, k) for _, e, k in audience_events(engine)]
    assert sorted(entered) == [("Audience Entered", "browsers"), ("Audience Entered", "buyers")]


async def send_anonymous(client, keys, anonymous_id: str, event: str) -> None:
    from tests.audiences.membership_helpers import send

    await send(client, keys, "track", {"anonymousId": anonymous_id, "event": event})


async def test_erase_removes_memberships_and_rechecks(client, keys, runtime, engine):
    create(engine, "buyers", BUYERS)
    await track(client, keys, "u-1", "Order Completed")
    await track(client, keys, "u-2", "Order Completed")
    await wiring.event_processor(runtime).drain()
    erased, kept = pid_of(engine, "u-1"), pid_of(engine, "u-2")
    with Session(engine) as s:
        erase_profile(
            s,
            profile_id=erased,
            secret=runtime.settings.secret_key,
            erasers=wiring.profile_erasers(runtime),
        )
        s.commit()
    assert members(engine, "buyers") == {kept}
    assert {pid for _, pid in rechecks(engine)} == {kept}
    with Session(engine) as s:
        assert service.get_audience(s, "buyers").size == 1
        assert service.profile_audiences(s, erased) == []
