"""Segment calls the way the SDKs send them: `context.traits` folded into the profile, `group`
and `screen` calls (alone and in a batch), and a batch whose bad messages are refused one by
one while the good ones are stored."""

import sqlalchemy as sa
from sqlmodel import select

from rejse.events.processor import EventProcessor
from rejse.models.events import Event
from rejse.models.profiles import Profile
from rejse.profiles.service import find_by_identifier, load_snapshot
from rejse.roles import Role
from tests.conftest import auth


def drain(runtime):
    return EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()


def profile_of(session, user_id: str) -> Profile:
    session.expire_all()
    pid = find_by_identifier(session, type="user_id", value=user_id)
    assert pid, user_id
    profile = session.get(Profile, pid)
    assert profile is not None
    return profile


# ----------------------------------------------------------------------------- context.traits


async def test_context_traits_fold_into_the_profile_and_top_level_traits_win(
    client, keys, runtime, session
):
    h = auth(keys[Role.ingest])
    r = await client.post(
        "/v1/identify",
        json={
            "userId": "u-1",
            "traits": {"plan": "pro"},
            "context": {"traits": {"plan": "free", "first_name": "Mette", "locale": "da-DK"}},
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    # RudderStack's SDK sends identify traits only in context.traits.
    await client.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "identify", "userId": "u-1", "context": {"traits": {"city": "Aarhus"}}},
                {
                    "type": "track",
                    "userId": "u-1",
                    "event": "Order Completed",
                    "context": {"traits": {"vip": True, "email": "Mette@Example.dk"}},
                },
                {
                    "type": "page",
                    "userId": "u-1",
                    "name": "Home",
                    "context": {"traits": {"last_page": "home"}},
                },
            ]
        },
        headers=h,
    )
    await drain(runtime)
    profile = profile_of(session, "u-1")
    assert profile.traits == {
        "plan": "pro",
        "first_name": "Mette",
        "locale": "da-DK",
        "city": "Aarhus",
        "vip": True,
        "email": "Mette@Example.dk",
        "last_page": "home",
    }
    assert profile.locale == "da-DK"
    snap = load_snapshot(session, profile_id=profile.id)
    assert snap.identifiers["email"] == ["mette@example.dk"]


# ----------------------------------------------------------------------------- group / screen


async def test_group_calls_keep_the_group_on_the_profile(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    r = await client.post(
        "/v1/group",
        json={
            "userId": "u-1",
            "groupId": "acme",
            "traits": {"name": "Acme ApS", "plan": "enterprise", "employees": 40},
            "timestamp": "2026-11-20T09:00:00Z",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "identify", "userId": "u-1", "traits": {"email": "a@example.dk"}},
                {
                    "type": "group",
                    "userId": "u-1",
                    "groupId": 4711,  # numeric ids arrive as numbers
                    "traits": {"name": "Beta A/S"},
                    "timestamp": "2026-11-21T09:00:00Z",
                },
                {
                    "type": "group",
                    "userId": "u-1",
                    "groupId": "acme",
                    "traits": {"plan": "pro", "employees": None},
                    "timestamp": "2026-11-22T09:00:00Z",
                },
                {"type": "track", "userId": "u-1", "event": "Checkout Started"},
            ]
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 4
    await drain(runtime)
    profile = profile_of(session, "u-1")
    assert profile.traits == {"email": "a@example.dk"}  # group traits are not person traits
    assert profile.groups == {
        "acme": {
            "traits": {"name": "Acme ApS", "plan": "pro"},
            "first_seen_at": "2026-11-20T09:00:00+00:00",
            "last_seen_at": "2026-11-22T09:00:00+00:00",
        },
        "4711": {
            "traits": {"name": "Beta A/S"},
            "first_seen_at": "2026-11-21T09:00:00+00:00",
            "last_seen_at": "2026-11-21T09:00:00+00:00",
        },
    }
    events = session.exec(select(Event).where(Event.type == "group")).all()
    assert sorted(e.group_id for e in events) == ["4711", "acme", "acme"]
    assert {e.profile_id for e in events} == {profile.id}
    r = await client.get(f"/api/profiles/{profile.id}", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    assert r.json()["groups"]["acme"]["traits"] == {"name": "Acme ApS", "plan": "pro"}


async def test_a_merge_keeps_the_groups_of_both_profiles(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    await client.post(
        "/v1/group",
        json={"anonymousId": "anon-1", "groupId": "acme", "traits": {"name": "Acme"}},
        headers=h,
    )
    await client.post(
        "/v1/group",
        json={"userId": "u-1", "groupId": "beta", "traits": {"name": "Beta"}},
        headers=h,
    )
    await drain(runtime)
    await client.post("/v1/identify", json={"anonymousId": "anon-1", "userId": "u-1"}, headers=h)
    await drain(runtime)
    profile = profile_of(session, "u-1")
    assert session.scalar(sa.select(sa.func.count()).select_from(Profile)) == 1
    assert {g: v["traits"] for g, v in profile.groups.items()} == {
        "acme": {"name": "Acme"},
        "beta": {"name": "Beta"},
    }


async def test_group_needs_a_group_id(client, keys, engine):
    r = await client.post(
        "/v1/group", json={"userId": "u-1", "traits": {}}, headers=auth(keys[Role.ingest])
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["groupId"]


async def test_screen_calls_are_stored_like_pages(client, keys, runtime, session):
    h = auth(keys[Role.ingest])
    r = await client.post(
        "/v1/screen",
        json={"userId": "u-1", "name": "Basket", "category": "Shop", "properties": {"n": 2}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    await drain(runtime)
    event = session.exec(select(Event)).one()
    assert (event.type, event.properties) == (
        "screen",
        {"n": 2, "name": "Basket", "category": "Shop"},
    )
    assert event.profile_id == profile_of(session, "u-1").id


# ----------------------------------------------------------------------------- batch policy


async def test_a_bad_message_in_a_batch_is_refused_alone(client, keys, runtime, session):
    """Good messages are stored and answered 200 (an SDK must not retry them); the answer
    names each refused message by index and field."""
    batch = {
        "batch": [
            {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}, "messageId": "m-0"},
            {"type": "track", "event": "No Identity", "messageId": "m-1"},
            {"type": "group", "userId": "u-1", "groupId": "acme", "messageId": "m-2"},
            {"type": "teleport", "userId": "u-1", "messageId": "m-3"},
            {"type": "track", "userId": "u-1", "event": "Checkout Started", "messageId": "m-4"},
            {"type": "track", "userId": "u-1", "properties": {"n": 10**30}, "event": "E"},
        ]
    }
    r = await client.post("/v1/batch", json=batch, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["success"], body["accepted"], body["duplicates"], body["rejected"]) == (
        True,
        3,
        0,
        3,
    )
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (1, "batch.1.userId"),
        (3, "batch.3.type"),
        (5, "batch.5.properties.n"),
    }
    assert all(e["message"] for e in body["errors"])
    stored = session.exec(select(Event.message_id)).all()
    assert sorted(stored) == ["m-0", "m-2", "m-4"]
    await drain(runtime)
    assert profile_of(session, "u-1").groups["acme"]["traits"] == {}


async def test_a_batch_of_only_bad_messages_is_refused(client, keys, engine, session):
    batch = {"batch": [{"type": "track", "event": "E"}, {"type": "track", "userId": "u"}]}
    r = await client.post("/v1/batch", json=batch, headers=auth(keys[Role.ingest]))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["batch.0.userId", "batch.1.event"]
    assert session.exec(select(Event)).all() == []


async def test_an_oversized_message_in_a_batch_is_refused_alone(client, keys, session):
    ok = {"type": "track", "userId": "u", "event": "E", "messageId": "ok"}
    big = {**ok, "messageId": "big", "properties": {"blob": "x" * 33_000}}
    r = await client.post("/v1/batch", json={"batch": [ok, big]}, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == 1
    assert r.json()["errors"][0]["field"] == "batch.1"
    assert session.exec(select(Event.message_id)).all() == ["ok"]


async def test_erasing_a_profile_forgets_its_groups(client, keys, runtime, session):
    await client.post(
        "/v1/group",
        json={"userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}},
        headers=auth(keys[Role.ingest]),
    )
    await drain(runtime)
    pid = profile_of(session, "u-1").id
    r = await client.delete(f"/api/profiles/{pid}", headers=auth(keys[Role.admin]))
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/profiles/{pid}", headers=auth(keys[Role.analyst]))
    assert r.json()["groups"] == {}
