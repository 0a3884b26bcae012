"""Migration 0014_maturity creates exactly what rejse.models.maturity declares, on its own
branch off the foundation, and downgrades cleanly."""

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import rejse.models.maturity  # noqa: F401  # registers the table (rejse.models imports it too)
from rejse.migrate import alembic_config, upgrade

TABLE = "maturity_assessment"
TABLES = {TABLE, "maturity_profile_data"}


def _mine(diff) -> list:
    found = []
    for item in diff:
        for part in item if isinstance(item, list) else [item]:
            for obj in part[1:]:
                table = obj if isinstance(obj, sa.Table) else getattr(obj, "table", None)
                if obj in TABLES or (isinstance(table, sa.Table) and table.name in TABLES):
                    found.append(part)
    return found


def test_migration_matches_the_model(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert not _mine(diff)


def test_own_branch_and_downgrade(engine):
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(cfg)
    revision = script.get_revision("0014_maturity")
    assert revision.down_revision == "0001_foundation"
    assert revision.branch_labels == {"maturity"}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "maturity@0001_foundation")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) >= TABLES


def test_the_prefill_counts_live_profiles_from_their_partial_index(engine):
    """0021_profile_live: the prefill's count of live profiles can read ix_profile_live (an
    index-only count on PostgreSQL, not a scan of every profile's row)."""
    from rejse.maturity.prefill import PROFILE

    live = sa.select(sa.func.count()).select_from(PROFILE).where(PROFILE.c.erased_at.is_(None))
    sql = str(live.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        plan = "\n".join(str(r) for r in conn.execute(sa.text(explain + sql)))
    assert "ix_profile_live" in plan, plan
