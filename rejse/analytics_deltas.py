"""The analytics counters' delta writer: what the places that change runs and messages call,
in their own transaction, once per change (docs/analytics.md, "How the figures are kept").

Each hook appends `analytics_delta` rows (inserts only: no counter row that concurrent
transactions would queue on); `rejse.analytics.rollups` folds them into `analytics_rollup` and
reads both. This module sits below the journeys and messaging code that calls it and imports
only models, so the counters' reader (analytics) stays above everything it counts.

Days are UTC days of the cohort: a message's figures count on the day the message was created;
a run's (entered, steps, ends, its arms at split steps, and a goal reached before any message)
on the day the run entered."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from rejse.models.analytics import REVENUE_SCALE, AnalyticsConversion, AnalyticsDelta
from rejse.models.journeys import ACTIVE_RUN_STATUSES, JourneyRun
from rejse.models.messaging import Message
from rejse.models.profiles import ConsentChangeRecord

CONSENT_CHANGE = ConsentChangeRecord.__table__  # type: ignore[attr-defined]

DIMENSIONS = ("journey_key", "version", "step_id", "day", "channel", "template")
DELIVERED = ("sent", "opened", "clicked")
FAILED = ("failed", "bounced")
UNSUBSCRIBE_SOURCES = ("unsubscribe:", "preferences:")  # + message id (rejse.messaging)
ALL_MARKETING = "marketing"  # rejse.profiles.consent.ALL_MARKETING

# metric names
ENTERED = "entered"  # runs (step "")
STEP_ENTERED = "step_entered"  # runs that reached the step
STEP_LEFT = "step_left"  # runs that moved on from it or ended there (waiting = entered - left)
ENDED = "ended."  # + the run's final status, at the step it ended at
MSG_DELIVERED = "delivered"
MSG_FAILED = "failed"  # and "failed.<reason code>"
MSG_SKIPPED = "skipped"  # and "skipped.<reason code>"
OPENED = "opened"
CLICKED = "clicked"
UNSUBSCRIBED = "unsubscribed"
CONVERTED = "converted."  # + goal / window; n conversions, revenue_units their revenue
# A/B arms, at the split step (step_id) and per arm (the metric's suffix after the colon):
ARM_ENTERED = "arm.entered:"  # runs assigned the arm (once per run, however often they pass)
ARM_CONVERTED = "arm.converted:"  # those that reached the goal; revenue_units their revenue
ARM_REVENUE_SQ = "arm.revenue_sq:"  # revenue_units: sum of each run's revenue squared, scaled
ARM_PREFIX = "arm."


@dataclass(frozen=True)
class Dims:
    journey_key: str
    version: int
    step_id: str
    day: dt.date
    channel: str = ""
    template: str = ""


def day_of(at: dt.datetime) -> dt.date:
    return at.astimezone(dt.UTC).date() if at.tzinfo else at.date()


_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def reason_code(reason: str | None) -> str:
    """The stable part of a skip or failure reason: `no_consent (email)` -> `no_consent`,
    `frequency_cap (3 per P1D)` -> `frequency_cap`; `other` for free text."""
    match = _CODE.match(reason or "")
    return match.group(0) if match else "other"


def add(session: Session, dims: Dims, metric: str, n: int = 1, revenue_units: int = 0) -> None:
    session.add(
        AnalyticsDelta(
            journey_key=dims.journey_key,
            version=dims.version,
            step_id=dims.step_id,
            day=dims.day,
            channel=dims.channel,
            template=dims.template,
            metric=metric,
            n=n,
            revenue_units=revenue_units,
        )
    )


def run_dims(run: JourneyRun, step_id: str | None = None) -> Dims:
    return Dims(run.journey_key, run.version, step_id or "", day_of(run.entered_at))


def message_dims(row: Message) -> Dims:
    return Dims(
        row.journey_key or "",
        row.journey_version or 0,
        row.step_id or "",
        day_of(row.created_at),
        row.channel,
        row.template,
    )


# ------------------------------------------------------------------------------------ hooks
# Called where runs and messages change, in that transaction, once per change.


def run_entered(session: Session, run: JourneyRun) -> None:
    add(session, run_dims(run), ENTERED)


def step_entered(session: Session, run: JourneyRun, step_id: str, *, previous: str | None) -> None:
    """The active run reached `step_id` (a new step log row), coming from `previous`."""
    if previous:
        add(session, run_dims(run, previous), STEP_LEFT)
    add(session, run_dims(run, step_id), STEP_ENTERED)


def run_ended(
    session: Session, run: JourneyRun, *, previous_status: str, previous_step: str | None
) -> None:
    """The run has just got its final status (`run.status`, at `run.current_step`)."""
    if previous_status not in ACTIVE_RUN_STATUSES:
        return
    if previous_step:
        add(session, run_dims(run, previous_step), STEP_LEFT)
    add(session, run_dims(run, run.current_step), ENDED + run.status)


def run_erased(session: Session, run: JourneyRun) -> None:
    """GDPR erase deletes the run: it waits nowhere any more. What it did stays counted (the
    counters hold no personal data)."""
    if run.status in ACTIVE_RUN_STATUSES and run.current_step:
        add(session, run_dims(run, run.current_step), STEP_LEFT)


def message_final(session: Session, row: Message, *, previous_status: str) -> None:
    """The message has just got `row.status`; counted once, when it first becomes final."""
    final = (*DELIVERED, *FAILED, "skipped")
    if previous_status in final or row.status not in final:
        return
    dims = message_dims(row)
    if row.status in DELIVERED:
        add(session, dims, MSG_DELIVERED)
    elif row.status in FAILED:
        add(session, dims, MSG_FAILED)
        add(session, dims, f"{MSG_FAILED}.{reason_code(row.reason)}")
    else:
        add(session, dims, MSG_SKIPPED)
        add(session, dims, f"{MSG_SKIPPED}.{reason_code(row.reason)}")


def messages_delivered(session: Session, rows: list[Message]) -> None:
    """`message_final` of many messages that have just gone from `sending` to a delivered
    status: one delta row per dimension set, its `n` the number of messages."""
    counts: dict[Dims, int] = {}
    for row in rows:
        dims = message_dims(row)
        counts[dims] = counts.get(dims, 0) + 1
    for dims, n in counts.items():
        add(session, dims, MSG_DELIVERED, n)


def message_opened(session: Session, row: Message) -> None:
    """The message's first open (pixel, in-app read, or a click proving it)."""
    add(session, message_dims(row), OPENED)


def message_clicked(session: Session, row: Message) -> None:
    """The message's first click on any tracked link."""
    add(session, message_dims(row), CLICKED)


def unsubscribed_through(session: Session, row: Message) -> bool:
    """Whether the person has unsubscribed through one of the message's links already: the
    message's channel or all marketing revoked with the message's unsubscribe or preference
    link as the source."""
    found = session.execute(
        sa.select(sa.func.count())
        .select_from(CONSENT_CHANGE)
        .where(
            CONSENT_CHANGE.c.status == "revoked",
            CONSENT_CHANGE.c.source.in_([s + row.id for s in UNSUBSCRIBE_SOURCES]),
            CONSENT_CHANGE.c.channel.in_([row.channel, ALL_MARKETING]),
        )
    ).scalar_one()
    return bool(found)


def message_unsubscribed(session: Session, row: Message, *, before: bool) -> None:
    """After an unsubscribe or a preference-centre save through the message's link: counted
    when it is the first unsubscribe through this message (`before`: there was one already)."""
    if not before and unsubscribed_through(session, row):
        add(session, message_dims(row), UNSUBSCRIBED)


def conversion(session: Session, conv: AnalyticsConversion) -> None:
    dims = Dims(conv.journey_key, conv.version, conv.step_id, conv.day, conv.channel, conv.template)
    add(session, dims, CONVERTED + conv.kind, 1, conv.revenue_units)


def revenue_sq_units(revenue_units: int) -> int:
    """A run's revenue squared, in revenue units (`REVENUE_SCALE` per currency unit squared):
    exact integers, so a recount from the raw rows gives the same sum."""
    return revenue_units * revenue_units // REVENUE_SCALE


def arm_entered(session: Session, run: JourneyRun, step_id: str, arm: str) -> None:
    """The run was assigned `arm` at the split `step_id` for the first time."""
    add(session, run_dims(run, step_id), ARM_ENTERED + arm)


def arm_converted(
    session: Session, run: JourneyRun, arms: dict[str, str], *, revenue_units: int
) -> None:
    """The run (assigned `arms`: split step -> arm) has just reached its goal, with the goal's
    revenue."""
    for step_id, arm in arms.items():
        dims = run_dims(run, step_id)
        add(session, dims, ARM_CONVERTED + arm, 1, revenue_units)
        if revenue_units:
            add(session, dims, ARM_REVENUE_SQ + arm, 0, revenue_sq_units(revenue_units))
