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
import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.conditions import matches
from rejse.durations import parse_duration
from rejse.models.audiences import AudienceMembership
from rejse.models.events import Event
from rejse.models.leads import ScoringModel
from rejse.models.profiles import Consent, Profile, ProfileMerge
from rejse.scoring.definition import ScoringDefinition
from rejse.scoring.engine import decay_factor
from rejse.scoring.service import ModelCache, read_state

_PROFILE = Profile.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]
_CONSENT = Consent.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = AudienceMembership.__table__  # type: ignore[attr-defined]
_MERGE = ProfileMerge.__table__  # type: ignore[attr-defined]
_MODEL = ScoringModel.__table__  # type: ignore[attr-defined]

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
_READ_HALF_LIFE = sa.select(_MODEL.c.definition).where(_MODEL.c.active.is_(True)).limit(1)

# (event name, since, `where` as canonical JSON or ""): what `count_events` and
# `earliest_event` are asked, the key of their answers kept for the facts' lifetime
EventKey = tuple[str, dt.datetime | None, str]
HalfLife = Callable[[], dt.timedelta | None]


def event_key(event: str, since: dt.datetime | None, where: Mapping[str, Any] | None) -> EventKey:
    return (event, since, json.dumps(where, sort_keys=True) if where else "")


@dataclass(frozen=True)
class EventSpec:
    """An event leaf as `prefetch` needs it: the name, the `within` window, the `where`."""

    event: str
    window: dt.timedelta | None
    where: Mapping[str, Any] | None
    where_key: str


def event_specs(leaves: Iterable[Mapping[str, Any]]) -> tuple[EventSpec, ...]:
    """The distinct `EventSpec`s of some event leaves (their count comparisons do not matter)."""
    specs: dict[tuple[str, str, str], EventSpec] = {}
    for leaf in leaves:
        where = leaf.get("where") or None
        where_key = json.dumps(where, sort_keys=True) if where else ""
        within = leaf.get("within") or ""
        key = (leaf["event"], within, where_key)
        if key not in specs:
            window = parse_duration(within) if within else None
            specs[key] = EventSpec(leaf["event"], window, where, where_key)
    return tuple(specs.values())


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
    # answers already read (by `prefetch_events` or an earlier question): the profile's events
    # do not change while one set of facts is in use
    _counts: dict[EventKey, int] = field(default_factory=dict, repr=False, compare=False)
    _earliest: dict[EventKey, dt.datetime | None] = field(
        default_factory=dict, repr=False, compare=False
    )

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
        key = event_key(event, since, where)
        if key not in self._counts:
            if not where:
                stmt = self._events(event, since, (sa.func.count(),))
                self._counts[key] = int(self.session.connection().execute(stmt).scalar_one())
            else:
                self._counts[key] = sum(1 for _ in self._matching(event, since, where))
        return self._counts[key]

    def earliest_event(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> dt.datetime | None:
        if not self.found:
            return None
        key = event_key(event, since, where)
        if key not in self._earliest:
            if not where:
                stmt = self._events(event, since, (sa.func.min(_EVENT.c.timestamp),))
                self._earliest[key] = _utc(self.session.connection().execute(stmt).scalar())
            else:
                self._earliest[key] = next(self._matching(event, since, where), None)
        return self._earliest[key]

    def prefetch_events(self, leaves: Iterable[Mapping[str, Any]]) -> None:
        """Answer `count_events` and `earliest_event` for every event leaf in `leaves` (as of
        the facts' now) ahead, in at most two queries: one of counts and oldest times for the
        leaves without `where`, one of the rows the leaves with `where` match in memory."""
        self.prefetch(event_specs(leaves))

    def prefetch(self, specs: Iterable[EventSpec]) -> None:
        """`prefetch_events` of leaves already turned into `EventSpec`s."""
        if not self.found:
            return
        plain: dict[EventKey, tuple[str, dt.datetime | None]] = {}
        filtered: dict[EventKey, tuple[str, dt.datetime | None, Mapping[str, Any]]] = {}
        for spec in specs:
            since = None if spec.window is None else self.now - spec.window
            key = (spec.event, since, spec.where_key)
            if key in self._counts and (since is None or key in self._earliest):
                continue
            if spec.where:
                filtered[key] = (spec.event, since, spec.where)
            else:
                plain[key] = (spec.event, since)
        conn = self.session.connection()
        if plain:
            keys = list(plain)
            sinces = [plain[k][1] for k in keys]
            params: dict[str, Any] = {
                "_pid": self.profile_id,
                "_names": sorted({k[0] for k in keys}),
            }
            for n, k in enumerate(keys):
                params[f"n{n}"], params[f"s{n}"] = plain[k]
            bounded = all(since is not None for since in sinces)
            if bounded:
                params["_lo"] = min(s for s in sinces if s is not None)
            stmt = _aggregate(tuple(since is not None for since in sinces), bounded)
            row = conn.execute(stmt, {k: v for k, v in params.items() if v is not None}).one()
            for n, k in enumerate(keys):
                if k[1] is not None:
                    self._earliest[k] = _utc(row[2 * n])
                self._counts[k] = int(row[2 * n + 1] or 0)
        if filtered:
            sinces = [since for _, since, _ in filtered.values()]
            stmt = sa.select(_EVENT.c.event, _EVENT.c.timestamp, _EVENT.c.properties).where(
                _EVENT.c.profile_id == self.profile_id,
                _EVENT.c.event.in_(sorted({name for name, _, _ in filtered.values()})),
            )
            if all(since is not None for since in sinces):
                stmt = stmt.where(_EVENT.c.timestamp >= min(s for s in sinces if s is not None))
            rows = conn.execute(stmt).all()
            for key, (name, since, where) in filtered.items():
                times = [
                    ts
                    for event, ts, props in rows
                    if event == name
                    and (since is None or ts >= since)
                    and matches(where, {"properties": props or {}, "event": event})
                ]
                self._counts[key] = len(times)
                if since is not None:
                    self._earliest[key] = min(times, default=None)


@functools.lru_cache(maxsize=256)
def _aggregate(timed: tuple[bool, ...], bounded: bool) -> sa.Select[Any]:
    """`SELECT min(ts) [or NULL], count` for each (event name `n{i}`, since `s{i}`) of a
    profile's events, in one pass over the profile's events of those names (`_lo`: the
    earliest since, when every leaf has one)."""
    e = _EVENT
    columns: list[Any] = []
    for n, has_since in enumerate(timed):
        hit = e.c.event == sa.bindparam(f"n{n}", type_=e.c.event.type)
        if has_since:
            hit = sa.and_(hit, e.c.timestamp >= sa.bindparam(f"s{n}", type_=e.c.timestamp.type))
            columns.append(sa.func.min(sa.case((hit, e.c.timestamp))))
        else:  # no window: the oldest is never asked (next_change follows windows only)
            columns.append(sa.null())
        columns.append(sa.func.sum(sa.case((hit, 1), else_=0)))
    stmt = sa.select(*columns).where(
        e.c.profile_id == sa.bindparam("_pid"),
        e.c.event.in_(sa.bindparam("_names", expanding=True)),
    )
    if bounded:
        stmt = stmt.where(e.c.timestamp >= sa.bindparam("_lo", type_=e.c.timestamp.type))
    return stmt


def _utc(value: Any) -> dt.datetime | None:
    """`min()` of a UTCDateTime column comes back untyped on SQLite (text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a time: {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def active_half_life(session: Session, scoring: ModelCache | None = None) -> dt.timedelta | None:
    """The active scoring model's half-life (None: no model or no decay): from `scoring`'s
    compiled model when given (the processor's cache), else read from the active definition
    alone (compiling the whole model is not needed for it)."""
    if scoring is not None:
        model = scoring.get(session)
        return model.half_life if model else None
    definition = session.connection().execute(_READ_HALF_LIFE).scalar()
    if definition is None:
        return None
    half_life = ScoringDefinition.model_validate(definition).half_life
    return parse_duration(half_life) if half_life else None


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
    return _facts(session, row, now=now, properties=props)


def load_live_facts(
    session: Session,
    profile_id: str,
    *,
    now: dt.datetime,
    consents: bool = True,
    score: bool = True,
    scoring: ModelCache | None = None,
    audiences: Collection[str] | None = None,
) -> DatabaseFacts | None:
    """The facts of exactly this profile (no merge followed), None when it is gone or erased.
    `consents` / `score` false: not read (the conditions asked about do not look at them;
    they are then empty / 0). `scoring` caches the active model's half-life. `audiences`: the
    profile's memberships when the caller has read them (else they are read)."""
    row = session.connection().execute(_READ_PROFILE, {"_pid": profile_id}).mappings().first()
    if row is None or row["erased_at"] is not None:
        return None
    return _facts(
        session,
        row,
        now=now,
        consents=consents,
        score=score,
        scoring=scoring,
        audiences=audiences,
    )


def _facts(
    session: Session,
    row: sa.RowMapping,
    *,
    now: dt.datetime,
    properties: Mapping[str, Any] | None = None,
    consents: bool = True,
    score: bool = True,
    scoring: ModelCache | None = None,
    audiences: Collection[str] | None = None,
) -> DatabaseFacts:
    conn = session.connection()
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
    state = read_state(session, pid) if score else None
    curve = (
        ScoreCurve(state.behaviour, state.fit, state.decayed_at, active_half_life(session, scoring))
        if state is not None
        else ScoreCurve()
    )
    return DatabaseFacts(
        session,
        pid,
        now,
        traits=dict(row["traits"] or {}),
        properties=dict(properties or {}),
        consents=(
            {str(c): str(s) for c, s in conn.execute(_READ_CONSENTS, {"_pid": pid})}
            if consents
            else {}
        ),
        audiences=(
            frozenset(k for (k,) in conn.execute(_READ_AUDIENCES, {"_pid": pid}))
            if audiences is None
            else frozenset(audiences)
        ),
        customer=customer,
        curve=curve,
    )
