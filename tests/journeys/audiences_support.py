"""Audience rows, memberships and membership events for the journey tests, written directly
(the audiences domain keeps them in production; these tests are about what journeys do)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlmodel import Session

from rejse.audiences.definition import AUDIENCE_ENTERED, AUDIENCE_EXITED
from rejse.contracts import ProcessedEvent
from rejse.models.audiences import Audience, AudienceMembership
from rejse.runtime import Runtime


def make_audience(runtime: Runtime, key: str, members: Iterable[str] = ()) -> None:
    members = list(members)
    with Session(runtime.engine) as s:
        s.add(
            Audience(
                key=key,
                name=key.upper(),
                condition={"trait": "tier", "op": "eq", "value": key},
                size=len(members),
            )
        )
        s.add_all(AudienceMembership(audience_key=key, profile_id=pid) for pid in members)
        s.commit()


def membership_event(
    profile_id: str, audience: str, at: dt.datetime, *, entered: bool = True
) -> ProcessedEvent:
    """The internal event the audiences subscriber derives when a profile enters or leaves."""
    return ProcessedEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        profile_id=profile_id,
        type="internal",
        event=AUDIENCE_ENTERED if entered else AUDIENCE_EXITED,
        properties={"audience": audience},
        timestamp=at,
        received_at=at,
    )
