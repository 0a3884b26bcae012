"""Shared by the membership, service and sweep tests: definitions, profiles, ingestion through
/v1 and the processor, and what ended up in the database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.audiences import service
from rejse.audiences.definition import AudienceDefinition
from rejse.db import utcnow
from rejse.models.audiences import AudienceMembership, AudienceRecheck
from rejse.models.events import Event
from rejse.profiles.service import create_profile, find_by_identifier
from rejse.roles import Role
from tests.conftest import auth


def definition(key: str, condition: dict[str, Any], **kw: Any) -> AudienceDefinition:
    return AudienceDefinition(key=key, name=kw.pop("name", key.title()), condition=condition, **kw)


def create(engine: Any, key: str, condition: dict[str, Any], **kw: Any) -> None:
    now = kw.pop("now", None) or utcnow()
    with Session(engine) as s:
        service.create_audience(s, definition(key, condition, **kw), now=now)
        s.commit()


def profile(engine: Any, **traits: Any) -> str:
    with Session(engine) as s:
        pid = create_profile(s, traits=traits)
        s.commit()
    return pid


def members(engine: Any, key: str) -> set[str]:
    with Session(engine) as s:
        return set(
            s.exec(
                select(AudienceMembership.profile_id).where(AudienceMembership.audience_key == key)
            )
        )


def rechecks(engine: Any, key: str | None = None) -> dict[tuple[str, str], dt.datetime]:
    with Session(engine) as s:
        stmt = select(AudienceRecheck)
        if key:
            stmt = stmt.where(AudienceRecheck.audience_key == key)
        return {(r.audience_key, r.profile_id): r.due_at for r in s.exec(stmt)}


def audience_events(engine: Any, profile_id: str | None = None) -> list[tuple[str, str, str]]:
    """(profile id, event name, audience key) of every Audience Entered/Exited, in order."""
    with Session(engine) as s:
        stmt = select(Event).where(col(Event.event).in_(["Audience Entered", "Audience Exited"]))
        if profile_id:
            stmt = stmt.where(Event.profile_id == profile_id)
        rows = s.exec(stmt.order_by(col(Event.received_at), col(Event.id))).all()
        return [(e.profile_id or "", e.event or "", e.properties["audience"]) for e in rows]


def audience_event_rows(engine: Any) -> list[Event]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(Event).where(col(Event.event).in_(["Audience Entered", "Audience Exited"]))
            )
        )


def count_events(engine: Any) -> int:
    with Session(engine) as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(Event)).scalar_one())


def pid_of(engine: Any, user_id: str) -> str:
    with Session(engine) as s:
        pid = find_by_identifier(s, type="user_id", value=user_id)
    assert pid
    return pid


async def send(client: Any, keys: Any, call: str, body: dict[str, Any]) -> None:
    body = {"messageId": uuid.uuid4().hex, **body}
    r = await client.post(f"/v1/{call}", json=body, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text


async def track(
    client: Any, keys: Any, user: str, event: str, *, at: dt.datetime | None = None, **props: Any
) -> None:
    body: dict[str, Any] = {"userId": user, "event": event, "properties": props}
    if at is not None:
        body["timestamp"] = at.isoformat()
    await send(client, keys, "track", body)


async def identify(client: Any, keys: Any, body: dict[str, Any]) -> None:
    await send(client, keys, "identify", body)
