"""GDPR: export everything held about a profile; erase it (PII and events removed, other domains
erased through their `ProfileEraser`, PII-free audit record kept, identifiers tombstoned)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from rejse.contracts import ProfileEraser
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.models.events import DeadLetter, Event, OutboxEntry
from rejse.models.profiles import (
    Consent,
    ConsentChangeRecord,
    ErasedIdentifier,
    ProfileErasure,
    ProfileIdentifier,
    ProfileMerge,
)
from rejse.models.timeline import TimelineEntry
from rejse.profiles import identifiers as ident
from rejse.profiles.service import get_live_profile
from rejse.profiles.value import clear as clear_value
from rejse.timeline import erase_entries


def merged_ids(session: Session, profile_id: str) -> list[str]:
    return list(
        session.exec(
            select(ProfileMerge.from_profile_id)
            .where(ProfileMerge.into_profile_id == profile_id)
            .order_by(col(ProfileMerge.at))
        )
    )


_Row = TypeVar("_Row", bound=SQLModel)


def _dump(rows: Iterable[_Row]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]


def export_profile(session: Session, *, profile_id: str) -> dict[str, Any]:
    """Everything rejse holds about the profile, machine-readable (JSON-ready)."""
    profile = get_live_profile(session, profile_id)
    pid = profile.id
    return {
        "format": "rejse.profile-export.v1",
        "exported_at": utcnow().isoformat(),
        "profile": profile.model_dump(mode="json"),
        "identifiers": _dump(
            session.exec(select(ProfileIdentifier).where(ProfileIdentifier.profile_id == pid))
        ),
        "consents": _dump(session.exec(select(Consent).where(Consent.profile_id == pid))),
        "consent_history": _dump(
            session.exec(
                select(ConsentChangeRecord)
                .where(ConsentChangeRecord.profile_id == pid)
                .order_by(col(ConsentChangeRecord.at))
            )
        ),
        "merged_profiles": _dump(
            session.exec(select(ProfileMerge).where(ProfileMerge.into_profile_id == pid))
        ),
        "events": _dump(
            session.exec(
                select(Event).where(Event.profile_id == pid).order_by(col(Event.timestamp))
            )
        ),
        "timeline": _dump(
            session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.profile_id == pid)
                .order_by(col(TimelineEntry.at))
            )
        ),
    }


def erase_profile(
    session: Session,
    *,
    profile_id: str,
    secret: str,
    erasers: Sequence[ProfileEraser],
    requested_by: str | None = None,
) -> ProfileErasure:
    """Erase in the session's transaction (the caller commits, then awaits
    `cancel_running` of every eraser: see `cancel_after_erase`)."""
    profile = get_live_profile(session, profile_id)
    if profile.erased_at is not None:
        raise DomainError("profile is already erased", field="profile_id", status_code=409)
    pid = profile.id
    now = utcnow()
    conn = session.connection()
    idents = list(
        session.exec(select(ProfileIdentifier).where(ProfileIdentifier.profile_id == pid))
    )
    for row in idents:
        digest = ident.tombstone(secret, row.type, row.value)
        existing = session.get(ErasedIdentifier, digest)
        if existing is None:
            session.add(ErasedIdentifier(digest=digest, erased_at=now))
        else:
            existing.erased_at = now
            session.add(existing)
        session.delete(row)
    event_ids = list(session.exec(select(Event.id).where(Event.profile_id == pid)))
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i : i + 500]
        conn.execute(sa.delete(OutboxEntry).where(col(OutboxEntry.event_id).in_(chunk)))
        conn.execute(sa.delete(DeadLetter).where(col(DeadLetter.event_id).in_(chunk)))
    conn.execute(sa.delete(Event).where(col(Event.profile_id) == pid))
    conn.execute(sa.delete(Consent).where(col(Consent.profile_id) == pid))
    conn.execute(sa.delete(ConsentChangeRecord).where(col(ConsentChangeRecord.profile_id) == pid))
    erase_entries(session, profile_id=pid)
    old_ids = merged_ids(session, pid)
    summary: dict[str, Any] = {
        "identifiers": len(idents),
        "events": len(event_ids),
        "merged_profile_ids": old_ids,
        "domains": [],
    }
    for eraser in erasers:
        for target in [pid, *old_ids]:
            eraser.erase(session, target)
        summary["domains"].append(eraser.name)
    profile.traits = {}
    profile.groups = {}
    profile.locale = profile.timezone = profile.lifecycle_stage = None
    profile.lead_score = 0.0
    clear_value(profile)
    profile.erased_at = profile.updated_at = now
    session.add(profile)
    audit = ProfileErasure(profile_id=pid, requested_by=requested_by, at=now, summary=summary)
    session.add(audit)
    session.flush()
    return audit


async def cancel_after_erase(erasers: Sequence[ProfileEraser], audit: ProfileErasure) -> list[str]:
    """After commit: stop what runs for the erased profile. Returns erasers that failed (the
    data is gone already; their workflows find no profile and end)."""
    failed = []
    for eraser in erasers:
        for target in [audit.profile_id, *audit.summary.get("merged_profile_ids", [])]:
            try:
                await eraser.cancel_running(target)
            except Exception:  # noqa: BLE001
                failed.append(eraser.name)
    return failed
