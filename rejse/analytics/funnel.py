"""The lead funnel: profiles per lifecycle stage now and per day, stage-to-stage conversion,
median time in stage, and AQL -> SQL -> customer.

Scoring calls `rejse.funnel_changes.record_change` in the transaction that changes a stage
(one append-only `stage_change` row: no shared row is locked, so concurrent processors never
wait on each other). `fold` (a scheduler job every minute, and safe to run twice at once)
moves unfolded rows into the per-day rollup `stage_daily`; every read takes the rollup plus the
unfolded rest in ONE statement, so its counts are exact at any moment and cost O(days x stage
pairs), not O(profiles). Medians of time in stage read the changes of the period (changes
only, never events).

Counting: a change up from rank i to rank j "reaches" every stage above i up to j (a won lead
going aql -> customer reaches sql and opportunity too), so `reached` never skips a stage and
AQL -> SQL -> customer reads as a funnel. `conversion[s]` = reached(next stage) / reached(s) over
the period (flows of the period, not a cohort)."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from rejse.analytics import charts
from rejse.db import UTCDateTime, utcnow
from rejse.errors import DomainError
from rejse.models.funnel import NO_STAGE, StageChange, StageDaily
from rejse.models.profiles import STAGES

if TYPE_CHECKING:
    from rejse.runtime import Runtime
    from rejse.scheduler import ScheduledJob

CHANGE = StageChange.__table__  # type: ignore[attr-defined]
DAILY = StageDaily.__table__  # type: ignore[attr-defined]
RANK = {s: i for i, s in enumerate(STAGES)}
FOLD_BATCH = 10_000
MAX_DAYS = 3660  # a daily series of at most ten years


def _upsert(conn: sa.Connection) -> sa.Insert:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(DAILY)
    upsert: sa.Insert = stmt.on_conflict_do_update(
        index_elements=["day", "from_stage", "to_stage"],
        set_={"changes": DAILY.c.changes + stmt.excluded.changes},
    )
    return upsert


def fold(session: Session, *, limit: int = FOLD_BATCH) -> int:
    """Count up to `limit` unfolded changes into `stage_daily` and mark them folded, in one
    transaction (the caller commits). Two folds at once count each change once: a row another
    fold marked is skipped by the WHERE of the UPDATE."""
    conn = session.connection()
    ids = sa.select(CHANGE.c.id).where(sa.not_(CHANGE.c.folded)).order_by(CHANGE.c.id).limit(limit)
    rows = conn.execute(
        CHANGE.update()
        .where(CHANGE.c.id.in_(ids.scalar_subquery()), sa.not_(CHANGE.c.folded))
        .values(folded=True)
        .returning(CHANGE.c.at, CHANGE.c.from_stage, CHANGE.c.to_stage)
    ).all()
    counts: dict[tuple[dt.date, str, str], int] = defaultdict(int)
    for at, from_stage, to_stage in rows:
        counts[(at.astimezone(dt.UTC).date(), from_stage or NO_STAGE, to_stage or NO_STAGE)] += 1
    if counts:
        # Sorted: two folds lock rollup rows in the same order (no deadlock).
        conn.execute(
            _upsert(conn),
            [
                {"day": d, "from_stage": f, "to_stage": t, "changes": n}
                for (d, f, t), n in sorted(counts.items())
            ],
        )
    return len(rows)


ANALYZE_AFTER = 50_000


def fold_all(session: Session) -> int:
    """Fold until nothing is left. After a large fold PostgreSQL's statistics still count the
    rows as unfolded (until autovacuum's next analyze), and the planner would scan the table
    instead of the partial index of unfolded rows on every read: analyze it at once."""
    total = 0
    while n := fold(session):
        session.commit()
        total += n
    if total >= ANALYZE_AFTER and session.connection().dialect.name == "postgresql":
        session.connection().exec_driver_sql("ANALYZE stage_change")
    session.commit()
    return total


FOLD_EVERY = dt.timedelta(minutes=1)


def scheduler_jobs(runtime: Runtime) -> list[ScheduledJob]:
    """Fold the new changes every minute (reads are exact without it; it keeps them cheap)."""
    from rejse.scheduler import ScheduledJob

    def run(rt: Runtime) -> None:
        with Session(rt.engine) as session:
            fold_all(session)

    async def job(rt: Runtime) -> None:
        await asyncio.to_thread(run, rt)

    return [ScheduledJob(id="funnel.fold", trigger=FOLD_EVERY, func=job, run_on_start=True)]


# --------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class Pair:
    day: dt.date
    from_stage: str | None
    to_stage: str | None
    changes: int


def pairs(session: Session, *, until: dt.date | None = None) -> list[Pair]:
    """Changes per day and (from, to): the rollup plus the unfolded changes, one statement
    (one snapshot), so a fold committing meanwhile counts nothing twice or not at all."""
    rolled = sa.select(
        DAILY.c.day,
        sa.null().cast(UTCDateTime()).label("at"),
        DAILY.c.from_stage,
        DAILY.c.to_stage,
        DAILY.c.changes,
    )
    tail = sa.select(
        sa.null().cast(sa.Date()).label("day"),
        CHANGE.c.at,
        sa.func.coalesce(CHANGE.c.from_stage, NO_STAGE),
        sa.func.coalesce(CHANGE.c.to_stage, NO_STAGE),
        sa.literal(1, sa.Integer()),
    ).where(sa.not_(CHANGE.c.folded))
    if until is not None:
        rolled = rolled.where(DAILY.c.day <= until)
        tail = tail.where(CHANGE.c.at < _start_of(until + dt.timedelta(days=1)))
    counts: dict[tuple[dt.date, str, str], int] = defaultdict(int)
    for day, at, from_stage, to_stage, n in session.connection().execute(
        sa.union_all(rolled, tail)
    ):
        if day is None:
            day = at.astimezone(dt.UTC).date()
        counts[(day, from_stage, to_stage)] += n
    return [
        Pair(day=d, from_stage=f or None, to_stage=t or None, changes=n)
        for (d, f, t), n in sorted(counts.items())
        if n
    ]


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _rank(stage: str | None) -> int:
    return -1 if stage is None else RANK.get(stage, -1)


def in_stage(changes: Iterable[Pair]) -> dict[str, int]:
    """Profiles per stage after `changes` (entries minus exits)."""
    out = dict.fromkeys(STAGES, 0)
    for p in changes:
        if p.to_stage in out:
            out[p.to_stage] += p.changes
        if p.from_stage in out:
            out[p.from_stage] -= p.changes
    return out


def reached(changes: Iterable[Pair]) -> dict[str, int]:
    """Times each stage was reached (a change up reaches every stage it passes)."""
    out = dict.fromkeys(STAGES, 0)
    for p in changes:
        low, high = _rank(p.from_stage), _rank(p.to_stage)
        for stage in STAGES[low + 1 : high + 1]:
            out[stage] += p.changes
    return out


def check_period(start: dt.date | None, end: dt.date | None, *, today: dt.date) -> dt.date:
    end = end or today
    if start is not None and end < start:
        raise DomainError("`to` is before `from`", field="to", status_code=422)
    return end


class StageRow(BaseModel):
    stage: str
    profiles: int = Field(description="profiles in the stage now (at the end of `to`)")
    entered: int = Field(description="changes into the stage during the period")
    left: int = Field(description="changes out of the stage during the period")
    reached: int = Field(description="times the stage was reached, passing counts (period)")
    conversion_to_next: float | None = Field(
        description="reached(next stage) / reached(this stage) over the period; null: none "
        "reached this stage, or the last stage"
    )
    median_days_in_stage: float | None = Field(
        description="median time in the stage of the profiles that left it during the period"
    )


class StepRow(BaseModel):
    step: str = Field(description="aql, sql or customer")
    reached: int
    rate_from_previous: float | None
    rate_from_aql: float | None


class Funnel(BaseModel):
    period_from: dt.date | None
    period_to: dt.date
    total_profiles: int = Field(description="profiles in any stage now")
    stages: list[StageRow]
    aql_sql_customer: list[StepRow]


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def median_days(
    session: Session, *, start: dt.datetime | None, end: dt.datetime
) -> dict[str, float | None]:
    """Median time in each stage, over the changes out of it in [start, end)."""
    conn = session.connection()
    where = [CHANGE.c.at < end, CHANGE.c.seconds_in_from.is_not(None)]
    if start is not None:
        where.append(CHANGE.c.at >= start)
    out: dict[str, float | None] = dict.fromkeys(STAGES, None)
    if conn.dialect.name == "postgresql":
        median = sa.func.percentile_cont(0.5).within_group(CHANGE.c.seconds_in_from)
        for stage, value in conn.execute(
            sa.select(CHANGE.c.from_stage, median).where(*where).group_by(CHANGE.c.from_stage)
        ):
            if stage in out:
                out[stage] = round(float(value) / 86400, 4)
        return out
    values: dict[str, list[float]] = defaultdict(list)
    for stage, seconds in conn.execute(
        sa.select(CHANGE.c.from_stage, CHANGE.c.seconds_in_from).where(*where)
    ):
        values[stage].append(seconds)
    for stage, seconds_list in values.items():
        if stage in out:
            out[stage] = round(statistics.median(seconds_list) / 86400, 4)
    return out


DEFAULT_PERIOD_DAYS = 90


def funnel(session: Session, *, start: dt.date | None = None, end: dt.date | None = None) -> Funnel:
    """The counts now (at the end of `end`) and the flows of the period (default: the 90 days
    up to `end`; the medians read the period's changes, so a longer period costs more)."""
    end = check_period(start, end, today=utcnow().date())
    start = start or end - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    changes = pairs(session, until=end)
    period = [p for p in changes if p.day >= start]
    now = in_stage(changes)
    got = reached(period)
    entered = dict.fromkeys(STAGES, 0)
    left = dict.fromkeys(STAGES, 0)
    for p in period:
        if p.to_stage in entered:
            entered[p.to_stage] += p.changes
        if p.from_stage in left:
            left[p.from_stage] += p.changes
    medians = median_days(
        session,
        start=_start_of(start),
        end=_start_of(end + dt.timedelta(days=1)),
    )
    rows = [
        StageRow(
            stage=s,
            profiles=now[s],
            entered=entered[s],
            left=left[s],
            reached=got[s],
            conversion_to_next=_ratio(got[STAGES[i + 1]], got[s]) if i + 1 < len(STAGES) else None,
            median_days_in_stage=medians[s],
        )
        for i, s in enumerate(STAGES)
    ]
    steps = []
    previous = None
    for step in ("aql", "sql", "customer"):
        steps.append(
            StepRow(
                step=step,
                reached=got[step],
                rate_from_previous=_ratio(got[step], got[previous]) if previous else None,
                rate_from_aql=_ratio(got[step], got["aql"]),
            )
        )
        previous = step
    return Funnel(
        period_from=start,
        period_to=end,
        total_profiles=sum(now.values()),
        stages=rows,
        aql_sql_customer=steps,
    )


class DayRow(BaseModel):
    day: dt.date
    stage: str
    profiles: int = Field(description="profiles in the stage at the end of the day")
    entered: int = Field(description="changes into the stage on the days since the previous row")


class Daily(BaseModel):
    period_from: dt.date
    period_to: dt.date
    step_days: int
    days: list[DayRow]


def daily(
    session: Session,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    step: dt.timedelta = dt.timedelta(days=1),
) -> Daily:
    """Profiles per stage at the end of every `step` days from `start` to `end` (default: the
    30 days up to today), with the entries since the previous point."""
    if step < dt.timedelta(days=1) or step % dt.timedelta(days=1):
        raise DomainError("a whole number of days, at least P1D", field="step", status_code=422)
    end = check_period(start, end, today=utcnow().date())
    start = start or end - dt.timedelta(days=29)
    if (end - start).days // step.days + 1 > MAX_DAYS:
        raise DomainError(
            f"at most {MAX_DAYS} points; choose a later `from` or a longer step",
            field="from",
            status_code=422,
        )
    changes = pairs(session, until=end)
    points = []
    day = start
    while day <= end:
        points.append(day)
        day += step
    if points[-1] != end:
        points.append(end)
    counts = dict.fromkeys(STAGES, 0)
    entries = dict.fromkeys(STAGES, 0)
    rows: list[DayRow] = []
    i = 0
    for point in points:
        while i < len(changes) and changes[i].day <= point:
            p = changes[i]
            if p.to_stage in counts:
                counts[p.to_stage] += p.changes
                if p.day >= start:
                    entries[p.to_stage] += p.changes
            if p.from_stage in counts:
                counts[p.from_stage] -= p.changes
            i += 1
        rows += [DayRow(day=point, stage=s, profiles=counts[s], entered=entries[s]) for s in STAGES]
        entries = dict.fromkeys(STAGES, 0)
    return Daily(period_from=start, period_to=end, step_days=step.days, days=rows)


def recount(session: Session) -> Mapping[str, int]:
    """Profiles per stage counted from the score states of live profiles (the raw rows; tests
    and the docs' check query)."""
    from rejse.models.leads import ProfileScore
    from rejse.models.profiles import Profile

    ps = ProfileScore.__table__  # type: ignore[attr-defined]
    pr = Profile.__table__  # type: ignore[attr-defined]
    out = dict.fromkeys(STAGES, 0)
    for stage, n in session.connection().execute(
        sa.select(ps.c.stage, sa.func.count())
        .select_from(ps.join(pr, pr.c.id == ps.c.profile_id))
        .where(pr.c.erased_at.is_(None))
        .group_by(ps.c.stage)
    ):
        out[stage] = n
    return out


# --------------------------------------------------------------------------------- charts

Lang = Literal["da", "sv", "en"]
STAGE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "subscriber": "subscriber",
        "lead": "lead",
        "aql": "AQL",
        "sql": "SQL",
        "opportunity": "opportunity",
        "customer": "customer",
    },
    "da": {
        "subscriber": "abonnent",
        "lead": "lead",
        "aql": "AQL",
        "sql": "SQL",
        "opportunity": "mulighed",
        "customer": "kunde",
    },
    "sv": {
        "subscriber": "prenumerant",
        "lead": "lead",
        "aql": "AQL",
        "sql": "SQL",
        "opportunity": "affärsmöjlighet",
        "customer": "kund",
    },
}
TITLES: dict[str, dict[str, str]] = {
    "en": {
        "funnel": "Lead funnel: profiles per lifecycle stage",
        "daily": "Profiles per lifecycle stage over time",
        "profiles": "profiles",
    },
    "da": {
        "funnel": "Leadtragt: profiler pr. livscyklusfase",
        "daily": "Profiler pr. livscyklusfase over tid",
        "profiles": "profiler",
    },
    "sv": {
        "funnel": "Leadtratt: profiler per livscykelfas",
        "daily": "Profiler per livscykelfas över tid",
        "profiles": "profiler",
    },
}


def funnel_chart(figures: Funnel, *, lang: Lang = "en") -> dict[str, Any]:
    """Bars of the profiles in each stage now, in funnel order."""
    names, titles = STAGE_NAMES[lang], TITLES[lang]
    return charts.bars(
        [{"stage": names[r.stage], "profiles": r.profiles} for r in figures.stages],
        x="stage",
        y="profiles",
        title=titles["funnel"],
        y_title=titles["profiles"],
    )


def daily_chart(figures: Daily, *, lang: Lang = "en") -> dict[str, Any]:
    """One line per stage of the profiles in it at the end of each point."""
    names, titles = STAGE_NAMES[lang], TITLES[lang]
    return charts.lines(
        [
            {"day": r.day.isoformat(), "profiles": r.profiles, "stage": names[r.stage]}
            for r in figures.days
        ],
        x="day",
        y="profiles",
        series="stage",
        title=titles["daily"],
        y_title=titles["profiles"],
    )
