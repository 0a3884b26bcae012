"""Dead letters: events the processor gave up on; an admin lists and retries them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.db import utcnow
from rejse.errors import Conflict, NotFound
from rejse.events.store import OUTBOX, bucket_for
from rejse.models.events import DeadLetter, Event


def list_dead_letters(
    session: Session, *, include_retried: bool = False, limit: int = 100
) -> list[DeadLetter]:
    stmt = select(DeadLetter).order_by(sa.desc(col(DeadLetter.at))).limit(limit)
    if not include_retried:
        stmt = stmt.where(col(DeadLetter.retried_at).is_(None))
    return list(session.exec(stmt))


def retry_dead_letter(session: Session, *, dead_letter_id: int) -> DeadLetter:
    """Put the event back on the outbox (as `applied` when only its dispatch had failed)."""
    dead = session.get(DeadLetter, dead_letter_id)
    if dead is None:
        raise NotFound(f"no dead letter {dead_letter_id}", field="dead_letter_id")
    if dead.retried_at is not None:
        raise Conflict("already retried", field="dead_letter_id")
    event = session.get(Event, dead.event_id)
    if event is None:
        raise NotFound("the event no longer exists (erased)", field="dead_letter_id")
    key = event.profile_id if event.type == "internal" else (event.anonymous_id or event.user_id)
    session.connection().execute(
        OUTBOX.insert().values(
            event_id=event.id,
            bucket=bucket_for(key or event.id),
            attempts=0,
            available_at=utcnow(),
            state="applied" if dead.processed else "pending",
            processed=dead.processed,
            last_error=None,
        )
    )
    dead.retried_at = utcnow()
    session.add(dead)
    session.flush()
    return dead
