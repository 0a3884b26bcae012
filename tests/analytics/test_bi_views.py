"""The read-only SQL views for BI tools over the funnel, the sales figures and the A/B arms
(migration 0016_bi_views, PostgreSQL): created by the migrations, readable by a role that has
SELECT on the views and nothing else, inside a read-only transaction, and carrying the same
numbers as the API's figures, folded or not."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from rejse import analytics_deltas as deltas
from rejse import funnel_changes
from rejse.analytics import funnel
from rejse.analytics import sales_figures as sales
from rejse.analytics.views import BI_VIEWS as VIEWS
from rejse.db import utcnow
from rejse.models.journeys import JourneyRun
from rejse.models.leads import Lead, SalesRep


def _seed(engine) -> None:
    now = utcnow()
    with Session(engine) as s:
        for n, path in enumerate(([None, "subscriber", "lead"], [None, "subscriber"])):
            for k in range(1, len(path)):
                funnel_changes.record_change(
                    s,
                    profile_id=f"prf_{n}",
                    from_stage=path[k - 1],
                    to_stage=path[k],
                    at=now - dt.timedelta(days=3 - k),
                    reason="score",
                )
        s.commit()
        funnel.fold(s, limit=2)  # some folded, the rest not: the views read both
        s.commit()
        s.add(SalesRep(id="rep_1", name="Rep One", email="one@example.com"))
        for n, status in enumerate(("assigned", "won", "lost", "expired")):
            s.add(
                Lead(
                    id=f"lead_{n}",
                    profile_id=f"prf_{n}",
                    trigger_key=f"t{n}",
                    workflow_id=f"handoff:{n}",
                    source="score",
                    reason="aql",
                    status=status,
                    rep_id="rep_1",
                    first_contact_at=now if status in ("won", "lost") else None,
                    outcome=status if status in ("won", "lost") else None,
                    created_at=now - dt.timedelta(days=n),
                )
            )
        run = JourneyRun(
            id="run_1",
            workflow_id="journey:ab:run_1",
            journey_key="ab",
            version=1,
            profile_id="prf_9",
            trigger_event_id="manual:1",
            entered_at=now,
        )
        deltas.arm_entered(s, run, "subject", "short")
        deltas.arm_converted(s, run, {"subject": "short"}, revenue_units=125_000)
        s.commit()


def test_the_views_read_under_a_read_only_role(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the BI views are PostgreSQL's")
    _seed(engine)
    with Session(engine) as s:
        stages = funnel.funnel(s)
        reps = sales.per_rep(s)
    role = f"bi_test_{uuid.uuid4().hex[:12]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
        admin.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
        admin.execute(sa.text(f"GRANT SELECT ON {', '.join(VIEWS)} TO {role}"))
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
            for view in VIEWS:
                conn.execute(sa.text(f"SELECT * FROM {view}")).all()  # noqa: S608 - constants
            by_stage = {
                r.stage: r.profiles
                for r in conn.execute(sa.text("SELECT stage, profiles FROM funnel_stages_v"))
                if r.profiles
            }
            assert (
                by_stage
                == {row.stage: row.profiles for row in stages.stages if row.profiles}
                == {"subscriber": 1, "lead": 1}
            )
            rep = conn.execute(
                sa.text("SELECT leads, won, lost, expired, uncalled FROM sales_reps_v")
            ).one()
            [api] = [r for r in reps.reps if r.rep_id == "rep_1"]
            assert tuple(rep) == (api.leads, api.won, api.lost, api.expired, api.uncalled)
            arms = conn.execute(
                sa.text("SELECT arm, entered, converted, revenue FROM analytics_arms_v")
            ).one()
            assert (arms.arm, arms.entered, arms.converted, float(arms.revenue)) == (
                "short",
                1,
                1,
                12.5,
            )
        with engine.connect() as conn, conn.begin():  # the tables themselves stay closed
            conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text("SELECT * FROM lead"))
    finally:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.execute(sa.text(f"DROP OWNED BY {role}"))
            admin.execute(sa.text(f"DROP ROLE {role}"))
