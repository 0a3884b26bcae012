"""Migration 0018_lead_met backfills the kept flag from the leads' history, and the lead
models match what the migrations made."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from alembic import command

from rejse.db import make_engine
from rejse.migrate import alembic_config
from tests.journeys.test_migrations import _fresh_database

T0 = dt.datetime(2026, 11, 1, 12, 0)


def _outcome(outcome: str) -> dict[str, object]:
    return {"kind": "outcome", "at": T0.isoformat(), "outcome": outcome, "previous": None}


HISTORIES = {
    "won-after-meeting": ("won", [{"kind": "created"}, _outcome("meeting"), _outcome("won")]),
    "meeting": ("meeting", [_outcome("meeting")]),
    "contacted": ("contacted", [{"kind": "created"}, _outcome("contacted")]),
    "lost": ("lost", [_outcome("contacted"), _outcome("lost")]),
    "no-history": ("open", []),
    "not-an-outcome": ("assigned", [{"kind": "assigned", "outcome": "meeting"}]),
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_met_is_backfilled_from_the_history(backend, tmp_path):
    url, drop = _fresh_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005_leads")
        with engine.begin() as conn:
            for lead_id, (status, history) in HISTORIES.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO lead (id, profile_id, trigger_key, workflow_id, source, "
                        "reason, score, status, reassignments, history, notifications, "
                        "crm_enabled, crm_status, created_at) VALUES (:id, 'p', :id, 'w', 's', "
                        "'r', 0, :status, 0, :history, '[]', false, 'skipped', :at)"
                    ),
                    {"id": lead_id, "status": status, "history": json.dumps(history), "at": T0},
                )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        with engine.connect() as conn:
            got = {k: bool(v) for k, v in conn.execute(sa.text("SELECT id, met FROM lead"))}
        assert got == {
            "won-after-meeting": True,
            "meeting": True,
            "contacted": False,
            "lost": False,
            "no-history": False,
            "not-an-outcome": False,
        }
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005_leads")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("lead")}
        assert "met" not in columns
        assert "status" in columns
    finally:
        engine.dispose()
        drop()


LEAD_TABLES = {
    "scoring_model",
    "profile_score",
    "score_counter",
    "score_grant",
    "sales_rep",
    "lead",
}


def _tables(item) -> set[str]:
    """The tables an alembic diff entry (a tuple, or a list of them) touches."""
    names = set()
    for part in item if isinstance(item, list) else [item]:
        for obj in part[1:]:
            table = obj if isinstance(obj, sa.Table) else getattr(obj, "table", None)
            if isinstance(table, sa.Table):
                names.add(table.name)
            elif isinstance(obj, str):
                names.add(obj)
    return names


def test_the_lead_migrations_match_the_models(engine):
    """Every column and index the lead models declare (met, the uncalled list's index) is
    what the migrations made, and nothing else."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    touched = [d for d in diff if _tables(d) & LEAD_TABLES]
    assert not touched, touched


def test_the_sales_figures_read_the_partial_indexes(engine):
    """On PostgreSQL the median hours to contact reads ix_lead_contacted_rep (no sort of every
    contacted lead) and the oldest AQLs nobody called come from ix_lead_uncalled."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    queries = {
        "ix_lead_contacted_rep": "SELECT rep_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY "
        "CAST(extract(epoch FROM first_contact_at - coalesce(assigned_at, created_at)) AS "
        "float)) FROM lead WHERE first_contact_at IS NOT NULL GROUP BY rep_id",
        "ix_lead_uncalled": "SELECT id FROM lead WHERE first_contact_at IS NULL AND status IN "
        "('open', 'assigned', 'expired') ORDER BY created_at, id LIMIT 100",
    }
    with engine.connect() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        for index, sql in queries.items():
            plan = "\n".join(r[0] for r in conn.execute(sa.text("EXPLAIN " + sql)))
            assert index in plan, plan
