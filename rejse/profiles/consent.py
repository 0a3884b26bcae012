"""Consent per channel: current state + history + a timeline entry, and which decision wins.

Precedence (docs/profiles.md): an explicit decision (the consent API, an unsubscribe link, the
preference centre, an event naming its own source) outranks an implicit flag (a shop's
"accepts marketing" box, which Shopify sends again with every checkout and customer update);
among decisions of the same kind the newer wins. `marketing` is the channel of "all
marketing": revoked, it blocks every marketing message whatever the channel's own state.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from rejse.contracts import ConsentChange
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.models.profiles import Consent, ConsentChangeRecord
from rejse.timeline import add_entry

STATUSES = ("granted", "denied", "revoked")
BLOCKING = ("denied", "revoked")
CHANNEL_MAX = 32
ALL_MARKETING = "marketing"

# The sources of implicit flags, as the Shopify mapping writes them. Such a flag comes along
# with other data, the same on every delivery, so it cannot tell a fresh decision from an echo
# of an old one, and it never overrides what the person (or the shop on their behalf) said
# explicitly.
SHOPIFY_CHECKOUT = "shopify checkout"
SHOPIFY_CUSTOMER = "shopify customer"
IMPLICIT_SOURCES = frozenset({SHOPIFY_CHECKOUT, SHOPIFY_CUSTOMER})


def is_implicit(source: str) -> bool:
    return source in IMPLICIT_SOURCES


def prevails(*, source: str, at: dt.datetime, over: Consent | None, ties: bool = True) -> bool:
    """Whether a decision (`source`, `at`) replaces the current one: explicit beats implicit
    whatever their times; of the same kind, the newer wins (an equally new one when `ties`).
    Used for new decisions and for the consents of two profiles being merged."""
    if over is None:
        return True
    implicit, current_implicit = is_implicit(source), is_implicit(over.source)
    if implicit != current_implicit:
        return current_implicit
    return at > over.at or (ties and at == over.at)


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
    """Record a consent decision. Returns the change, or None when it changes nothing: the same
    status, an older decision than the current one (late-arriving events do not win), or an
    implicit flag against an explicit decision (see `prevails`). The same status said
    explicitly over an implicit flag is recorded: from then on the flag cannot undo it."""
    validate(channel, status, source)
    at = at or utcnow()
    current = session.get(Consent, (profile_id, channel))
    if (
        current is not None
        and current.status == status
        and not (is_implicit(current.source) and not is_implicit(source))
    ):
        return None
    if not prevails(source=source, at=at, over=current):
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
