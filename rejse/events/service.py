"""Event services other domains call: store an internal event for a known profile."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.events.store import bucket_for, store_events
from rejse.ids import new_id

EVENT_PREFIX = "evt"


def event_row(
    *,
    type: str,
    message_id: str,
    timestamp: dt.datetime,
    received_at: dt.datetime,
    event: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    previous_id: str | None = None,
    group_id: str | None = None,
    profile_id: str | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    source: str = "api",
) -> dict[str, Any]:
    return {
        "id": new_id(EVENT_PREFIX),
        "message_id": message_id,
        "type": type,
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id,
        "group_id": group_id,
        "profile_id": profile_id,
        "properties": properties or {},
        "traits": traits or {},
        "context": context or {},
        "timestamp": timestamp,
        "received_at": received_at,
        "processed_at": None,
        "source": source,
    }


def record_internal_event(
    session: Session,
    *,
    profile_id: str,
    event: str,
    properties: dict[str, Any] | None,
    message_id: str,
    at: dt.datetime | None = None,
    source: str = "internal",
) -> bool:
    """Store an event of a known profile (e.g. `Email Opened`, `Lifecycle Stage Changed`) with
    its outbox row in the session's transaction; the processor applies and routes it like any
    other. Idempotent on `message_id`: returns False when it was already stored."""
    if not event or len(event) > 200:
        raise DomainError("event name is required (at most 200 characters)", field="event")
    if not message_id or len(message_id) > 300:
        raise DomainError("message_id is required (at most 300 characters)", field="message_id")
    now = utcnow()
    row = event_row(
        type="internal",
        message_id=message_id,
        timestamp=at or now,
        received_at=now,
        event=event,
        profile_id=profile_id,
        properties=dict(properties or {}),
        source=source,
    )
    return store_events(session.connection(), [row], [bucket_for(profile_id)]) == 1
