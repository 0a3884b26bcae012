"""The event processor: identity resolution over the Segment example, exactly-once apply,
retries and dead letters, subscribers and dispatchers."""

import sqlalchemy as sa
from sqlmodel import select

from rejse.events.processor import EventProcessor
from rejse.models.events import DeadLetter, Event, OutboxEntry
from rejse.models.profiles import Profile, ProfileIdentifier, ProfileMerge
from rejse.profiles.service import find_by_identifier, load_snapshot
from rejse.roles import Role
from tests.conftest import auth
from tests.events.helpers import example


class Recorder:
    """An in-transaction subscriber and a dispatcher that record what they see."""

    name = "recorder"

    def __init__(self, fail_on: set[str] | None = None):
        self.applied: list = []
        self.dispatched: list = []
        self.fail_on = fail_on or set()

    def apply(self, session, event):
        if event.event in self.fail_on:
            raise RuntimeError("poison")
        self.applied.append(event)
        return []

    async def dispatch(self, events):
        self.dispatched.extend(events)


def processor(runtime, rec=None, **kw):
    rec = rec or Recorder()
    return EventProcessor(runtime, subscribers=[rec], dispatchers=[rec], **kw), rec


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


async def test_segment_batch_ends_as_one_profile(client, keys, runtime, session):
    r = await client.post(
        "/v1/batch", json=example("segment_batch.json"), headers=auth(keys[Role.ingest])
    )
    assert r.status_code == 200
    proc, rec = processor(runtime)
    assert await proc.drain() == 4
    assert count(session, Profile) == 1
    assert count(session, OutboxEntry) == 0
    pid = find_by_identifier(session, type="user_id", value="cust-7012345678901")
    assert pid
    assert find_by_identifier(session, type="anonymous_id", value="anon-5f1c2a") == pid
    snap = load_snapshot(session, profile_id=pid)
    assert snap.identifiers == {
        "anonymous_id": ["anon-5f1c2a"],
        "user_id": ["cust-7012345678901"],
        "email": ["mette.hansen@example.dk"],
    }
    assert snap.locale == "da-DK"
    assert snap.traits["country"] == "DK"
    events = session.exec(select(Event).where(Event.profile_id == pid)).all()
    assert sorted(e.message_id for e in events) == ["m-0001", "m-0002", "m-0003", "m-0004"]
    assert [e.event_id for e in rec.dispatched] == [e.event_id for e in rec.applied]
    assert len(rec.dispatched) == 4
    assert {e.profile_id for e in rec.dispatched} == {pid}
    # Later, only the anonymous cookie: same profile.
    await client.post(
        "/v1/track",
        json={"anonymousId": "anon-5f1c2a", "event": "Product Viewed"},
        headers=auth(keys[Role.ingest]),
    )
    await proc.drain()
    assert count(session, Profile) == 1
    assert rec.dispatched[-1].profile_id == pid
    assert session.get(Profile, pid).event_count == 5


async def test_identify_merges_two_profiles(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    await client.post(
        "/v1/track", json={"anonymousId": "anon-1", "event": "Product Viewed"}, headers=h
    )
    await client.post("/v1/track", json={"userId": "u-1", "event": "Order Completed"}, headers=h)
    proc, rec = processor(runtime)
    await proc.drain()
    assert count(session, Profile) == 2
    older = rec.applied[0].profile_id
    await client.post(
        "/v1/identify",
        json={"anonymousId": "anon-1", "userId": "u-1", "traits": {"email": "a@example.dk"}},
        headers=h,
    )
    await proc.drain()
    assert count(session, Profile) == 1
    last = rec.applied[-1]
    assert last.profile_id == older
    assert len(last.merged_from) == 1
    gone = last.merged_from[0]
    assert load_snapshot(session, profile_id=gone).id == older  # merged id stays resolvable
    assert session.get(ProfileMerge, gone).into_profile_id == older
    assert session.get(Profile, older).event_count == 3  # counters summed
    assert {e.profile_id for e in session.exec(select(Event)).all()} == {older}


async def test_a_merge_within_one_batch_moves_the_batchs_earlier_events_too(
    client, keys, runtime, session
):
    """The two profiles and the identify merging them arrive in one batch: every event ends on
    the survivor, the earlier ones of the merged-away profile included (their stamps are written
    after the merge re-pointed the stored events, so they must name the survivor too)."""
    batch = [
        {"type": "track", "anonymousId": "anon-9", "event": "Product Viewed"},
        {"type": "track", "userId": "u-9", "event": "Order Completed"},
        {"type": "identify", "anonymousId": "anon-9", "userId": "u-9"},
    ]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200
    rec = Recorder()  # a dispatcher only: no subscriber makes the processor stamp mid-batch
    await EventProcessor(runtime, subscribers=[], dispatchers=[rec]).drain()
    assert count(session, Profile) == 1
    survivor = rec.dispatched[-1].profile_id
    assert len(rec.dispatched[-1].merged_from) == 1
    assert {e.profile_id for e in session.exec(select(Event)).all()} == {survivor}


async def test_conflicting_user_ids_do_not_merge(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    await client.post(
        "/v1/identify", json={"anonymousId": "shared-device", "userId": "u-1"}, headers=h
    )
    await client.post(
        "/v1/identify", json={"anonymousId": "shared-device", "userId": "u-2"}, headers=h
    )
    proc, _ = processor(runtime)
    await proc.drain()
    assert count(session, Profile) == 2
    assert find_by_identifier(
        session, type="anonymous_id", value="shared-device"
    ) == find_by_identifier(session, type="user_id", value="u-1")


async def test_blocked_values_are_not_identifiers(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    for uid in ("null", "anonymous", "-1", "0", "undefined"):
        await client.post(
            "/v1/track", json={"anonymousId": f"a-{uid}", "userId": uid, "event": "E"}, headers=h
        )
    proc, _ = processor(runtime)
    await proc.drain()
    assert count(session, Profile) == 5
    assert (
        session.exec(select(ProfileIdentifier).where(ProfileIdentifier.type == "user_id")).all()
        == []
    )


async def test_poison_event_goes_to_dead_letter_and_does_not_block(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    for name in ("A", "Poison", "B"):
        await client.post("/v1/track", json={"userId": "u-1", "event": name}, headers=h)
    proc, rec = processor(runtime, Recorder(fail_on={"Poison"}), max_attempts=2, backoff_base=0)
    await proc.drain()
    # (in-transaction subscribers may run again after a rolled-back batch: that is their contract)
    assert [e.event for e in rec.dispatched] == ["A", "B"]
    assert count(session, OutboxEntry) == 0
    dead = session.exec(select(DeadLetter)).one()
    assert dead.stage == "apply"
    assert dead.attempts == 2
    assert "RuntimeError" in dead.error


async def test_derived_events_are_processed_later(client, keys, runtime, session):
    class Deriver(Recorder):
        def apply(self, session, event):
            super().apply(session, event)
            return [("Lifecycle Stage Changed", {"to": "lead"})] if event.type == "track" else []

    await client.post(
        "/v1/track", json={"userId": "u-1", "event": "Signed Up"}, headers=auth(keys[Role.ingest])
    )
    proc, rec = processor(runtime, Deriver())
    await proc.drain()
    assert [(e.type, e.event) for e in rec.dispatched] == [
        ("track", "Signed Up"),
        ("internal", "Lifecycle Stage Changed"),
    ]
    assert rec.dispatched[1].profile_id == rec.dispatched[0].profile_id


async def test_consent_from_event_context(client, keys, runtime, session):
    await client.post(
        "/v1/identify",
        json={
            "userId": "u-1",
            "context": {"consent": {"email": True, "sms": "denied", "source": "signup form"}},
        },
        headers=auth(keys[Role.ingest]),
    )
    proc, rec = processor(runtime)
    await proc.drain()
    ev = rec.dispatched[0]
    assert {(c.channel, c.status) for c in ev.consent_changes} == {
        ("email", "granted"),
        ("sms", "denied"),
    }
    assert load_snapshot(session, profile_id=ev.profile_id).consents == {
        "email": "granted",
        "sms": "denied",
    }


async def test_dead_letters_api_lists_and_retries(client, keys, runtime, session):
    await client.post(
        "/v1/track", json={"userId": "u-1", "event": "Poison"}, headers=auth(keys[Role.ingest])
    )
    rec = Recorder(fail_on={"Poison"})
    proc, _ = processor(runtime, rec, max_attempts=1, backoff_base=0)
    await proc.drain()
    h = auth(keys[Role.admin])
    listed = (await client.get("/api/dead-letters", headers=h)).json()
    assert len(listed) == 1
    assert listed[0]["stage"] == "apply"
    assert (
        await client.get("/api/dead-letters", headers=auth(keys[Role.marketer]))
    ).status_code == 403
    rec.fail_on.clear()  # the bug is fixed; retry it
    r = await client.post(f"/api/dead-letters/{listed[0]['id']}/retry", headers=h)
    assert r.status_code == 200
    assert r.json()["retried_at"]
    assert (
        await client.post(f"/api/dead-letters/{listed[0]['id']}/retry", headers=h)
    ).status_code == 409
    await proc.drain()
    assert [e.event for e in rec.dispatched] == ["Poison"]
    assert (await client.get("/api/dead-letters", headers=h)).json() == []


async def test_subscriber_runs_only_on_events_it_wants_and_reads_the_profile_as_of_each(
    client, keys, runtime, session
):
    """`wants` False skips `apply`; an event it wants sees the profile flushed up to itself."""

    class Picky(Recorder):
        def __init__(self):
            super().__init__()
            self.seen_traits: list = []

        def wants(self, session, event):
            return event.event == "Scored"

        def apply(self, session, event):
            self.seen_traits.append(session.get(Profile, event.profile_id).traits.get("plan"))
            return super().apply(session, event)

    h = auth(keys[Role.ingest])
    await client.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "userId": "u-1", "event": "Page Seen"},
                {"type": "identify", "userId": "u-1", "traits": {"plan": "basic"}},
                {"type": "track", "userId": "u-1", "event": "Scored"},
                {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
                {"type": "track", "userId": "u-1", "event": "Scored"},
            ]
        },
        headers=h,
    )
    proc, rec = processor(runtime, Picky())
    assert await proc.drain() == 5
    assert [e.event for e in rec.applied] == ["Scored", "Scored"]
    assert rec.seen_traits == ["basic", "pro"]
    assert len(rec.dispatched) == 5


async def test_a_subscriber_sees_the_event_and_the_ones_before_it_attributed(
    client, keys, runtime, session
):
    """When a subscriber runs, the batch's events up to and including its own carry their
    profile id (a count of the profile's events, or a `within` window, includes this one)."""

    class Counting(Recorder):
        def __init__(self):
            super().__init__()
            self.counted: list[int] = []

        def wants(self, session, event):
            return event.event == "Scored"

        def apply(self, session, event):
            self.counted.append(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Event)
                    .where(Event.profile_id == event.profile_id)
                )
            )
            return super().apply(session, event)

    batch = [
        {"type": "track", "userId": "u-1", "event": "Page Seen"},
        {"type": "identify", "userId": "u-1", "traits": {"plan": "basic"}},
        {"type": "track", "userId": "u-1", "event": "Scored"},
        {"type": "track", "userId": "u-1", "event": "Page Seen"},
        {"type": "track", "userId": "u-1", "event": "Scored"},
        {"type": "track", "userId": "u-1", "event": "Page Seen"},
    ]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    proc, rec = processor(runtime, Counting())
    assert await proc.drain() == 6
    assert rec.counted == [3, 5]
    pid = find_by_identifier(session, type="user_id", value="u-1")
    assert count(session, Event) == 6
    session.expire_all()
    stamped = session.exec(select(Event).where(Event.profile_id == pid)).all()
    assert len(stamped) == 6
    assert all(e.processed_at is not None for e in stamped)
