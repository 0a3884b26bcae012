"""Seeding for the audiences API tests: profiles, and members written straight into the
membership table (many of them, quickly) for the export and paging tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rejse.db import utcnow
from rejse.models.audiences import Audience, AudienceMembership
from rejse.models.journeys import Journey, JourneyVersion
from rejse.models.profiles import Profile, ProfileIdentifier
from rejse.profiles.service import create_profile


def profile(engine: Engine, **traits: Any) -> str:
    """One profile with these traits (an `email` trait becomes its email identifier)."""
    with Session(engine) as s:
        pid = create_profile(s, traits=traits)
        s.commit()
    return pid


def seed_members(
    engine: Engine,
    key: str,
    n: int,
    *,
    traits: Any = None,
    start: int = 0,
    with_audience: bool = True,
) -> list[str]:
    """Audience `key` (condition: everyone in `DK`) with `n` members, each a profile with an
    email and a user id, written in bulk. Returns the member ids in id order."""
    now = utcnow()
    ids = [f"prf_T{i:025d}" for i in range(start, start + n)]
    with Session(engine) as s:
        if with_audience:
            s.add(
                Audience(
                    key=key,
                    name=key,
                    condition={"trait": "country", "op": "eq", "value": "DK"},
                    size=n,
                    computed_at=now,
                )
            )
            s.flush()
        for chunk in range(0, n, 5000):
            part = ids[chunk : chunk + 5000]
            s.execute(
                sa.insert(Profile),
                [
                    {
                        "id": pid,
                        "traits": traits(i) if traits else {"country": "DK", "first_name": "Ida"},
                        "groups": {},
                        "event_count": 0,
                        "order_count": 0,
                        "revenue": 0.0,
                        "lead_score": 0.0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, pid in enumerate(part, start=start + chunk)
                ],
            )
            s.execute(
                sa.insert(ProfileIdentifier),
                [
                    {"profile_id": pid, "type": t, "value": v, "created_at": now}
                    for i, pid in enumerate(part, start=start + chunk)
                    for t, v in (("email", f"m{i}@example.com"), ("user_id", f"u{i}"))
                ],
            )
            s.execute(
                sa.insert(AudienceMembership),
                [{"audience_key": key, "profile_id": pid, "entered_at": now} for pid in part],
            )
        s.commit()
    return ids


def published_journey(engine: Engine, key: str, definition: dict[str, Any]) -> None:
    """A journey row published at version 1 with `definition` as stored (as the journeys
    service leaves it after publishing)."""
    now = utcnow()
    with Session(engine) as s:
        s.add(Journey(key=key, name=key, status="published", published_version=1))
        s.add(
            JourneyVersion(
                journey_key=key,
                version=1,
                definition={"key": key, **definition},
                published_at=now - dt.timedelta(seconds=1),
            )
        )
        s.commit()
