"""The event processor's audience subscriber: membership kept exact as each event is applied.

Runs in the processor's transaction after scoring and customer value, so it sees the event's
effect on the profile. Per event it re-checks only the audiences whose conditions the event
can change (`AudienceIndex`: event names, top-level traits it changed, consent changes, events
that score, order events for customer value), for the event's profile alone, and those that
name one whose membership changed. The work is that of the profile and those audiences, never
a scan over profiles. Besides:

- a merge moves the merged-away profiles' memberships to the survivor and then checks the
  survivor against every audience (its traits, events and value are new);
- a profile's first event checks every audience an empty profile belongs to (a condition such
  as "has not ordered" is true before any event names it).

Each change is returned as a derived event (`Audience Entered` / `Audience Exited` with
`{"audience": key}`), which the processor stores and routes like any event (journeys).

Traits count when their value changed (`ProcessedEvent.changed_traits`, which includes
`context.traits` of any call): a repeated identify re-checks nothing.

Known blind spots (they have no `ProcessedEvent` signal): consent changed outside the
processor, manual score points. The next event that touches the audience, or a definition
change, puts such a profile right.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.audiences.membership import (
    CUSTOMER_EVENTS,
    PROFILE,
    AudienceIndex,
    IndexCache,
    Rows,
    Touch,
    move_profile,
    needs_rows,
    recheck_profile,
    rows_of,
    to_check,
)
from rejse.contracts import ProcessedEvent
from rejse.db import utcnow
from rejse.scoring.service import ModelCache


class AudienceSubscriber:
    name = "audiences"

    def __init__(
        self,
        cache: IndexCache | None = None,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        scoring: ModelCache | None = None,
    ) -> None:
        self.cache = cache or IndexCache()
        self.clock = clock
        self.scoring = scoring or ModelCache()
        # the rows `wants` read for the event it then hands to `apply` (per thread: several
        # processors may share the subscriber)
        self._read = threading.local()

    def touched(self, session: Session, index: AudienceIndex, event: ProcessedEvent) -> set[str]:
        """The audiences this event can change (before the ones naming them)."""
        keys: set[str] = set()
        if event.event:
            keys |= index.by_event.get(event.event, set())
            if event.event in CUSTOMER_EVENTS:
                keys |= index.customer
        for trait in _traits(event):
            keys |= index.by_trait.get(trait, set())
        if event.consent_changes:
            keys |= index.consent
        if index.score and self._scores(session, event):
            keys |= index.score
        return keys

    def _scores(self, session: Session, event: ProcessedEvent) -> bool:
        """Whether the scoring subscriber changed the score with this event (as its `wants`)."""
        model = self.scoring.get(session)
        return model is not None and bool(event.traits or event.event in model.rules_by_event)

    def touch(self, session: Session, index: AudienceIndex, event: ProcessedEvent) -> Touch:
        """What this (unmerged) event changes, for `membership.unchanged`."""
        return Touch(
            event=event.event or None,
            traits=frozenset(_traits(event)),
            consent=bool(event.consent_changes),
            score=bool(index.score) and self._scores(session, event),
        )

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        """Whether the event may change a membership: an event that only adds to what the
        profile's audiences already answer (one more visit of a member of "visited") is not
        wanted, which spares the processor its flush and stamps for it. Membership and
        recheck rows are written by this subscriber alone, so they read the same here."""
        index = self.cache.get(session)
        if not index.audiences:
            return False
        if event.merged_from or index.default_true:
            return True
        keys = self.touched(session, index, event)
        if not keys:
            return False
        touch = self.touch(session, index, event)
        if not needs_rows(index, keys, touch):
            return False
        rows = rows_of(session.connection(), event.profile_id)
        self._read.rows = (id(session), event.event_id, rows)
        return bool(to_check(index, keys, touch, rows, now=self.clock()))

    def _rows(self, session: Session, event: ProcessedEvent) -> Rows | None:
        """What `wants` read for this event in this session, once."""
        found = getattr(self._read, "rows", None)
        self._read.rows = None
        if found is None or found[0] != id(session) or found[1] != event.event_id:
            return None
        rows: Rows = found[2]
        return rows

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]:
        index = self.cache.get(session)
        if not index.audiences:
            return []
        pid = event.profile_id
        conn = session.connection()
        touch: Touch | None = None  # None: check every audience of `keys` in full
        rows = self._rows(session, event)
        if event.merged_from:
            for old in event.merged_from:
                move_profile(conn, from_=old, into=pid)
            keys = set(index.audiences)
        else:
            keys = self.touched(session, index, event)
            if index.default_true and _first_event(session, pid):
                keys = set(index.audiences)
            else:
                touch = self.touch(session, index, event)
        if not keys:
            return []
        # The processor has attributed the event to the profile before subscribers run: it
        # counts already (its own `within` window, its count).
        changes = recheck_profile(
            session,
            index,
            pid,
            keys,
            now=self.clock(),
            scoring=self.scoring,
            touch=touch,
            rows=rows if touch is not None else None,
        )
        return [change.event for change in changes]


def _traits(event: ProcessedEvent) -> Iterable[str]:
    """The traits whose change may move a membership: those the event changed, when the
    processor says (a repeated identify changes none), else every trait it gives."""
    return event.traits if event.changed_traits is None else event.changed_traits


_EVENT_COUNT = sa.select(PROFILE.c.event_count).where(PROFILE.c.id == sa.bindparam("_pid"))


def _first_event(session: Session, profile_id: str) -> bool:
    count = session.connection().execute(_EVENT_COUNT, {"_pid": profile_id}).scalar()
    return (count or 0) <= 1
