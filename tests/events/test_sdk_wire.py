"""What Segment's and RudderStack's SDKs put on the wire, and what they need back: HTTP Basic
with the write key as user name, gzip/deflate bodies (limits after decompression, zip bombs
refused early), 200 answers they count as success, error bodies they can read."""

import base64
import gzip
import json
import time
import zlib

import pytest
import sqlalchemy as sa

from rejse.errors import DomainError
from rejse.events.schemas import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from rejse.models.events import Event
from rejse.roles import Role
from tests.conftest import auth

V1_PATHS = ["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias"]


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(Event))


TRACK = {"userId": "u-1", "event": "Product Viewed"}


# ----------------------------------------------------------------------------- auth


async def test_basic_auth_with_the_key_as_user_name(client, keys, engine):
    r = await client.post("/v1/track", json=TRACK, headers=basic(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    batch = {"batch": [{**TRACK, "type": "track"}]}
    r = await client.post("/v1/batch", json=batch, headers=basic(keys[Role.admin]))
    assert r.status_code == 200, r.text
    assert count(engine) == 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (basic("rjk_00000000_nope"), 401),
        (basic(""), 401),
        (basic("", "rjk_00000000_nope"), 401),
        ({"Authorization": "Basic !!!not-base64"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, 401),
        ({}, 401),
    ],
)
async def test_basic_auth_refuses_what_is_not_a_key(client, engine, headers, status):
    r = await client.post("/v1/track", json=TRACK, headers=headers)
    assert r.status_code == status, r.text
    assert "Basic" in r.headers["www-authenticate"]
    assert count(engine) == 0


async def test_basic_auth_checks_the_role_like_bearer(client, keys, engine):
    for role in (Role.marketer, Role.analyst, Role.sales):
        r = await client.post("/v1/track", json=TRACK, headers=basic(keys[role]))
        assert r.status_code == 403, (role, r.text)
    assert count(engine) == 0


async def test_basic_auth_is_for_ingestion_only(client, keys):
    r = await client.get("/api/dead-letters", headers=basic(keys[Role.admin]))
    assert r.status_code == 401
    assert (
        await client.get("/api/dead-letters", headers=auth(keys[Role.admin]))
    ).status_code == 200


async def test_openapi_documents_bearer_and_basic_on_v1(client):
    doc = (await client.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBasic"]["scheme"] == "basic"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    for path in [*V1_PATHS, "/v1/batch"]:
        op = doc["paths"][path]["post"]
        assert {"HTTPBearer": []} in op["security"], path
        assert {"HTTPBasic": []} in op["security"], path
        assert "200" in op["responses"], path
    control = doc["paths"]["/api/dead-letters"]["get"]["security"]
    assert control == [{"HTTPBearer": []}]


# ----------------------------------------------------------------------------- compression


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZIP", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", deflate_raw),
        ("identity", lambda b: b),
    ],
)
async def test_compressed_bodies_are_read(client, keys, engine, encoding, compress):
    batch = {
        "batch": [
            {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
            {**TRACK, "type": "track"},
        ]
    }
    r = await client.post(
        "/v1/batch",
        content=compress(json.dumps(batch).encode()),
        headers={**basic(keys[Role.ingest]), "Content-Encoding": encoding},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    r = await client.post(
        "/v1/track",
        content=compress(json.dumps(TRACK).encode()),
        headers={**auth(keys[Role.ingest]), "Content-Encoding": encoding},
    )
    assert r.status_code == 200, r.text
    assert count(engine) == 3


async def test_limits_apply_after_decompression(client, keys, engine):
    # Repetitive text compresses far below the limits; what counts is the decompressed size.
    big_event = {**TRACK, "properties": {"blob": "ab" * (MAX_EVENT_BYTES // 2)}}
    packed = gzip.compress(json.dumps(big_event).encode())
    assert len(packed) < MAX_EVENT_BYTES // 10
    h = {**auth(keys[Role.ingest]), "Content-Encoding": "gzip"}
    r = await client.post("/v1/track", content=packed, headers=h)
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "body"
    item = {**TRACK, "type": "track", "properties": {"blob": "xy" * 5000}}
    big_batch = gzip.compress(json.dumps({"batch": [item] * 60}).encode())
    assert len(big_batch) < MAX_BATCH_BYTES // 10
    r = await client.post("/v1/batch", content=big_batch, headers=h)
    assert r.status_code == 413, r.text
    assert count(engine) == 0


async def test_a_zip_bomb_gets_413_quickly(client, keys, engine):
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}", compresslevel=9)
    started = time.monotonic()
    r = await client.post(
        "/v1/batch",
        content=bomb,
        headers={**auth(keys[Role.ingest]), "Content-Encoding": "gzip"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "body"
    assert time.monotonic() - started < 2
    assert count(engine) == 0


async def test_the_reader_stops_inflating_at_the_first_sign_of_a_bomb():
    from rejse.events.bodies import MAX_COMPRESSION_RATIO, read_body

    bomb = gzip.compress(b"0" * 20_000_000, compresslevel=9)
    pieces = [bomb[i : i + 1024] for i in range(0, len(bomb), 1024)]
    consumed = 0

    async def chunks():
        nonlocal consumed
        for piece in pieces:
            consumed += 1
            yield piece

    with pytest.raises(DomainError) as err:
        await read_body(chunks(), encoding="gzip", limit=MAX_BATCH_BYTES)
    assert err.value.status_code == 413
    assert consumed < len(pieces) // 4, (consumed, len(pieces))
    assert str(MAX_COMPRESSION_RATIO) in err.value.message


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("gzip", b"this is not gzip", 400),
        ("gzip", gzip.compress(json.dumps(TRACK).encode())[:-12], 400),  # truncated
        ("deflate", b"\x00\x01garbage", 400),
        ("br", b"\x0b\x02\x80", 415),
        ("gzip, br", b"", 415),
    ],
)
async def test_bad_compressed_bodies_name_the_problem(client, keys, engine, encoding, body, status):
    r = await client.post(
        "/v1/track",
        content=body,
        headers={**auth(keys[Role.ingest]), "Content-Encoding": encoding},
    )
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["field"] in ("body", "content-encoding")
    assert count(engine) == 0


# ----------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", TRACK),
        ("/v1/identify", {"userId": "u-1", "traits": {"plan": "pro"}}),
        ("/v1/page", {"anonymousId": "a-1", "name": "Home"}),
        ("/v1/screen", {"anonymousId": "a-1", "name": "Basket"}),
        ("/v1/group", {"userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}}),
        ("/v1/alias", {"userId": "u-1", "previousId": "a-1"}),
        ("/v1/batch", {"batch": [{**TRACK, "type": "track"}]}),
    ],
)
async def test_success_is_200_with_success_true(client, keys, path, body):
    """Segment's API answers 200 {"success": true}; RudderStack's SDK retries anything but
    200. The counts stay for rejse's own clients."""
    r = await client.post(path, json=body, headers=basic(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ("ingest", b"{not json", 400),
        ("ingest", b'{"event": "E"}', 422),
        ("ingest", b'{"userId": "u", "event": "E", "properties": {"x": NaN}}', 400),
        ("marketer", b"{}", 403),
        (None, b"{}", 401),
    ],
)
async def test_error_answers_carry_code_and_message(client, keys, headers, body, status):
    """RudderStack's SDK reads `code` and `message` from a non-200 answer; without them it
    fails on a KeyError and retries a request that cannot succeed."""
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(basic(keys[Role(headers)]))
    r = await client.post("/v1/track", content=body, headers=h)
    assert r.status_code == status, r.text
    payload = r.json()
    assert isinstance(payload["code"], str)
    assert payload["code"]
    assert payload["message"] == payload["detail"]
    assert payload["errors"][0]["field"]
