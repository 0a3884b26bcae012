"""The counters campaign KPIs are read from, kept as runs, messages and conversions change
(docs/analytics.md, "How the figures are kept").

Each counter is keyed by journey, version, step, day, channel and template, and a metric name.
The places that change a run or a message call the hooks below in their own transaction; each
hook appends `analytics_delta` rows (inserts only: no counter row that concurrent transactions
would queue on). `fold` moves the deltas into `analytics_rollup` (every few seconds, a
scheduler job); `counts` reads both in one statement, so a figure is exact whenever it is read,
folded or not. `recount` computes the same counters from the raw rows (tests, the benchmark,
and `rebuild` for data written before analytics existed).

Days are UTC days of the cohort: a message's figures (delivered, opened, clicked, unsubscribed
and the conversions credited to it) count on the day the message was created; a run's (entered,
steps, ends, and a goal reached before any message) on the day the run entered. So a period's
rates are the rates of what was sent (or entered) in it, and never exceed 100 %."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from rejse.models.analytics import AnalyticsConversion, AnalyticsDelta, AnalyticsRollup
from rejse.models.journeys import ACTIVE_RUN_STATUSES, JourneyRun, JourneyStep
from rejse.models.messaging import Message
from rejse.models.profiles import ConsentChangeRecord

DELTA = AnalyticsDelta.__table__  # type: ignore[attr-defined]
ROLLUP = AnalyticsRollup.__table__  # type: ignore[attr-defined]
CONVERSION = AnalyticsConversion.__table__  # type: ignore[attr-defined]
RUN = JourneyRun.__table__  # type: ignore[attr-defined]
STEP = JourneyStep.__table__  # type: ignore[attr-defined]
MESSAGE = Message.__table__  # type: ignore[attr-defined]
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


# ------------------------------------------------------------------------------------ reads


@dataclass(frozen=True)
class Count:
    key: tuple[Any, ...]  # the group's values, in `group_by` order
    metric: str
    n: int
    revenue_units: int


def counts(
    session: Session | Connection,
    *,
    group_by: Sequence[str],
    journey_key: str | None = None,
    in_journeys: bool = False,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    metrics: Sequence[str] | None = None,
    metric_prefixes: Sequence[str] = (),
) -> list[Count]:
    """Counters summed over folded and unfolded rows in one statement (one snapshot), grouped
    by `group_by` (names of `DIMENSIONS`) and metric. `in_journeys`: leave out messages sent
    outside journeys. `metrics` / `metric_prefixes` limit the metrics read."""
    for name in group_by:
        if name not in DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}")

    def part(table: sa.Table) -> sa.Select[Any]:
        stmt = sa.select(*(table.c[d] for d in DIMENSIONS), table.c.metric, table.c.n)
        stmt = stmt.add_columns(table.c.revenue_units)
        if journey_key is not None:
            stmt = stmt.where(table.c.journey_key == journey_key)
        elif in_journeys:
            stmt = stmt.where(table.c.journey_key != "")
        if day_from is not None:
            stmt = stmt.where(table.c.day >= day_from)
        if day_to is not None:
            stmt = stmt.where(table.c.day <= day_to)
        wanted: list[sa.ColumnElement[bool]] = (
            [table.c.metric.in_(list(metrics))] if metrics else []
        )
        wanted += [table.c.metric.startswith(p, autoescape=True) for p in metric_prefixes]
        if wanted:
            stmt = stmt.where(sa.or_(*wanted))
        return stmt

    both = sa.union_all(part(ROLLUP), part(DELTA)).subquery()
    keys = [both.c[d] for d in group_by]
    stmt = sa.select(
        *keys, both.c.metric, sa.func.sum(both.c.n), sa.func.sum(both.c.revenue_units)
    ).group_by(*keys, both.c.metric)
    out = []
    for row in session.execute(stmt):
        *key, metric, n, revenue = row
        out.append(Count(tuple(_plain(k) for k in key), metric, int(n or 0), int(revenue or 0)))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":  # SQLite's dates
        return dt.date.fromisoformat(value)
    return value


# ------------------------------------------------------------------------------------ fold

_FOLD_PG = """
WITH moved AS (
  DELETE FROM analytics_delta
  WHERE id IN (SELECT id FROM analytics_delta ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
  RETURNING journey_key, version, step_id, day, channel, template, metric, n, revenue_units
), folded AS (
  INSERT INTO analytics_rollup AS r
    (journey_key, version, step_id, day, channel, template, metric, n, revenue_units)
  SELECT journey_key, version, step_id, day, channel, template, metric, sum(n), sum(revenue_units)
  FROM moved GROUP BY journey_key, version, step_id, day, channel, template, metric
  ON CONFLICT (journey_key, version, step_id, day, channel, template, metric)
  DO UPDATE SET n = r.n + EXCLUDED.n, revenue_units = r.revenue_units + EXCLUDED.revenue_units
  RETURNING 1
)
SELECT count(*) FROM moved
"""

_FOLD_SQLITE = """
INSERT INTO analytics_rollup
  (journey_key, version, step_id, day, channel, template, metric, n, revenue_units)
SELECT journey_key, version, step_id, day, channel, template, metric, sum(n), sum(revenue_units)
FROM analytics_delta WHERE id <= :last
GROUP BY journey_key, version, step_id, day, channel, template, metric
ON CONFLICT (journey_key, version, step_id, day, channel, template, metric)
DO UPDATE SET n = n + excluded.n, revenue_units = revenue_units + excluded.revenue_units
"""


def fold(engine: Engine, *, batch: int = 50_000) -> int:
    """Move every delta into the rollup, `batch` at a time; returns how many were moved.
    PostgreSQL: each batch is deleted and added in one statement (rows another fold holds are
    skipped, none is added twice); SQLite has one writer at a time."""
    moved = 0
    while True:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                n = int(conn.execute(sa.text(_FOLD_PG), {"batch": batch}).scalar_one())
            else:
                last = conn.execute(
                    sa.select(sa.func.max(sa.literal_column("id"))).select_from(
                        sa.select(DELTA.c.id).order_by(DELTA.c.id).limit(batch).subquery()
                    )
                ).scalar()
                if last is None:
                    n = 0
                else:
                    conn.execute(sa.text(_FOLD_SQLITE), {"last": last})
                    n = conn.execute(DELTA.delete().where(DELTA.c.id <= last)).rowcount or 0
        moved += n
        if n < batch:
            return moved


# ------------------------------------------------------------------------------------ recount


def _day(conn: Connection | Session, column: Any) -> Any:
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.substr(column, 1, 10)


def _after_colon(conn: Connection | Session, column: Any) -> Any:
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    if dialect == "postgresql":
        return sa.func.split_part(column, ":", 2)
    return sa.func.substr(column, sa.func.instr(column, ":") + 1)


def recount(
    conn: Connection | Session, *, journey_key: str | None = None
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Every counter computed from the raw rows (runs, step log, messages, consent changes,
    conversions): {(journey_key, version, step_id, day, channel, template, metric): (n,
    revenue_units)}, the same figures `counts` reads (zeros left out). Plain aggregates: what
    the rollups save at read time."""
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])

    def put(rows: Iterable[Any], metric: Any) -> None:
        for row in rows:
            *dims, n, revenue = row
            name = metric(row) if callable(metric) else metric
            key = (*(_plain(d) if d is not None else "" for d in dims), name)
            out[key][0] += int(n)
            out[key][1] += int(revenue or 0)

    def only(table: sa.Table, stmt: sa.Select[Any]) -> sa.Select[Any]:
        if journey_key is not None:
            stmt = stmt.where(table.c.journey_key == journey_key)
        return stmt

    empty = sa.literal("")
    zero = sa.literal(0)
    run_day = _day(conn, RUN.c.entered_at)
    # runs entered
    put(
        conn.execute(
            only(
                RUN,
                sa.select(
                    RUN.c.journey_key,
                    RUN.c.version,
                    empty,
                    run_day,
                    empty,
                    empty,
                    sa.func.count(),
                    zero,
                ).group_by(RUN.c.journey_key, RUN.c.version, run_day),
            )
        ),
        ENTERED,
    )
    # steps reached, and where active runs wait
    step_rows = conn.execute(
        only(
            RUN,
            sa.select(
                RUN.c.journey_key,
                RUN.c.version,
                STEP.c.step_id,
                run_day,
                empty,
                empty,
                sa.func.count(),
                zero,
            )
            .select_from(STEP.join(RUN, RUN.c.id == STEP.c.run_id))
            .group_by(RUN.c.journey_key, RUN.c.version, STEP.c.step_id, run_day),
        )
    ).all()
    put(step_rows, STEP_ENTERED)
    waiting = {
        tuple(r[:6]): int(r[6])
        for r in conn.execute(
            only(
                RUN,
                sa.select(
                    RUN.c.journey_key,
                    RUN.c.version,
                    RUN.c.current_step,
                    run_day,
                    empty,
                    empty,
                    sa.func.count(),
                )
                .where(RUN.c.status.in_(ACTIVE_RUN_STATUSES), RUN.c.current_step.is_not(None))
                .group_by(RUN.c.journey_key, RUN.c.version, RUN.c.current_step, run_day),
            )
        )
    }
    put(
        [
            (*r[:6], int(r[6]) - waiting.get(tuple(r[:6]), 0), 0)
            for r in step_rows
            if int(r[6]) - waiting.get(tuple(r[:6]), 0)
        ],
        STEP_LEFT,
    )
    # ends: the final status is the metric
    for r in conn.execute(
        only(
            RUN,
            sa.select(
                RUN.c.journey_key,
                RUN.c.version,
                RUN.c.current_step,
                run_day,
                empty,
                empty,
                RUN.c.status,
                sa.func.count(),
            )
            .where(RUN.c.status.not_in(ACTIVE_RUN_STATUSES))
            .group_by(RUN.c.journey_key, RUN.c.version, RUN.c.current_step, run_day, RUN.c.status),
        )
    ):
        key = (*(_plain(d) if d is not None else "" for d in r[:6]), ENDED + r[6])
        out[key][0] += int(r[7])
    # messages: final states with reasons, first opens and clicks
    m = MESSAGE.c
    msg_dims = (
        sa.func.coalesce(m.journey_key, ""),
        sa.func.coalesce(m.journey_version, 0),
        sa.func.coalesce(m.step_id, ""),
        _day(conn, m.created_at),
        m.channel,
        m.template,
    )

    def msg_only(stmt: sa.Select[Any]) -> sa.Select[Any]:
        return stmt.where(m.journey_key == journey_key) if journey_key is not None else stmt

    for r in conn.execute(
        msg_only(
            sa.select(*msg_dims, m.status, m.reason, sa.func.count())
            .where(m.status.in_((*DELIVERED, *FAILED, "skipped")))
            .group_by(*msg_dims, m.status, m.reason)
        )
    ):
        dims = tuple(_plain(d) for d in r[:6])
        status, reason, n = r[6], r[7], int(r[8])
        if status in DELIVERED:
            out[(*dims, MSG_DELIVERED)][0] += n
            continue
        base = MSG_FAILED if status in FAILED else MSG_SKIPPED
        out[(*dims, base)][0] += n
        out[(*dims, f"{base}.{reason_code(reason)}")][0] += n
    for column, metric in ((m.opened_at, OPENED), (m.clicked_at, CLICKED)):
        put(
            conn.execute(
                msg_only(
                    sa.select(*msg_dims, sa.func.count(), zero)
                    .where(column.is_not(None))
                    .group_by(*msg_dims)
                )
            ),
            metric,
        )
    # unsubscribes through a message's links: distinct messages
    c = CONSENT_CHANGE.c
    revoked = (
        sa.select(_after_colon(conn, c.source).label("mid"), c.channel)
        .where(
            c.status == "revoked",
            sa.or_(*(c.source.startswith(s) for s in UNSUBSCRIBE_SOURCES)),
        )
        .distinct()
        .subquery()
    )
    unsubscribed = (
        sa.select(m.id)
        .select_from(MESSAGE.join(revoked, revoked.c.mid == m.id))
        .where(sa.or_(revoked.c.channel == m.channel, revoked.c.channel == ALL_MARKETING))
        .distinct()
        .subquery()
    )
    put(
        conn.execute(
            msg_only(
                sa.select(*msg_dims, sa.func.count(), zero)
                .where(m.id.in_(sa.select(unsubscribed.c.id)))
                .group_by(*msg_dims)
            )
        ),
        UNSUBSCRIBED,
    )
    # conversions
    v = CONVERSION.c
    for r in conn.execute(
        only(
            CONVERSION,
            sa.select(
                v.journey_key,
                v.version,
                v.step_id,
                v.day,
                v.channel,
                v.template,
                v.kind,
                sa.func.count(),
                sa.func.sum(v.revenue_units),
            ).group_by(v.journey_key, v.version, v.step_id, v.day, v.channel, v.template, v.kind),
        )
    ):
        key = (*(_plain(d) for d in r[:6]), CONVERTED + r[6])
        out[key][0] += int(r[7])
        out[key][1] += int(r[8] or 0)
    return {k: (n, rev) for k, (n, rev) in out.items() if n or rev}


def current(
    conn: Connection | Session, *, journey_key: str | None = None
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """What the counters say, in `recount`'s shape (zeros left out)."""
    return {
        (*c.key, c.metric): (c.n, c.revenue_units)
        for c in counts(conn, group_by=DIMENSIONS, journey_key=journey_key)
        if c.n or c.revenue_units
    }


def rebuild(engine: Engine) -> int:
    """Replace every counter by a recount from the raw rows (after an upgrade that brings
    analytics to existing data; run it while nothing else writes). Returns the rows written."""
    with engine.begin() as conn:
        figures = recount(conn)
        conn.execute(DELTA.delete())
        conn.execute(ROLLUP.delete())
        rows = [
            {
                **dict(zip(DIMENSIONS, key[:6], strict=True)),
                "metric": key[6],
                "n": n,
                "revenue_units": rev,
            }
            for key, (n, rev) in figures.items()
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(ROLLUP.insert(), rows[start : start + 5000])
    return len(rows)
