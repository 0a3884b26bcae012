"""Append-only profile timeline shared by every domain, and its one writer.

`add_entry` inserts with core SQL on the session's connection at once: the scoring hot path
writes a line per scored event, and ORM bookkeeping would cost more than the statement. The
table has no foreign key, so the insert does not wait for the session's pending objects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, delete, select

from rejse.db import utcnow
from rejse.models.timeline import TimelineEntry

_INSERT = TimelineEntry.__table__.insert()  # type: ignore[attr-defined]
SUMMARY_CHARS = 500


def add_entry(
    session: Session,
    *,
    profile_id: str,
    kind: str,
    summary: str,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """One line on the profile's timeline (the summary is cut to the column's size)."""
    session.connection().execute(
        _INSERT,
        {
            "profile_id": profile_id,
            "kind": kind,
            "summary": summary[:SUMMARY_CHARS],
            "data": data or {},
            "at": at or utcnow(),
        },
    )


def add_entries(session: Session, entries: list[dict[str, Any]]) -> None:
    """Many lines at once (one executemany): each a dict of `add_entry`'s keyword arguments."""
    if not entries:
        return
    session.connection().execute(
        _INSERT,
        [
            {
                "profile_id": e["profile_id"],
                "kind": e["kind"],
                "summary": e["summary"][:SUMMARY_CHARS],
                "data": e.get("data") or {},
                "at": e.get("at") or utcnow(),
            }
            for e in entries
        ],
    )


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
    session.exec(delete(TimelineEntry).where(col(TimelineEntry.profile_id) == profile_id))
