"""/v1 ingestion: 200 after durable storage, idempotency, validation naming the field, limits."""

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from sqlmodel import select

from rejse.models.events import Event, OutboxEntry
from rejse.roles import Role
from tests.conftest import auth
from tests.events.helpers import EXAMPLES


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


async def test_track_stores_event_and_outbox(client, keys, session):
    body = {
        "userId": "u-1",
        "event": "Product Viewed",
        "properties": {"sku": "A"},
        "messageId": "m-1",
    }
    r = await client.post("/v1/track", json=body, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }
    event = session.exec(select(Event)).one()
    assert (event.type, event.event, event.user_id, event.properties) == (
        "track",
        "Product Viewed",
        "u-1",
        {"sku": "A"},
    )
    assert count(session, OutboxEntry) == 1


async def test_same_message_id_is_stored_once(client, keys, session):
    body = {"anonymousId": "a-1", "event": "Cart Viewed", "messageId": "dup-1"}
    for _ in range(3):
        r = await client.post("/v1/track", json=body, headers=auth(keys[Role.ingest]))
        assert r.status_code == 200
    assert (r.json()["accepted"], r.json()["duplicates"]) == (0, 1)
    assert count(session, Event) == 1
    assert count(session, OutboxEntry) == 1


async def test_batch_counts_duplicates(client, keys, session):
    batch = json.loads((EXAMPLES / "segment_batch.json").read_text())
    r = await client.post("/v1/batch", json=batch, headers=auth(keys[Role.ingest]))
    assert (r.json()["accepted"], r.json()["duplicates"]) == (4, 0)
    batch["batch"].append({"type": "track", "userId": "x", "event": "E", "messageId": "new-1"})
    r = await client.post("/v1/batch", json=batch, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200
    assert (r.json()["accepted"], r.json()["duplicates"]) == (1, 4)
    assert count(session, Event) == 5
    assert count(session, OutboxEntry) == 5


async def test_server_generates_message_id(client, keys, session):
    for _ in range(2):
        await client.post(
            "/v1/page", json={"anonymousId": "a", "name": "Home"}, headers=auth(keys[Role.ingest])
        )
    events = session.exec(select(Event)).all()
    assert len({e.message_id for e in events}) == 2
    assert events[0].properties == {"name": "Home"}


async def test_timestamp_correction_with_sent_at(client, keys, session):
    # The device clock is 1 hour fast: sentAt and timestamp both carry the skew.
    now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    body = {
        "userId": "u",
        "event": "E",
        "timestamp": (now - dt.timedelta(minutes=10)).isoformat(),
        "sentAt": now.isoformat(),
    }
    await client.post("/v1/track", json=body, headers=auth(keys[Role.ingest]))
    event = session.exec(select(Event)).one()
    expected = event.received_at - dt.timedelta(minutes=10)
    assert abs((event.timestamp - expected).total_seconds()) < 0.01


async def test_timestamp_without_sent_at_is_kept(client, keys, session):
    await client.post(
        "/v1/track",
        json={"userId": "u", "event": "E", "timestamp": "2026-11-20T09:10:00+01:00"},
        headers=auth(keys[Role.ingest]),
    )
    assert session.exec(select(Event)).one().timestamp == dt.datetime(
        2026, 11, 20, 8, 10, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/track", b"{not json", 400, "body"),
        ("/v1/track", b"[1, 2]", 400, "body"),
        ("/v1/track", b'{"event": "E"}', 422, "userId"),
        ("/v1/track", b'{"userId": "u"}', 422, "event"),
        ("/v1/track", b'{"userId": "u", "event": "E", "properties": "x"}', 422, "properties"),
        ("/v1/track", b'{"userId": "u", "event": "E", "timestamp": "yesterday"}', 422, "timestamp"),
        ("/v1/track", b'{"userId": {"a": 1}, "event": "E"}', 422, "userId"),
        ("/v1/alias", b'{"userId": "u"}', 422, "previousId"),
        ("/v1/identify", b'{"traits": {}}', 422, "userId"),
        ("/v1/batch", b'{"batch": []}', 422, "batch"),
        (
            "/v1/batch",
            b'{"batch": [{"type": "track", "userId": "u"}, {"type": "track", "event": "E"}]}',
            422,
            "batch.1.userId",
        ),
        ("/v1/batch", b'{"batch": [{"type": "teleport", "userId": "u"}]}', 422, "batch.0.type"),
        ("/v1/batch", b'{"batch": {"type": "track"}}', 422, "batch"),
        ("/v1/batch", b'{"batch": [1, "x"]}', 422, "batch.1"),
        ("/v1/group", b'{"userId": "u", "groupId": ""}', 422, "groupId"),
    ],
)
async def test_bad_input_names_the_field(client, keys, session, path, body, status, field):
    r = await client.post(
        path, content=body, headers={**auth(keys[Role.ingest]), "content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert count(session, Event) == 0


async def test_size_limits(client, keys, session):
    big = {"userId": "u", "event": "E", "properties": {"blob": "x" * 33_000}}
    r = await client.post("/v1/track", json=big, headers=auth(keys[Role.ingest]))
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "body"
    ok = {"type": "track", "userId": "u", "event": "E"}
    r = await client.post(
        "/v1/batch", json={"batch": [{**big, "type": "track"}]}, headers=auth(keys[Role.ingest])
    )
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "batch.0"
    many = {"batch": [{**ok, "properties": {"blob": "x" * 20_000}} for _ in range(30)]}
    r = await client.post("/v1/batch", json=many, headers=auth(keys[Role.ingest]))
    assert r.status_code == 413
    assert count(session, Event) == 0


async def test_ingest_needs_ingest_role(client, keys):
    body = {"userId": "u", "event": "E"}
    assert (await client.post("/v1/track", json=body)).status_code == 401
    r = await client.post("/v1/track", json=body, headers=auth(keys[Role.marketer]))
    assert r.status_code == 403
    r = await client.post("/v1/track", json=body, headers=auth(keys[Role.admin]))
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"userId": "a\\u0000b", "event": "E"}',
        b'{"userId": "u", "event": "E\\u0000"}',
        b'{"userId": "u", "event": "E", "properties": {"x": Infinity}}',
        b'{"userId": "u", "event": "E", "properties": {"x": NaN}}',
        b'{"userId": "u", "event": "E", "properties": {"k\\u0000": "v\\u0000"}}',
        b'{"userId": "u", "event": "E", "timestamp": "0001-01-01T00:00:00Z", '
        b'"sentAt": "9999-12-31T23:59:59Z"}',
        b'{"userId": "u", "event": "E", "timestamp": "9999-12-31T23:59:59Z", '
        b'"sentAt": "0001-01-01T00:00:00Z"}',
        b'{"userId": "u", "event": "E", "properties": {"n": 123456789012345678901234567890}}',
        b'{"userId": 1e400, "event": "E"}',
    ],
)
async def test_awkward_values_never_5xx(client, keys, session, body):
    r = await client.post(
        "/v1/track",
        content=body,
        headers={**auth(keys[Role.ingest]), "content-type": "application/json"},
    )
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code != 200:
        assert count(session, Event) == 0
