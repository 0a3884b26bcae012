"""Migration 0006 numbers the existing runs of each workflow id by their entry order."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from rejse.db import make_engine, normalise_url
from rejse.migrate import alembic_config
from tests.conftest import PG_URL

T0 = dt.datetime(2026, 11, 1, 12, 0)


def _fresh_database(backend: str, tmp_path) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}", lambda: None
    if not PG_URL:
        pytest.skip("PostgreSQL tests need REJSE_TEST_DATABASE_URL")
    base = sa.engine.make_url(normalise_url(PG_URL))
    name = f"rejse_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_entry_numbers_are_backfilled_in_entry_order(backend, tmp_path):
    url, drop = _fresh_database(backend, tmp_path)
    engine = make_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004_journeys")
        rows = [
            ("r-b", "wf-1", T0 + dt.timedelta(days=9)),
            ("r-a", "wf-1", T0),
            ("r-c", "wf-2", T0),
            ("r-z", "wf-1", T0),
        ]  # r-a and r-z tie on time
        with engine.begin() as conn:
            for run_id, wid, at in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO journey_run (id, workflow_id, journey_key, version, "
                        "profile_id, trigger_event_id, status, step_since, entered_at, converted) "
                        "VALUES "
                        "(:id, :wid, 'j', 1, 'p', :id, 'completed', :at, :at, false)"
                    ),
                    {"id": run_id, "wid": wid, "at": at},
                )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        with engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT id, entry_no FROM journey_run")).all())
        assert got == {"r-a": 1, "r-z": 2, "r-b": 3, "r-c": 1}
    finally:
        engine.dispose()
        drop()


JOURNEY_TABLES = {"journey", "journey_version", "journey_run", "journey_step", "journey_entry"}


def test_the_journey_migrations_match_the_models(engine):
    """Every index the journey models declare (the runs list's among them) is what the
    migrations made, and nothing else."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from tests.events.test_migration import _tables

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    touched = [d for d in diff if _tables([d]) & JOURNEY_TABLES or _named(d) & JOURNEY_TABLES]
    assert not touched, touched


def _named(item) -> set[str]:
    parts = item if isinstance(item, list) else [item]
    out = set()
    for part in parts:
        for obj in part[1:]:
            table = getattr(obj, "table", None)
            if isinstance(table, sa.Table):
                out.add(table.name)
    return out


def test_the_runs_list_reads_the_index(engine):
    """On PostgreSQL the newest runs of a journey come from ix_journey_run_journey_entered,
    not from a scan and sort of every run."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    with engine.connect() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                sa.text(
                    "EXPLAIN SELECT * FROM journey_run WHERE journey_key = 'k' "
                    "ORDER BY entered_at DESC, id LIMIT 26"
                )
            )
        )
    assert "ix_journey_run_journey_entered" in plan, plan
