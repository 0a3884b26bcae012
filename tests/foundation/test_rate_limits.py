"""Per-key rate limits (rejse.ratelimits, api.ratelimit): a burst over the limit gets 429 with
`Retry-After`, every request that was accepted is processed, and API processes share the
limit on PostgreSQL and on Redis (the real servers at 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rejse import wiring
from rejse.db import make_engine
from rejse.events.processor import EventProcessor
from rejse.ratelimits import build_rate_limiter
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.settings import ConfigError, Settings, load_settings
from rejse.signatures import sign
from tests.conftest import auth, role_keys

REDIS_URL = "redis://127.0.0.1:6379/0"


def limited(settings: Settings, **limits: str) -> Settings:
    return settings.model_copy(update=limits)


@asynccontextmanager
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = wiring.api_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def track(n: int) -> dict[str, object]:
    return {"userId": f"u-{n % 3}", "event": "Product Viewed", "messageId": f"burst-{n}"}


def events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one())


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")


async def test_a_burst_over_the_ingest_limit_gets_429_and_nothing_accepted_is_lost(
    settings, engine
):
    runtime = Runtime.create(limited(settings, rate_limit_ingest="5/minute"), engine=engine)
    key = role_keys(runtime)[Role.ingest]
    async with api(runtime) as client:
        answers = [
            await client.post("/v1/track", json=track(n), headers=auth(key)) for n in range(9)
        ]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 4
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert "rate limit exceeded (5 per 1 minute)" in body["detail"]
    # what was accepted is stored and processed, what was refused is not stored at all
    assert events(engine) == 5
    processed = await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    assert processed == 5
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM event_outbox")).scalar_one()
        unprocessed = conn.execute(
            sa.text("SELECT count(*) FROM event WHERE processed_at IS NULL")
        ).scalar_one()
    assert (left, unprocessed) == (0, 0)


async def test_the_limit_is_per_key_and_per_scope(settings, engine):
    runtime = Runtime.create(
        limited(settings, rate_limit_ingest="2/minute", rate_limit_control="3/minute"),
        engine=engine,
    )
    first, second = role_keys(runtime), role_keys(runtime)
    async with api(runtime) as client:
        ok = [await client.post("/v1/track", json=track(8), headers=auth(first[Role.ingest]))]
        ok.append(await client.post("/v1/track", json=track(9), headers=auth(first[Role.ingest])))
        over = await client.post("/v1/track", json=track(10), headers=auth(first[Role.ingest]))
        other = await client.post("/v1/track", json=track(11), headers=auth(second[Role.ingest]))
        # the control plane counts apart, and once per request although its input guard checks
        # the key before the route does
        reads = [
            (await client.get("/api/keys", headers=auth(first[Role.admin]))).status_code
            for _ in range(4)
        ]
        over_control = await client.get("/api/keys", headers=auth(first[Role.admin]))
        # a wrong role is 403 and not counted: the limit is the key's own
        wrong = await client.get("/api/keys", headers=auth(second[Role.analyst]))
    assert [r.status_code for r in ok] == [200, 200]
    assert over.status_code == 429
    assert other.status_code == 200
    assert reads == [200, 200, 200, 429]
    assert over_control.status_code == 429
    assert int(over_control.headers["retry-after"]) >= 1
    assert over_control.json() == {
        "detail": over_control.json()["detail"],
        "errors": [],
    }
    assert wrong.status_code == 403


async def test_the_control_plane_limit_applies_before_the_body_is_read(settings, engine):
    runtime = Runtime.create(limited(settings, rate_limit_control="1/minute"), engine=engine)
    key = role_keys(runtime)[Role.marketer]
    async with api(runtime) as client:
        await client.get("/api/templates", headers=auth(key))
        r = await client.post("/api/templates", content=b"{not json", headers=auth(key))
    assert r.status_code == 429
    assert r.json()["errors"] == []
    assert "Retry-After" in r.headers


async def test_signed_webhooks_are_limited_per_source(settings, engine):
    runtime = Runtime.create(limited(settings, rate_limit_ingest="2/minute"), engine=engine)
    admin = role_keys(runtime)[Role.admin]
    async with api(runtime) as client:
        r = await client.post(
            "/api/webhook-sources", json={"kind": "generic", "name": "pos"}, headers=auth(admin)
        )
        secret = r.json()["secret"]
        answers = []
        for n in range(3):
            body = json.dumps(
                {"type": "track", "userId": "u", "event": "Visit", "messageId": f"v{n}"}
            )
            answers.append(
                await client.post(
                    "/webhooks/generic/pos",
                    content=body,
                    headers={"X-Rejse-Signature": sign(secret, body.encode())},
                )
            )
        # a bad signature is 401, never counted against the source
        bad = await client.post(
            "/webhooks/generic/pos", content=b"{}", headers={"X-Rejse-Signature": "t=1,v1=00"}
        )
    assert [r.status_code for r in answers] == [202, 202, 429]
    assert answers[2].headers["Retry-After"].isdigit()
    assert answers[2].json()["errors"] == []
    assert bad.status_code == 401
    assert events(engine) == 2
    assert await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain() == 2


async def alternate(clients: list[httpx.AsyncClient], keys: list[str], n: int) -> list[int]:
    statuses = []
    for i in range(n):
        r = await clients[i % 2].post("/v1/track", json=track(1000 + i), headers=auth(keys[i % 2]))
        statuses.append(r.status_code)
    return statuses


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_api_processes_share_the_limit_on_postgresql(settings, engine, db_url):
    settings = limited(settings, rate_limit_ingest="6/minute")
    other_engine = make_engine(db_url)  # the second process's own engine and pool
    try:
        one = Runtime.create(settings, engine=engine)
        two = Runtime.create(settings, engine=other_engine)
        key = role_keys(one)[Role.ingest]
        async with api(one) as a, api(two) as b:
            assert a._transport.app.state.rate_limiter.backend == "postgresql"  # type: ignore[attr-defined]
            statuses = await alternate([a, b], [key, key], 10)
    finally:
        other_engine.dispose()
    assert statuses.count(200) == 6
    assert statuses[6:] == [429] * 4
    assert events(engine) == 6


async def test_two_api_processes_share_the_limit_on_redis(settings, engine):
    redis_or_skip()
    prefix = f"rejse-test-{uuid.uuid4().hex}"
    settings = limited(
        settings, rate_limit_ingest="6/minute", redis_url=REDIS_URL, redis_key_prefix=prefix
    )
    one, two = Runtime.create(settings, engine=engine), Runtime.create(settings, engine=engine)
    key = role_keys(one)[Role.ingest]
    try:
        async with api(one) as a, api(two) as b:
            assert a._transport.app.state.rate_limiter.backend == "redis"  # type: ignore[attr-defined]
            statuses = await alternate([a, b], [key, key], 10)
        stored = redis.Redis.from_url(REDIS_URL).keys(f"{prefix}:*")
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.keys(f"{prefix}:*"):
            client.delete(name)
    assert statuses.count(200) == 6
    assert statuses[6:] == [429] * 4
    assert stored  # the windows live in Redis under the run's own prefix
    assert events(engine) == 6


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_unreachable_store_lets_requests_through(settings, engine):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = Runtime.create(
        limited(settings, rate_limit_ingest="1/minute", redis_url=f"redis://127.0.0.1:{port}/0"),
        engine=engine,
    )
    key = role_keys(runtime)[Role.ingest]
    async with api(runtime) as client:
        statuses = [
            (await client.post("/v1/track", json=track(n), headers=auth(key))).status_code
            for n in range(3)
        ]
    assert statuses == [200, 200, 200]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_postgresql_window_resets_in_place(settings, engine):
    limiter = build_rate_limiter(limited(settings, rate_limit_control="2/second"), engine)
    assert [limiter.hit("control", "k1") for _ in range(2)] == [None, None]
    refusal = limiter.hit("control", "k1")
    assert refusal is not None
    assert refusal.retry_after == 1
    time.sleep(1.1)
    assert limiter.hit("control", "k1") is None
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM rate_limit_window")).scalar_one()
    assert rows == 1  # one row per caller and scope, not one per window


def test_limits_off_and_bad_limits():
    settings = load_settings(rate_limit_ingest="off", rate_limit_control="OFF")
    limiter = build_rate_limiter(settings, make_engine("sqlite://"))
    assert limiter.limits == {"ingest": None, "control": None}
    assert limiter.hit("ingest", "k") is None
    with pytest.raises(ConfigError, match="REJSE_RATE_LIMIT_INGEST: .*'lots' is not a rate"):
        load_settings(rate_limit_ingest="lots")
    with pytest.raises(ConfigError, match="REJSE_RATE_LIMIT_CONTROL"):
        load_settings(rate_limit_control="0/second")
