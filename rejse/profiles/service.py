"""Profile reads and writes used by every domain: create, resolve (merged ids), snapshot,
lookup by identifier, traits patch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.contracts import ProfileSnapshot
from rejse.db import id_chunks, utcnow
from rejse.errors import DomainError, NotFound
from rejse.ids import new_id
from rejse.models.profiles import Consent, Profile, ProfileIdentifier, ProfileMerge
from rejse.profiles import identifiers as ident

PROFILE_PREFIX = "prf"


def resolve_profile_id(session: Session, profile_id: str) -> str | None:
    """The live profile id for `profile_id`, following merges; None if unknown."""
    seen: set[str] = set()
    current = profile_id
    while current not in seen:
        seen.add(current)
        if session.get(Profile, current) is not None:
            return current
        merge = session.get(ProfileMerge, current)
        if merge is None:
            return None
        current = merge.into_profile_id
    return None


def find_by_identifier(session: Session, *, type: str, value: str) -> str | None:
    norm = ident.normalise(type, value)
    if norm is None:
        return None
    row = session.exec(
        select(ProfileIdentifier.profile_id).where(
            ProfileIdentifier.type == type, ProfileIdentifier.value == norm
        )
    ).first()
    return row


def identifiers_of(session: Session, profile_id: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    rows = session.exec(
        select(ProfileIdentifier)
        .where(ProfileIdentifier.profile_id == profile_id)
        .order_by(col(ProfileIdentifier.id))
    )
    for row in rows:
        out.setdefault(row.type, []).append(row.value)
    return out


def consents_of(session: Session, profile_id: str) -> dict[str, Consent]:
    rows = session.exec(select(Consent).where(Consent.profile_id == profile_id))
    return {row.channel: row for row in rows}


def load_snapshot(session: Session, *, profile_id: str) -> ProfileSnapshot | None:
    """The profile as other domains see it; a merged-away id answers with its survivor."""
    live = resolve_profile_id(session, profile_id)
    if live is None:
        return None
    profile = session.get(Profile, live)
    if profile is None:  # resolve_profile_id has just seen the row; gone since: no profile
        return None
    return _snapshot(
        profile,
        identifiers_of(session, live),
        {c: r.status for c, r in consents_of(session, live).items()},
    )


def load_snapshots(session: Session, *, profile_ids: Iterable[str]) -> dict[str, ProfileSnapshot]:
    """`load_snapshot` of many profiles in three reads (profiles, identifiers, consents), keyed
    by the id asked for; a merged-away id (rare) is followed by `resolve_profile_id` as
    `load_snapshot` follows it; unknown ids are left out."""
    asked = list(dict.fromkeys(profile_ids))
    profiles: dict[str, Profile] = {}
    for chunk in id_chunks(asked):
        profiles.update(
            {p.id: p for p in session.exec(select(Profile).where(col(Profile.id).in_(chunk)))}
        )
    live_of = {pid: pid for pid in asked if pid in profiles}  # asked id -> live id
    for pid in asked:
        if pid in profiles or (survivor := resolve_profile_id(session, pid)) is None:
            continue
        profile = session.get(Profile, survivor)
        if profile is not None:
            profiles[survivor] = profile
            live_of[pid] = survivor
    live = sorted(set(live_of.values()))
    ids: dict[str, dict[str, list[str]]] = {pid: {} for pid in live}
    consents: dict[str, dict[str, str]] = {pid: {} for pid in live}
    for chunk in id_chunks(live):
        rows = session.exec(
            select(ProfileIdentifier)
            .where(col(ProfileIdentifier.profile_id).in_(chunk))
            .order_by(col(ProfileIdentifier.id))
        )
        for row in rows:
            ids[row.profile_id].setdefault(row.type, []).append(row.value)
        for consent in session.exec(select(Consent).where(col(Consent.profile_id).in_(chunk))):
            consents[consent.profile_id][consent.channel] = consent.status
    snapshots = {pid: _snapshot(profiles[pid], ids[pid], consents[pid]) for pid in live}
    return {asked_id: snapshots[pid] for asked_id, pid in live_of.items()}


def _snapshot(
    profile: Profile, ids: dict[str, list[str]], consents: dict[str, str]
) -> ProfileSnapshot:
    traits = dict(profile.traits or {})
    emails, phones = ids.get("email"), ids.get("phone")
    email = (emails[0] if emails else None) or _str_or_none(traits.get("email"))
    phone = (phones[0] if phones else None) or _str_or_none(traits.get("phone"))
    return ProfileSnapshot(
        id=profile.id,
        traits=traits,
        identifiers=ids,
        email=email,
        phone=phone,
        locale=profile.locale,
        timezone=profile.timezone,
        consents=consents,
        lifecycle_stage=profile.lifecycle_stage,
        lead_score=profile.lead_score or 0.0,
        erased=profile.erased_at is not None,
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def add_identifier(session: Session, *, profile_id: str, type: str, value: Any) -> bool:
    """Attach an identifier to a profile (no merge here: raises Conflict-like DomainError if it
    belongs to another profile). Returns False for blocked values."""
    norm = ident.normalise(type, value)
    if norm is None:
        return False
    owner = session.exec(
        select(ProfileIdentifier.profile_id).where(
            ProfileIdentifier.type == type, ProfileIdentifier.value == norm
        )
    ).first()
    if owner == profile_id:
        return True
    if owner is not None:
        raise DomainError(
            f"identifier {type} already belongs to another profile",
            field=f"identifiers.{type}",
            status_code=409,
        )
    session.add(ProfileIdentifier(profile_id=profile_id, type=type, value=norm))
    return True


def create_profile(
    session: Session,
    *,
    traits: Mapping[str, Any] | None = None,
    identifiers: Mapping[str, str | Iterable[str]] | None = None,
    locale: str | None = None,
    timezone: str | None = None,
    consents: Mapping[str, str] | None = None,
) -> str:
    """A new profile (flushed, not committed); returns its id. Also the test helper of every
    domain: `create_profile(session, traits={...}, identifiers={"email": "a@b.dk"})`."""
    from rejse.profiles.consent import set_consent

    now = utcnow()
    traits = dict(traits or {})
    profile = Profile(
        id=new_id(PROFILE_PREFIX),
        traits=traits,
        locale=locale or _str_or_none(traits.get("locale")),
        timezone=timezone or _str_or_none(traits.get("timezone")),
        created_at=now,
        updated_at=now,
    )
    session.add(profile)
    session.flush()
    for type_, values in (identifiers or {}).items():
        for value in [values] if isinstance(values, str) else values:
            add_identifier(session, profile_id=profile.id, type=type_, value=value)
    for trait in ident.TRAIT_IDENTIFIERS:
        if trait in traits and not (identifiers and trait in identifiers):
            add_identifier(session, profile_id=profile.id, type=trait, value=traits[trait])
    for channel, status in (consents or {}).items():
        set_consent(session, profile_id=profile.id, channel=channel, status=status, source="api")
    session.flush()
    return profile.id


def get_live_profile(session: Session, profile_id: str) -> Profile:
    live = resolve_profile_id(session, profile_id)
    profile = session.get(Profile, live) if live else None
    if profile is None:
        raise NotFound(f"no profile {profile_id!r}", field="profile_id")
    return profile


def patch_traits(
    session: Session, *, profile_id: str, traits: Mapping[str, Any], at: dt.datetime | None = None
) -> Profile:
    """Set traits (a None value removes the trait); locale/timezone traits update the columns."""
    from rejse.timeline import add_entry

    profile = get_live_profile(session, profile_id)
    if profile.erased_at is not None:
        raise DomainError("profile is erased", field="profile_id", status_code=409)
    merged = dict(profile.traits or {})
    for key, value in traits.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    profile.traits = merged
    if "locale" in traits:
        profile.locale = _str_or_none(traits["locale"])
    if "timezone" in traits:
        profile.timezone = _str_or_none(traits["timezone"])
    for trait in ident.TRAIT_IDENTIFIERS:
        if traits.get(trait) is not None:
            add_identifier(session, profile_id=profile.id, type=trait, value=traits[trait])
    profile.updated_at = at or utcnow()
    session.add(profile)
    add_entry(
        session,
        profile_id=profile.id,
        kind="traits",
        summary=f"traits updated: {', '.join(sorted(traits))}"[:500],
        data={"keys": sorted(traits)},
    )
    session.flush()
    return profile


def list_profile_ids(session: Session, *, limit: int = 100) -> list[str]:
    return list(
        session.exec(
            select(Profile.id)
            .where(col(Profile.erased_at).is_(None))
            .order_by(sa.desc(col(Profile.created_at)))
            .limit(limit)
        )
    )


def timeline(session: Session, *, profile_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Events and timeline entries (messages, journey steps, scores, merges, consent), newest
    first, merged by time."""
    from rejse.models.events import Event
    from rejse.models.timeline import TimelineEntry

    pid = get_live_profile(session, profile_id).id
    items: list[dict[str, Any]] = []
    for e in session.exec(
        select(Event)
        .where(Event.profile_id == pid)
        .order_by(sa.desc(col(Event.timestamp)))
        .limit(limit)
    ):
        label = (
            e.event or e.properties.get("name") if e.type in ("track", "internal", "page") else None
        )
        items.append(
            {
                "at": e.timestamp,
                "kind": "event",
                "summary": f"{e.type}: {label}" if label else e.type,
                "data": {
                    "event_id": e.id,
                    "type": e.type,
                    "event": e.event,
                    "properties": e.properties,
                    "source": e.source,
                },
            }
        )
    for t in session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.profile_id == pid)
        .order_by(sa.desc(col(TimelineEntry.at)))
        .limit(limit)
    ):
        items.append({"at": t.at, "kind": t.kind, "summary": t.summary, "data": t.data})
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]
