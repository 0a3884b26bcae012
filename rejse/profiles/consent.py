"""Consent per channel: current state + history + a timeline entry."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from rejse.contracts import ConsentChange
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.models.profiles import Consent, ConsentChangeRecord
from rejse.timeline import add_entry

STATUSES = ("granted", "denied", "revoked")
CHANNEL_MAX = 32


def validate(channel: str, status: str, source: str) -> None:
    if not channel or len(channel) > CHANNEL_MAX or not channel.replace("_", "").isalnum():
        raise DomainError(
            "channel must be a short name like email, sms, push, in_app", field="channel"
        )
    if status not in STATUSES:
        raise DomainError(f"status must be one of {', '.join(STATUSES)}", field="status")
    if not source or len(source) > 100:
        raise DomainError("source is required (at most 100 characters)", field="source")


def set_consent(
    session: Session,
    *,
    profile_id: str,
    channel: str,
    status: str,
    source: str,
    at: dt.datetime | None = None,
) -> ConsentChange | None:
    """Record a consent decision. Returns the change, or None when it changes nothing (same
    status) or is older than the current decision (late-arriving events do not win)."""
    validate(channel, status, source)
    at = at or utcnow()
    current = session.get(Consent, (profile_id, channel))
    if current is not None and (current.status == status or current.at > at):
        return None
    if current is None:
        current = Consent(
            profile_id=profile_id, channel=channel, status=status, source=source, at=at
        )
    else:
        current.status, current.source, current.at = status, source, at
    session.add(current)
    session.add(
        ConsentChangeRecord(
            profile_id=profile_id, channel=channel, status=status, source=source, at=at
        )
    )
    add_entry(
        session,
        profile_id=profile_id,
        kind="consent",
        at=at,
        summary=f"{channel} consent {status} (source: {source})"[:500],
        data={"channel": channel, "status": status, "source": source},
    )
    return ConsentChange(channel=channel, status=status, source=source)
