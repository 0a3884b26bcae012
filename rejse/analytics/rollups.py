"""The counters campaign KPIs are read from, kept as runs, messages and conversions change
(docs/analytics.md, "How the figures are kept").

Each counter is keyed by journey, version, step, day, channel and template, and a metric name.
The places that change a run or a message call the hooks of `rejse.analytics_deltas` (a module
below the journeys and messaging code) in their own transaction; each hook appends
`analytics_delta` rows (inserts only: no counter row that concurrent transactions would queue
on). `fold` moves the deltas into `analytics_rollup` (every few seconds, a
scheduler job); `counts` reads both in one statement, so a figure is exact whenever it is read,
folded or not. `recount` computes the same counters from the raw rows (tests, the benchmark,
and `rebuild` for data written before analytics existed).

Days are UTC days of the cohort: a message's figures (delivered, opened, clicked, unsubscribed
and the conversions credited to it) count on the day the message was created; a run's (entered,
steps, ends, and a goal reached before any message) on the day the run entered. So a period's
rates are the rates of what was sent (or entered) in it, and never exceed 100 %."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from rejse.analytics_deltas import (
    ALL_MARKETING,
    ARM_CONVERTED,
    ARM_ENTERED,
    ARM_REVENUE_SQ,
    CLICKED,
    CONVERTED,
    DELIVERED,
    DIMENSIONS,
    ENDED,
    ENTERED,
    FAILED,
    MSG_DELIVERED,
    MSG_FAILED,
    MSG_SKIPPED,
    OPENED,
    STEP_ENTERED,
    STEP_LEFT,
    UNSUBSCRIBE_SOURCES,
    UNSUBSCRIBED,
    reason_code,
)
from rejse.journeys.definition import JourneyDefinition, SplitStep
from rejse.models.analytics import (
    REVENUE_SCALE,
    AnalyticsConversion,
    AnalyticsDelta,
    AnalyticsRollup,
)
from rejse.models.journeys import ACTIVE_RUN_STATUSES, JourneyRun, JourneyStep, JourneyVersion
from rejse.models.messaging import Message
from rejse.models.profiles import ConsentChangeRecord

DELTA = AnalyticsDelta.__table__  # type: ignore[attr-defined]
ROLLUP = AnalyticsRollup.__table__  # type: ignore[attr-defined]
CONVERSION = AnalyticsConversion.__table__  # type: ignore[attr-defined]
RUN = JourneyRun.__table__  # type: ignore[attr-defined]
STEP = JourneyStep.__table__  # type: ignore[attr-defined]
VERSION = JourneyVersion.__table__  # type: ignore[attr-defined]
MESSAGE = Message.__table__  # type: ignore[attr-defined]
CONSENT_CHANGE = ConsentChangeRecord.__table__  # type: ignore[attr-defined]

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
    # A/B arms at split steps
    for key, (n, rev) in recount_arms(conn, journey_key=journey_key).items():
        out[key][0] += n
        out[key][1] += rev
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


def split_steps(
    conn: Connection | Session, *, journey_key: str | None = None
) -> set[tuple[str, int, str]]:
    """(journey, version, step) of every split step of every stored version."""
    stmt = sa.select(VERSION.c.journey_key, VERSION.c.version, VERSION.c.definition)
    if journey_key is not None:
        stmt = stmt.where(VERSION.c.journey_key == journey_key)
    found = set()
    for key, version, definition in conn.execute(stmt):
        defn = JourneyDefinition.model_validate(definition)
        for step_id, step in defn.steps.items():
            if isinstance(step, SplitStep):
                found.add((key, version, step_id))
    return found


def recount_arms(
    conn: Connection | Session, *, journey_key: str | None = None
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """The A/B arms' counters from the raw rows, in `recount`'s shape: per split step, run day
    and arm, the distinct runs assigned it (the step log's outcome at a split step is the arm),
    those that converted (`JourneyRun.converted`), the revenue of their goal conversions and
    the sum of each run's revenue squared (`rejse.analytics_deltas.revenue_sq_units`)."""
    splits = split_steps(conn, journey_key=journey_key)
    if not splits:
        return {}
    assigned_where = [
        STEP.c.step_id.in_({s for _, _, s in splits}),
        STEP.c.outcome.is_not(None),
        STEP.c.journey_key.in_({k for k, _, _ in splits}),
    ]
    assigned = (
        sa.select(STEP.c.journey_key, STEP.c.version, STEP.c.step_id, STEP.c.outcome, STEP.c.run_id)
        .where(*assigned_where)
        .distinct()
        .subquery()
    )
    goal_where = [CONVERSION.c.kind == "goal", CONVERSION.c.run_id.is_not(None)]
    if journey_key is not None:
        goal_where.append(CONVERSION.c.journey_key == journey_key)
    revenue = (
        sa.select(
            CONVERSION.c.run_id,
            sa.cast(sa.func.sum(CONVERSION.c.revenue_units), sa.BigInteger).label("units"),
        )
        .where(*goal_where)
        .group_by(CONVERSION.c.run_id)
        .subquery()
    )
    units = sa.func.coalesce(revenue.c.units, 0)
    day = _day(conn, RUN.c.entered_at)
    stmt = (
        sa.select(
            assigned.c.journey_key,
            assigned.c.version,
            assigned.c.step_id,
            day,
            assigned.c.outcome,
            sa.func.count(),
            sa.func.sum(sa.case((RUN.c.converted.is_(True), 1), else_=0)),
            sa.func.sum(units),
            sa.func.sum(units * units / REVENUE_SCALE),
        )
        .select_from(assigned)
        .join(RUN, RUN.c.id == assigned.c.run_id)
        .outerjoin(revenue, revenue.c.run_id == assigned.c.run_id)
        .group_by(
            assigned.c.journey_key,
            assigned.c.version,
            assigned.c.step_id,
            day,
            assigned.c.outcome,
        )
    )
    out: dict[tuple[Any, ...], tuple[int, int]] = {}
    for key, version, step_id, d, arm, entered, converted, total, total_sq in conn.execute(stmt):
        if (key, version, step_id) not in splits:
            continue  # the same step id, in a version where it is not a split
        dims = (key, version, step_id, _plain(d), "", "")
        out[(*dims, ARM_ENTERED + arm)] = (int(entered), 0)
        if converted or total:
            out[(*dims, ARM_CONVERTED + arm)] = (int(converted or 0), int(total or 0))
        if total_sq:
            out[(*dims, ARM_REVENUE_SQ + arm)] = (0, int(total_sq))
    return out


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
