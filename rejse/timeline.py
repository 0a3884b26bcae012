"""Append-only profile timeline shared by every domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, delete, select

from rejse.db import utcnow
from rejse.models.timeline import TimelineEntry


def add_entry(
    session: Session,
    *,
    profile_id: str,
    kind: str,
    summary: str,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        profile_id=profile_id, kind=kind, summary=summary, data=data or {}, at=at or utcnow()
    )
    session.add(entry)
    return entry


def list_entries(session: Session, *, profile_id: str, limit: int = 200) -> list[TimelineEntry]:
    stmt = (
        select(TimelineEntry)
        .where(TimelineEntry.profile_id == profile_id)
        .order_by(col(TimelineEntry.at).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def move_entries(session: Session, *, from_profile: str, to_profile: str) -> None:
    for entry in session.exec(
        select(TimelineEntry).where(TimelineEntry.profile_id == from_profile)
    ):
        entry.profile_id = to_profile
        session.add(entry)


def erase_entries(session: Session, *, profile_id: str) -> None:
    session.exec(delete(TimelineEntry).where(TimelineEntry.profile_id == profile_id))  # type: ignore[call-overload]
