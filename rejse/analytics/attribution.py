"""Attribution: which journey, step and message a conversion is credited to, with its revenue
(docs/analytics.md, "Attribution").

A conversion is
- a run's goal: an `exit_when` event that ended the run as converted. Recorded when the run
  ends (`goal_reached`, called by the journeys' finish activity): the goal event is the run's
  profile's first event after its entry that matches a goal, and the credit goes to the last
  touch of the run's own messages before it (its send, first open or first click), or to the
  step the run was at when no message had gone out yet;
- or an event named as the journey's conversion event (default `Order Completed`) within the
  journey's attribution window (default P5D) after a send, open or click of one of the
  journey's messages: the last touch over every journey gets the credit. The event processor
  notes each such event (`AttributionSubscriber`), a scheduler job credits the notes every few
  seconds (`settle`). An event that reaches the goal of a run is that run's conversion
  (credited when the run ends) and is not credited a second time.
Each conversion carries the event's revenue (`revenue`, else `total`, else `value`, as customer
value reads it) and counts once: its row id is the event's id and what it is credited to."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from rejse import analytics_deltas as deltas
from rejse.analytics import rollups
from rejse.contracts import ProcessedEvent
from rejse.durations import DurationError, parse_duration
from rejse.journeys.definition import JourneyDefinition, resolve_match
from rejse.journeys.matching import event_matches
from rejse.models.analytics import (
    DEFAULT_ATTRIBUTION_WINDOW,
    DEFAULT_CONVERSION_EVENT,
    REVENUE_SCALE,
    AnalyticsConversion,
    AnalyticsJourney,
    AnalyticsPending,
)
from rejse.models.events import Event
from rejse.models.journeys import ACTIVE_RUN_STATUSES, JourneyRun, JourneyVersion
from rejse.models.messaging import Message
from rejse.profiles.value import amount_of, currency_of

if TYPE_CHECKING:
    from rejse.runtime import Runtime
    from rejse.scheduler import ScheduledJob

GOAL, WINDOW = "goal", "window"
# what a touch needs of a message (not its bodies)
TOUCH_COLUMNS = (
    col(Message.id),
    col(Message.idempotency_key),
    col(Message.journey_key),
    col(Message.journey_version),
    col(Message.step_id),
    col(Message.channel),
    col(Message.template),
    col(Message.created_at),
    col(Message.sent_at),
    col(Message.opened_at),
    col(Message.clicked_at),
)
TOUCH_RANK = {"send": 0, "open": 1, "click": 2}  # at the same instant the later kind wins
_GOAL_EVENTS_SCANNED = 200


@dataclass(frozen=True)
class Rule:
    conversion_event: str
    window: dt.timedelta


DEFAULT_RULE = Rule(DEFAULT_CONVERSION_EVENT, parse_duration(DEFAULT_ATTRIBUTION_WINDOW))


def rule_of(row: AnalyticsJourney | None) -> Rule:
    if row is None:
        return DEFAULT_RULE
    try:
        window = parse_duration(row.attribution_window)
    except DurationError:  # validated on the way in; a stored value never fails
        window = DEFAULT_RULE.window
    return Rule(row.conversion_event, window)


class Rules:
    """Every journey's rule (journeys without settings have the default), reread at most every
    `ttl` seconds: a changed window applies to conversions from then on."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._names: frozenset[str] = frozenset({DEFAULT_CONVERSION_EVENT})
        self._loaded = -1e9

    def _load(self, session: Session) -> None:
        with self._lock:
            if time.monotonic() - self._loaded < self.ttl:
                return
        rules = {row.journey_key: rule_of(row) for row in session.exec(select(AnalyticsJourney))}
        names = frozenset({DEFAULT_CONVERSION_EVENT, *(r.conversion_event for r in rules.values())})
        with self._lock:
            self._rules, self._names, self._loaded = rules, names, time.monotonic()

    def names(self, session: Session) -> frozenset[str]:
        self._load(session)
        return self._names

    def get(self, session: Session, journey_key: str) -> Rule:
        self._load(session)
        return self._rules.get(journey_key, DEFAULT_RULE)

    def widest(self, session: Session, event: str) -> dt.timedelta | None:
        """The longest window of the journeys whose conversion event is `event`."""
        self._load(session)
        windows = [r.window for r in self._rules.values() if r.conversion_event == event]
        if event == DEFAULT_CONVERSION_EVENT:
            windows.append(DEFAULT_RULE.window)  # journeys without settings
        return max(windows, default=None)

    def invalidate(self) -> None:
        with self._lock:
            self._loaded = -1e9


def revenue_units(properties: dict[str, Any]) -> tuple[int, str | None]:
    amount = amount_of(properties)
    currency = currency_of(properties)
    units = round(amount * REVENUE_SCALE) if amount is not None else 0
    return units, (currency or None)


@dataclass(frozen=True)
class Touch:
    message: Any  # a Message row (or a row with its columns)
    kind: str  # send / open / click
    at: dt.datetime

    def order(self) -> tuple[dt.datetime, int, str]:
        return (self.at, TOUCH_RANK[self.kind], self.message.id)


def touches_of(message: Any, *, at: dt.datetime, since: dt.datetime | None) -> list[Touch]:
    """The message's send, first open and first click at or before `at` (and not before
    `since`)."""
    out = []
    for kind, when in (
        ("send", message.sent_at),
        ("open", message.opened_at),
        ("click", message.clicked_at),
    ):
        if when is not None and when <= at and (since is None or when >= since):
            out.append(Touch(message, kind, when))
    return out


def _record(session: Session, conv: AnalyticsConversion) -> bool:
    if session.get(AnalyticsConversion, conv.id) is not None:
        return False
    session.add(conv)
    deltas.conversion(session, conv)
    return True


def _credited(
    *,
    id_: str,
    kind: str,
    event_id: str | None,
    touch: Touch | None,
    run: JourneyRun | None,
    at: dt.datetime,
    properties: dict[str, Any],
) -> AnalyticsConversion:
    units, currency = revenue_units(properties)
    if touch is not None:
        m = touch.message
        journey_key, version, step_id = m.journey_key, m.journey_version or 0, m.step_id or ""
        channel, template, day = m.channel, m.template, deltas.day_of(m.created_at)
    elif run is not None:
        journey_key, version, step_id = run.journey_key, run.version, run.current_step or ""
        channel, template, day = "", "", deltas.day_of(run.entered_at)
    else:
        raise ValueError("a conversion is credited to a message or a run")
    return AnalyticsConversion(
        id=id_[:120],
        event_id=event_id,
        kind=kind,
        journey_key=journey_key,
        version=version,
        step_id=step_id,
        channel=channel,
        template=template,
        day=day,
        run_id=run.id if run is not None else None,
        message_id=touch.message.id if touch is not None else None,
        touch=touch.kind if touch is not None else None,
        touch_at=touch.at if touch is not None else None,
        revenue_units=units,
        currency=currency,
        at=at,
    )


# ------------------------------------------------------------------------------------- goals


def _definition(session: Session, run: JourneyRun) -> JourneyDefinition | None:
    row = session.get(JourneyVersion, (run.journey_key, run.version))
    return JourneyDefinition.model_validate(row.definition) if row is not None else None


def _event_of(row: Event) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=row.id,
        profile_id=row.profile_id or "",
        type=row.type,
        event=row.event,
        group_id=row.group_id,
        properties=row.properties or {},
        traits=row.traits or {},
        timestamp=row.timestamp,
        received_at=row.received_at,
    )


def _goals(
    session: Session, run: JourneyRun, defn: JourneyDefinition
) -> list[tuple[str, dict[str, Any]]]:
    """The run's goals with `{{ trigger... }}` resolved as its workflow resolved them."""
    trigger = session.get(Event, run.trigger_event_id)
    context = {"trigger": _event_of(trigger).model_dump(mode="json") if trigger else {}}
    return [(g.event, resolve_match(g.match, context)) for g in defn.exit_when]


GoalCache = dict[tuple[str, int], JourneyDefinition | None]


def is_goal_of(
    session: Session, run: JourneyRun, event: ProcessedEvent, cache: GoalCache | None = None
) -> bool:
    """Whether `event` reaches a goal of the active `run` (versions are immutable: `cache`
    keeps their definitions)."""
    key = (run.journey_key, run.version)
    if cache is not None and key in cache:
        defn = cache[key]
    else:
        defn = _definition(session, run)
        if cache is not None:
            cache[key] = defn
    if defn is None or event.event_id == run.trigger_event_id:
        return False
    if not any(g.event == event.event for g in defn.exit_when):
        return False  # no goal of that name: no need to read the trigger
    return any(event_matches(event, name, where) for name, where in _goals(session, run, defn))


def run_messages(session: Session, run: JourneyRun) -> list[Any]:
    """The messages this run sent: idempotency key `<workflow id>:<step>[@entry][#visit]`."""
    prefix = f"{run.workflow_id}:"
    out = []
    m: Any
    for m in session.execute(
        sa.select(*TOUCH_COLUMNS).where(
            col(Message.profile_id) == run.profile_id,
            col(Message.journey_key) == run.journey_key,
            col(Message.idempotency_key).startswith(prefix, autoescape=True),
        )
    ):
        rest = m.idempotency_key[len(prefix) :].split("#", 1)[0]
        entry = rest.rsplit("@", 1)[1] if "@" in rest else "1"
        if entry.isdigit() and int(entry) == run.entry_no:
            out.append(m)
    return out


def goal_reached(session: Session, run: JourneyRun, *, at: dt.datetime) -> AnalyticsConversion:
    """The run has just ended as converted: record its conversion (idempotent)."""
    goal: Event | None = None
    defn = _definition(session, run)
    if defn is not None and defn.exit_when:
        goals = _goals(session, run, defn)
        for row in session.exec(
            select(Event)
            .where(
                Event.profile_id == run.profile_id,
                col(Event.event).in_({name for name, _ in goals}),
                Event.timestamp >= run.entered_at,
                Event.id != run.trigger_event_id,
            )
            .order_by(col(Event.timestamp), col(Event.id))
            .limit(_GOAL_EVENTS_SCANNED)
        ):
            ev = _event_of(row)
            if any(event_matches(ev, name, where) for name, where in goals):
                goal = row
                break
    when = goal.timestamp if goal is not None else at
    touches = [t for m in run_messages(session, run) for t in touches_of(m, at=when, since=None)]
    touch = max(touches, key=Touch.order) if touches else None
    conv = _credited(
        id_=f"{goal.id if goal else 'run'}:{run.id}",
        kind=GOAL,
        event_id=goal.id if goal else None,
        touch=touch,
        run=run,
        at=when,
        properties=goal.properties if goal else {},
    )
    _record(session, conv)
    return conv


# ------------------------------------------------------------------------------------ windows


def last_touch(
    session: Session, rules: Rules, *, profile_id: str, event: str, at: dt.datetime
) -> Touch | None:
    """The latest send, open or click before `at` of a journey message to the profile, within
    its journey's window, of the journeys whose conversion event is `event`."""
    widest = rules.widest(session, event)
    if widest is None:
        return None
    since = at - widest
    m = Message
    rows: Any = session.execute(
        sa.select(*TOUCH_COLUMNS).where(
            col(m.profile_id) == profile_id,
            col(m.journey_key).is_not(None),
            col(m.sent_at).is_not(None),
            col(m.sent_at) <= at,
            sa.or_(
                col(m.sent_at) >= since,
                col(m.opened_at) >= since,
                col(m.clicked_at) >= since,
            ),
        )
    )
    best: Touch | None = None
    for row in rows:
        rule = rules.get(session, row.journey_key or "")
        if rule.conversion_event != event:
            continue
        for touch in touches_of(row, at=at, since=at - rule.window):
            if best is None or touch.order() > best.order():
                best = touch
    return best


class AttributionSubscriber:
    """`rejse.contracts.InTransactionSubscriber`: notes each conversion event (one
    `analytics_pending` row, written with the processor's own writes: no query of its own), for
    `settle` to credit. So the processor pays nearly nothing per order, and by the time an
    event is settled a run it is the goal of has usually recorded its end."""

    name = "analytics"

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        return event.event is not None and event.event in self.rules.names(session)

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]:
        if not event.event or event.event not in self.rules.names(session):
            return []
        units, currency = revenue_units(event.properties)
        session.add(
            AnalyticsPending(
                event_id=event.event_id,
                profile_id=event.profile_id,
                event=event.event,
                at=event.timestamp,
                revenue_units=units,
                currency=currency,
            )
        )
        return []


PENDING = AnalyticsPending.__table__  # type: ignore[attr-defined]


class Settler:
    """Credits the noted conversion events to their last touch within a window (`settle`)."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self._definitions: GoalCache = {}

    def credit(self, session: Session, pending: AnalyticsPending) -> AnalyticsConversion | None:
        touch = last_touch(
            session, self.rules, profile_id=pending.profile_id, event=pending.event, at=pending.at
        )
        if touch is None:
            return None  # most orders: no journey message within a window
        event = ProcessedEvent(
            event_id=pending.event_id,
            profile_id=pending.profile_id,
            type="track",
            event=pending.event,
            timestamp=pending.at,
            received_at=pending.at,
        )
        row = session.get(Event, pending.event_id)
        if row is not None:
            event = _event_of(row)
        if session.exec(
            select(AnalyticsConversion.id).where(
                AnalyticsConversion.event_id == pending.event_id,
                AnalyticsConversion.kind == GOAL,
            )
        ).first():
            return None  # a run's goal, credited when it ended
        active = session.exec(
            select(JourneyRun).where(
                JourneyRun.profile_id == pending.profile_id,
                col(JourneyRun.status).in_(ACTIVE_RUN_STATUSES),
            )
        ).all()
        if any(is_goal_of(session, run, event, self._definitions) for run in active):
            return None  # the run's conversion, credited when it ends
        conv = _credited(
            id_=f"{pending.event_id}:{touch.message.id}",
            kind=WINDOW,
            event_id=pending.event_id,
            touch=touch,
            run=None,
            at=pending.at,
            properties={},
        )
        conv.revenue_units, conv.currency = pending.revenue_units, pending.currency
        return conv if _record(session, conv) else None

    def settle(self, engine: Engine, *, batch: int = 1000) -> int:
        """Credit every noted conversion event, `batch` per transaction; returns how many
        were looked at. Rows another settler holds are skipped (PostgreSQL)."""
        done = 0
        while True:
            with Session(engine, expire_on_commit=False) as session:
                stmt = select(AnalyticsPending).order_by(col(AnalyticsPending.at)).limit(batch)
                if engine.dialect.name == "postgresql":
                    stmt = stmt.with_for_update(skip_locked=True)
                rows = list(session.exec(stmt))
                for pending in rows:
                    self.credit(session, pending)
                if rows:
                    session.execute(
                        PENDING.delete().where(PENDING.c.event_id.in_([r.event_id for r in rows]))
                    )
                session.commit()
            done += len(rows)
            if len(rows) < batch:
                return done


def settle(engine: Engine) -> int:
    """Credit the noted conversion events now (the scheduler does it every few seconds)."""
    return Settler().settle(engine)


FOLD_INTERVAL = dt.timedelta(seconds=10)


def scheduler_jobs(runtime: Runtime) -> list[ScheduledJob]:
    """Every few seconds: credit the noted conversion events, then fold the counters. Safe
    twice at once on PostgreSQL (each pending row and each delta is taken once); SQLite has one
    scheduler (its leader lock)."""
    from rejse.scheduler import ScheduledJob

    settler = Settler()

    def work(engine: Engine) -> None:
        settler.settle(engine)
        rollups.fold(engine)

    async def job(rt: Runtime) -> None:
        await asyncio.to_thread(work, rt.engine)

    return [ScheduledJob(id="analytics.fold", trigger=FOLD_INTERVAL, func=job, run_on_start=True)]
