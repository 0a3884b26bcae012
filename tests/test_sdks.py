"""Software nobody here wrote: Segment's `segment-analytics-python` and RudderStack's
`rudder-sdk-python`, pointed at the app under uvicorn on a loopback port, exactly as a shop's
backend would use them (write key, host, queue + flush). Every call type goes out; afterwards
the processor drains and every event must sit on the right profile, while neither SDK logged an
error nor sent a request twice (counted at the server)."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlmodel import select

from rejse.events.processor import EventProcessor
from rejse.models.events import Event
from rejse.models.profiles import Profile
from rejse.profiles.service import find_by_identifier, load_snapshot
from rejse.roles import Role
from tests.conftest import auth
from tests.servers import serve


@dataclass
class Seen:
    path: str
    auth_scheme: str
    encoding: str | None
    retry_count: str | None
    body: bytes = b""
    status: int | None = None

    def messages(self) -> list[dict[str, Any]]:
        raw = gzip.decompress(self.body) if self.encoding == "gzip" else self.body
        return json.loads(raw)["batch"]


@dataclass
class Counting:
    """ASGI middleware that records every request the server answered."""

    app: Any
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record = Seen(
            path=scope["path"],
            auth_scheme=headers.get("authorization", "").split(" ")[0],
            encoding=headers.get("content-encoding"),
            retry_count=headers.get("x-retry-count"),
        )
        chunks: list[bytes] = []

        async def receive_body() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        await self.app(scope, receive_body, send_status)
        record.body = b"".join(chunks)
        self.seen.append(record)


@pytest.fixture
def served(app) -> Iterator[tuple[str, Counting]]:
    """The app under uvicorn on a free loopback port (its own thread and event loop)."""
    counting = Counting(app)
    with serve(counting) as url:
        yield url, counting


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sdk_logs() -> Iterator[Collect]:
    handler = Collect()
    loggers = [logging.getLogger(name) for name in ("segment", "rudderstack", "backoff")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def make_client(sdk: str, key: str, url: str, errors: list, gzip_bodies: bool) -> Any:
    common = {
        "write_key": key,
        "host": url,
        "on_error": lambda exc, batch: errors.append(repr(exc)),
        "gzip": gzip_bodies,
        "max_retries": 3,
        "upload_interval": 0.2,
    }
    return SegmentClient(**common) if sdk == "segment" else RudderClient(**common)


def send_every_call(client: Any, sdk: str, who: str) -> list[str]:
    """page (anonymous), identify (linking the cookie; traits top level and in context.traits),
    track and page with context.traits, group, screen, alias; then flush. Returns messageIds."""
    anon, user = f"{who}-anon", f"{who}-user"
    sent = [
        client.page(anonymous_id=anon, name="Home", properties={"path": "/"}),
        client.identify(
            user_id=user,
            anonymous_id=anon,
            traits={"email": f"{who}@example.dk", "plan": "pro"},
            context={"traits": {"plan": "free", "first_name": "Mette"}},
        ),
        client.track(
            user_id=user,
            event="Order Completed",
            properties={"order_id": "o-1", "total": 499.5, "currency": "DKK"},
            context={"traits": {"vip": True}},
        ),
        client.group(
            user_id=user, group_id=f"{who}-acme", traits={"name": "Acme ApS", "employees": 40}
        ),
        client.screen(user_id=user, name="Basket", properties={"items": 2}),
        client.alias(previous_id=f"{who}-legacy", user_id=user),
    ]
    client.flush()
    client.join()
    assert all(ok for ok, _ in sent)
    return [msg["messageId"] for _, msg in sent]


@pytest.mark.parametrize(
    ("sdk", "gzip_bodies"),
    [("segment", False), ("segment", True), ("rudderstack", True)],
    ids=["segment", "segment-gzip", "rudderstack"],
)
async def test_real_sdk_events_land_on_the_right_profile(
    served, sdk_logs, keys, runtime, session, sdk, gzip_bodies
):
    url, counting = served
    errors: list[str] = []
    client = make_client(sdk, keys[Role.ingest], url, errors, gzip_bodies)
    message_ids = await asyncio.to_thread(send_every_call, client, sdk, sdk)

    # At the server: only /v1/batch, Basic auth, each message once, every answer 200.
    assert counting.seen, "the SDK sent nothing"
    assert {(s.path, s.auth_scheme, s.status) for s in counting.seen} == {
        ("/v1/batch", "Basic", 200)
    }
    assert {s.encoding for s in counting.seen} == {"gzip" if gzip_bodies else None}
    assert all(s.retry_count is None for s in counting.seen)
    delivered = [m["messageId"] for s in counting.seen for m in s.messages()]
    assert sorted(delivered) == sorted(message_ids)  # nothing retried, nothing lost

    # In the SDK: no error reported, nothing above debug logged.
    assert errors == []
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in sdk_logs.records]
    assert [line for line in loud if " DEBUG: " not in line] == []
    assert any("uploaded successfully" in line for line in loud), loud

    # After the processor: one profile holds every event, with traits, group and alias.
    assert await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain() == 6
    session.expire_all()
    pid = find_by_identifier(session, type="user_id", value=f"{sdk}-user")
    assert pid
    assert session.scalar(sa.select(sa.func.count()).select_from(Profile)) == 1
    events = session.exec(select(Event)).all()
    assert sorted(e.message_id for e in events) == sorted(message_ids)
    assert {e.profile_id for e in events} == {pid}
    assert sorted(e.type for e in events) == sorted(
        ["page", "identify", "track", "group", "screen", "alias"]
    )
    snap = load_snapshot(session, profile_id=pid)
    assert snap is not None
    assert snap.identifiers == {
        "anonymous_id": [f"{sdk}-anon", f"{sdk}-legacy"],
        "user_id": [f"{sdk}-user"],
        "email": [f"{sdk}@example.dk"],
    }
    # Segment sends identify traits at the top level (they win over context.traits);
    # RudderStack puts them into context.traits, replacing what the caller put there.
    plan, first_name = ("pro", {"first_name": "Mette"}) if sdk == "segment" else ("pro", {})
    assert snap.traits == {"email": f"{sdk}@example.dk", "plan": plan, "vip": True, **first_name}
    track = next(e for e in events if e.type == "track")
    assert track.properties == {"order_id": "o-1", "total": 499.5, "currency": "DKK"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.get(f"/api/profiles/{pid}", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    assert r.json()["groups"][f"{sdk}-acme"]["traits"] == {"name": "Acme ApS", "employees": 40}
