"""The lead funnel: every stage change is kept in the transaction that makes it, the daily
rollup plus the unfolded changes count exactly what a recount of the raw rows finds, and the
conversions, reached counts and median times in stage are those of a known history."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from rejse.analytics import funnel
from rejse.contracts import ProcessedEvent
from rejse.errors import DomainError
from rejse.models.funnel import StageChange, StageDaily
from rejse.models.profiles import STAGES
from rejse.profiles.service import create_profile
from rejse.scoring import service as scoring
from tests.leads.conftest import activate

DAY = dt.timedelta(days=1)
T0 = dt.datetime.combine(
    dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20), dt.time(9), tzinfo=dt.UTC
)


def new_profile(session: Session, n: str = "x") -> str:
    pid = create_profile(session, traits={"first_name": n}, identifiers={"email": f"{n}@ex.dk"})
    session.commit()
    return pid


def points(session: Session, pid: str, n: float, at: dt.datetime) -> None:
    scoring.add_points(
        session, profile_id=pid, points=n, reason="test", idempotency_key=f"{pid}:{at}", at=at
    )


def story(session: Session) -> dict[str, str]:
    """Six profiles with a known history (thresholds: lead 10, aql 50)."""
    activate(session)
    p = {name: new_profile(session, n=name) for name in ("p1", "p2", "p3", "p4", "p5", "p6")}
    points(session, p["p1"], 60, T0)  # subscriber -> lead -> aql at T0
    scoring.set_stage(session, profile_id=p["p1"], stage="sql", reason="qualified", at=T0 + 2 * DAY)
    scoring.set_stage(session, profile_id=p["p1"], stage="customer", reason="won", at=T0 + 5 * DAY)
    points(session, p["p2"], 60, T0 + DAY)
    # a won lead: aql -> customer, passing sql and opportunity
    scoring.set_stage(session, profile_id=p["p2"], stage="customer", reason="won", at=T0 + 3 * DAY)
    points(session, p["p3"], 15, T0 + DAY)  # lead
    points(session, p["p4"], 60, T0)  # aql, then erased (today)
    points(session, p["p5"], 60, T0 + DAY)  # aql
    points(session, p["p6"], 15, T0 + DAY)  # lead, then merged into p5
    scoring.merge_scores(session, into=p["p5"], from_profile=p["p6"], model=None, at=T0 + 4 * DAY)
    scoring.erase_scores(session, profile_id=p["p4"])
    session.commit()
    return p


def raw_daily(session: Session, day: dt.date) -> dict[str, int]:
    """Profiles per stage at the end of `day`, from the raw change rows."""
    out = dict.fromkeys(STAGES, 0)
    end = dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC)
    for row in session.exec(select(StageChange).where(StageChange.at < end)):
        if row.to_stage:
            out[row.to_stage] += 1
        if row.from_stage:
            out[row.from_stage] -= 1
    return out


def test_counts_match_a_recount_of_the_raw_rows_before_and_after_folding(session):
    story(session)
    expected = {"subscriber": 0, "lead": 1, "aql": 1, "sql": 0, "opportunity": 0, "customer": 2}
    assert dict(funnel.recount(session)) == expected
    for limit in (0, 3, 1000):  # nothing folded, some, all: the same counts
        if limit:
            funnel.fold(session, limit=limit)
            session.commit()
        figures = funnel.funnel(session)
        assert {r.stage: r.profiles for r in figures.stages} == expected
        assert figures.total_profiles == 4
        daily = funnel.daily(session, start=T0.date(), end=dt.datetime.now(dt.UTC).date())
        by_day: dict[dt.date, dict[str, int]] = defaultdict(dict)
        for r in daily.days:
            by_day[r.day][r.stage] = r.profiles
        for day, counts in by_day.items():
            assert counts == raw_daily(session, day), day
    assert session.exec(select(StageChange).where(StageChange.folded.is_(False))).all() == []  # type: ignore[attr-defined]
    assert funnel.fold(session) == 0  # a second fold counts nothing again
    rolled = sum(r.changes for r in session.exec(select(StageDaily)))
    assert rolled == len(session.exec(select(StageChange)).all())


def test_reached_conversion_and_median_time_in_stage(session):
    story(session)
    funnel.fold(session, limit=5)  # part folded: reads add the rest
    session.commit()
    figures = funnel.funnel(session)
    rows = {r.stage: r for r in figures.stages}
    assert {s: rows[s].reached for s in STAGES} == {
        "subscriber": 6,
        "lead": 6,
        "aql": 4,
        "sql": 2,  # p1 by an explicit change, p2 passing it on the way to customer
        "opportunity": 2,
        "customer": 2,
    }
    assert rows["lead"].conversion_to_next == round(4 / 6, 4)
    assert rows["aql"].conversion_to_next == 0.5
    assert rows["customer"].conversion_to_next is None
    assert [
        (s.step, s.reached, s.rate_from_previous, s.rate_from_aql) for s in figures.aql_sql_customer
    ] == [
        ("aql", 4, None, 1.0),
        ("sql", 2, 0.5, 0.5),
        ("customer", 2, 1.0, 0.5),
    ]
    # Time in aql of those that left it: p1 2 days, p2 2 days, p4 (erased today) ~20 days.
    assert rows["aql"].median_days_in_stage == 2.0
    assert rows["sql"].median_days_in_stage == 3.0  # p1: sql at T0+2d, customer at T0+5d
    # Entered/left: p6 left the funnel by the merge, p4 by the erase.
    assert rows["lead"].left == 5  # p1, p2, p4, p5 up to aql, p6 merged away
    assert rows["aql"].left == 3
    # A period: only the changes from T0+3d on count as flows; the counts are as of its end.
    later = funnel.funnel(session, start=(T0 + 3 * DAY).date(), end=(T0 + 5 * DAY).date())
    later_rows = {r.stage: r for r in later.stages}
    assert later_rows["customer"].entered == 2
    assert later_rows["customer"].profiles == 2
    assert later_rows["aql"].profiles == 2  # p4 erased only today, p5
    assert later_rows["lead"].profiles == 1  # p3; p6 merged away at T0+4d


def test_daily_points_and_entries(session):
    story(session)
    daily = funnel.daily(session, start=T0.date(), end=(T0 + 6 * DAY).date())
    customers = [(r.day, r.profiles, r.entered) for r in daily.days if r.stage == "customer"]
    assert customers == [
        ((T0 + i * DAY).date(), n, e)
        for i, (n, e) in enumerate([(0, 0), (0, 0), (0, 0), (1, 1), (1, 0), (2, 1), (2, 0)])
    ]
    weekly = funnel.daily(session, start=T0.date(), end=(T0 + 6 * DAY).date(), step=7 * DAY)
    assert [r.day for r in weekly.days if r.stage == "aql"] == [T0.date(), (T0 + 6 * DAY).date()]
    assert [r.entered for r in weekly.days if r.stage == "customer"] == [0, 2]


def test_the_processor_path_records_each_threshold_crossed(session):
    activate(session)
    pid = new_profile(session)
    event = ProcessedEvent(
        event_id="e1",
        profile_id=pid,
        type="track",
        event="Demo Requested",  # 40 points
        timestamp=T0,
        received_at=T0,
    )
    model = scoring.compiled_active(session)
    derived = scoring.score_event(session, model=model, event=event)
    session.commit()
    assert [d[1]["to"] for d in derived] == ["lead"]
    rows = session.exec(select(StageChange).order_by(StageChange.id)).all()  # type: ignore[arg-type]
    assert [(r.from_stage, r.to_stage, r.reason) for r in rows] == [
        (None, "subscriber", "entered"),
        ("subscriber", "lead", "score_threshold"),
    ]
    assert rows[1].seconds_in_from == 0.0
    assert funnel.funnel(session).stages[1].profiles == 1


def test_bad_periods_name_the_field(session):
    with pytest.raises(DomainError) as err:
        funnel.funnel(session, start=T0.date(), end=(T0 - DAY).date())
    assert err.value.field == "to"
    with pytest.raises(DomainError) as err:
        funnel.daily(session, step=dt.timedelta(hours=12))
    assert err.value.field == "step"
    with pytest.raises(DomainError) as err:
        funnel.daily(session, start=dt.date(1990, 1, 1), end=dt.date(2026, 1, 1))
    assert err.value.field == "from"


def test_erase_keeps_the_counts_and_drops_the_link(session):
    p = story(session)
    assert session.exec(select(StageChange).where(StageChange.profile_id == p["p4"])).all() == []
    erased = session.exec(select(StageChange).where(StageChange.profile_id == "erased")).all()
    assert [(r.from_stage, r.to_stage) for r in erased][-1] == ("aql", None)


def test_migration_matches_the_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    mine = {"stage_change", "stage_daily"}
    touched = [
        d for d in diff if mine & {getattr(getattr(o, "table", o), "name", o) for o in _objects(d)}
    ]
    assert not touched, touched


def _objects(item):
    for part in item if isinstance(item, list) else [item]:
        yield from (o for o in part[1:] if isinstance(o, (str, sa.Table)) or hasattr(o, "table"))


def test_the_default_period_is_the_last_90_days_and_counts_stay_whole(session):
    activate(session)
    old = new_profile(session, "old")
    points(session, old, 15, T0 - 100 * DAY)  # a lead for 120 days
    session.commit()
    figures = funnel.funnel(session)
    assert figures.period_from == dt.datetime.now(dt.UTC).date() - 89 * DAY
    lead = {r.stage: r for r in figures.stages}["lead"]
    assert (lead.profiles, lead.entered, lead.reached) == (1, 0, 0)
    everything = funnel.funnel(session, start=(T0 - 100 * DAY).date())
    assert {r.stage: r for r in everything.stages}["lead"].entered == 1


def test_the_median_reads_the_period_from_the_index_alone(engine):
    """On PostgreSQL the median time in stage is an index-only read of the period's changes
    (ix_stage_change_at carries from_stage and seconds_in_from), not a heap fetch per change."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    with engine.connect() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        conn.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                sa.text(
                    "EXPLAIN SELECT from_stage, percentile_cont(0.5) WITHIN GROUP "
                    "(ORDER BY seconds_in_from) FROM stage_change WHERE at >= now() - "
                    "interval '30 days' AND at < now() AND seconds_in_from IS NOT NULL "
                    "GROUP BY from_stage"
                )
            )
        )
    assert "Index Only Scan using ix_stage_change_at" in plan, plan
