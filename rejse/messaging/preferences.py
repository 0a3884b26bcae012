"""The preference centre behind a message's signed link: what the person receives per channel
and for "all marketing", read for the page and saved as explicit consent decisions.

A message identifies its profile (the token names the message, see `tokens`), so the centre
needs no login; a merged-away profile answers with its survivor, an erased one not at all.
Saving records only what the person changed, each as an explicit decision with the source
`preferences:<message id>` (so an implicit flag such as Shopify's accepts-marketing box cannot
undo it, see `rejse.profiles.consent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from rejse import analytics_deltas as deltas
from rejse.contracts import ProfileSnapshot
from rejse.messaging import formatting
from rejse.models.messaging import Message
from rejse.profiles.consent import ALL_MARKETING, BLOCKING, set_consent
from rejse.profiles.service import load_snapshot

# The channels a person chooses on the page, in the order shown.
CHANNELS = ("email", "sms")


@dataclass(frozen=True)
class Preferences:
    message_id: str
    profile_id: str
    locale: str  # da, sv or en: the language of the pages
    receiving: dict[str, bool]  # channel -> marketing on it may reach the person
    all_marketing: bool  # False: the person opted out of all marketing


def receives(status: str | None, *, require_opt_in: bool) -> bool:
    """Whether marketing on a channel with this consent status may go out (the send guard's
    rule): granted, or nothing recorded unless an explicit opt-in is required."""
    if status is None:
        return not require_opt_in
    return status == "granted"


def page_locale(snap: ProfileSnapshot | None, message: Message | None) -> str:
    """The language of the pages: from the profile's locale (column, else a `locale` trait),
    else the message's; an unsupported or missing one is English."""
    candidates: list[object] = []
    if snap is not None:
        candidates += [snap.locale, snap.traits.get("locale")]
    if message is not None:
        candidates.append(message.locale)
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return formatting.language(candidate.strip())
    return formatting.DEFAULT_LOCALE


def message_locale(session: Session, *, message_id: str) -> str:
    """The page language for a message's link (English when the message is unknown)."""
    row = session.get(Message, message_id)
    snap = load_snapshot(session, profile_id=row.profile_id) if row is not None else None
    return page_locale(snap if snap is not None and not snap.erased else None, row)


def load(session: Session, *, message_id: str, require_opt_in: bool) -> Preferences | None:
    """The choices of the message's profile; None for an unknown message or an erased profile."""
    row = session.get(Message, message_id)
    if row is None:
        return None
    snap = load_snapshot(session, profile_id=row.profile_id)
    if snap is None or snap.erased:
        return None
    return Preferences(
        message_id=row.id,
        profile_id=snap.id,
        locale=page_locale(snap, row),
        receiving={
            channel: receives(snap.consents.get(channel), require_opt_in=require_opt_in)
            for channel in CHANNELS
        },
        all_marketing=snap.consents.get(ALL_MARKETING) not in BLOCKING,
    )


def save(
    session: Session,
    *,
    message_id: str,
    receiving: Mapping[str, bool],
    all_marketing: bool,
    require_opt_in: bool,
    at: dt.datetime | None = None,
) -> Preferences | None:
    """Apply the choices on the page: each channel (and all marketing) the person switched is
    granted or revoked explicitly; what they left as it was is not recorded again. Returns the
    choices as they are now; None for an unknown message or an erased profile."""
    current = load(session, message_id=message_id, require_opt_in=require_opt_in)
    if current is None:
        return None
    source = f"preferences:{message_id}"[:100]
    message = session.get(Message, message_id)
    before = message is not None and deltas.unsubscribed_through(session, message)
    wanted = {channel: bool(receiving.get(channel, False)) for channel in CHANNELS}
    wanted[ALL_MARKETING] = all_marketing
    now = {**current.receiving, ALL_MARKETING: current.all_marketing}
    for channel, on in wanted.items():
        if on != now[channel]:
            set_consent(
                session,
                profile_id=current.profile_id,
                channel=channel,
                status="granted" if on else "revoked",
                source=source,
                at=at,
            )
    session.flush()
    if message is not None:
        deltas.message_unsubscribed(session, message, before=before)
    return load(session, message_id=message_id, require_opt_in=require_opt_in)
