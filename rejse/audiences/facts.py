"""Facts about one profile for conditions, read from the database: the in-memory evaluator's
view of exactly what `rejse.audiences.sql` reads for all profiles.

- traits and customer value: the `profile` row (a merged-away id reads its survivor);
- consents: the `consent` table; audiences: the profile's `audience_membership` rows;
- score: the `profile_score` row with decay applied as of `now` (behaviour decays with the active
  scoring model's half-life from `decayed_at`, fit does not), 0 without a row;
- events: the `event` table by profile id (index `ix_event_profile_ts`), read when a condition
  asks, so a profile with a long history costs only the events a condition counts.

Branches (`rejse.journeys.facts`) and audience membership use the same facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.conditions import matches
from rejse.models.audiences import AudienceMembership
from rejse.models.events import Event
from rejse.models.profiles import Consent, Profile, ProfileMerge
from rejse.scoring.engine import decay_factor
from rejse.scoring.service import compiled_active, read_state

_PROFILE = Profile.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]
_CONSENT = Consent.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = AudienceMembership.__table__  # type: ignore[attr-defined]
_MERGE = ProfileMerge.__table__  # type: ignore[attr-defined]

_READ_PROFILE = sa.select(
    _PROFILE.c.id,
    _PROFILE.c.traits,
    _PROFILE.c.order_count,
    _PROFILE.c.revenue,
    _PROFILE.c.first_order_at,
    _PROFILE.c.last_order_at,
    _PROFILE.c.erased_at,
).where(_PROFILE.c.id == sa.bindparam("_pid"))
_READ_MERGE = sa.select(_MERGE.c.into_profile_id).where(
    _MERGE.c.from_profile_id == sa.bindparam("_pid")
)
_READ_CONSENTS = sa.select(_CONSENT.c.channel, _CONSENT.c.status).where(
    _CONSENT.c.profile_id == sa.bindparam("_pid")
)
_READ_AUDIENCES = sa.select(_MEMBERSHIP.c.audience_key).where(
    _MEMBERSHIP.c.profile_id == sa.bindparam("_pid")
)


@dataclass(frozen=True)
class ScoreCurve:
    """A profile's score over time: `behaviour` as of `decayed_at` decays with `half_life`."""

    behaviour: float = 0.0
    fit: float = 0.0
    decayed_at: dt.datetime | None = None
    half_life: dt.timedelta | None = None

    def at(self, when: dt.datetime) -> float:
        if self.decayed_at is None:
            return self.behaviour + self.fit
        # the order of operations is the SQL compiler's: behaviour * factor + fit
        return self.behaviour * decay_factor(self.half_life, when - self.decayed_at) + self.fit


@dataclass
class DatabaseFacts:
    """`rejse.conditions.Facts` of one profile as of `now`. `found` is false for an unknown or
    erased profile (its facts are then empty)."""

    session: Session
    profile_id: str
    now: dt.datetime
    found: bool = True
    traits: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, str] = field(default_factory=dict)
    audiences: Collection[str] = field(default_factory=frozenset)
    customer: Mapping[str, Any] = field(default_factory=dict)
    curve: ScoreCurve = field(default_factory=ScoreCurve)

    @property
    def score(self) -> float:
        return self.curve.at(self.now)

    def score_at(self, when: dt.datetime) -> float:
        return self.curve.at(when)

    def _events(
        self, event: str, since: dt.datetime | None, columns: tuple[Any, ...]
    ) -> sa.Select[Any]:
        stmt = sa.select(*columns).where(
            _EVENT.c.profile_id == self.profile_id, _EVENT.c.event == event
        )
        return stmt if since is None else stmt.where(_EVENT.c.timestamp >= since)

    def _matching(
        self, event: str, since: dt.datetime | None, where: Mapping[str, Any]
    ) -> Iterator[dt.datetime]:
        stmt = self._events(event, since, (_EVENT.c.timestamp, _EVENT.c.properties))
        for ts, props in self.session.connection().execute(stmt.order_by(_EVENT.c.timestamp)):
            if matches(where, {"properties": props or {}, "event": event}):
                yield ts

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int:
        if not self.found:
            return 0
        if not where:
            stmt = self._events(event, since, (sa.func.count(),))
            return int(self.session.connection().execute(stmt).scalar_one())
        return sum(1 for _ in self._matching(event, since, where))

    def earliest_event(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> dt.datetime | None:
        if not self.found:
            return None
        if not where:
            stmt = self._events(event, since, (sa.func.min(_EVENT.c.timestamp),))
            value = self.session.connection().execute(stmt).scalar()
            return _utc(value)
        return next(self._matching(event, since, where), None)


def _utc(value: Any) -> dt.datetime | None:
    """`min()` of a UTCDateTime column comes back untyped on SQLite (text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a time: {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def active_half_life(session: Session) -> dt.timedelta | None:
    """The active scoring model's half-life (None: no model or no decay)."""
    model = compiled_active(session)
    return model.half_life if model else None


def load_facts(
    session: Session,
    profile_id: str,
    *,
    now: dt.datetime,
    properties: Mapping[str, Any] | None = None,
) -> DatabaseFacts:
    """The facts of one profile as of `now` (`properties`: the current event's, for
    `property` leaves in branches). A merged-away id reads its survivor."""
    conn = session.connection()
    row = conn.execute(_READ_PROFILE, {"_pid": profile_id}).mappings().first()
    current: str | None = profile_id
    seen = {profile_id}
    while row is None:  # merged away: follow profile_merge to the survivor
        current = conn.execute(_READ_MERGE, {"_pid": current}).scalar()
        if current is None or current in seen:
            break
        seen.add(current)
        row = conn.execute(_READ_PROFILE, {"_pid": current}).mappings().first()
    props = dict(properties or {})
    if row is None or row["erased_at"] is not None:
        return DatabaseFacts(session, profile_id, now, found=False, properties=props)
    pid = row["id"]
    order_count = int(row["order_count"] or 0)
    revenue = float(row["revenue"] or 0.0)
    customer = {
        "order_count": order_count,
        "revenue": revenue,
        "average_order_value": revenue / order_count if order_count > 0 else None,
        "first_order_at": row["first_order_at"],
        "last_order_at": row["last_order_at"],
    }
    state = read_state(session, pid)
    curve = (
        ScoreCurve(state.behaviour, state.fit, state.decayed_at, active_half_life(session))
        if state is not None
        else ScoreCurve()
    )
    return DatabaseFacts(
        session,
        pid,
        now,
        traits=dict(row["traits"] or {}),
        properties=props,
        consents={str(c): str(s) for c, s in conn.execute(_READ_CONSENTS, {"_pid": pid})},
        audiences=frozenset(k for (k,) in conn.execute(_READ_AUDIENCES, {"_pid": pid})),
        customer=customer,
        curve=curve,
    )
