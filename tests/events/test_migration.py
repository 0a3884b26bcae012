"""Migration 0002_events creates exactly what the events/profiles models declare."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

MY_TABLES = {
    "event",
    "event_outbox",
    "event_outbox_bucket",
    "event_dead_letter",
    "webhook_source",
    "profile",
    "profile_identifier",
    "consent",
    "consent_change",
    "profile_merge",
    "erased_identifier",
    "profile_erasure",
}


def _tables(diff) -> set[str]:
    """Names of our tables touched by an alembic diff (entries are tuples or lists of them)."""
    names = set()
    for item in diff:
        for part in item if isinstance(item, list) else [item]:
            for obj in part[1:]:
                if isinstance(obj, str):
                    name = obj
                elif isinstance(obj, sa.Table):
                    name = obj.name
                else:
                    table = getattr(obj, "table", None)
                    name = table.name if isinstance(table, sa.Table) else None
                if name in MY_TABLES:
                    names.add(name)
    return names


def test_migration_matches_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert not _tables(diff), [d for d in diff if _tables([d])]


def test_0007_gives_existing_profiles_no_groups_and_events_no_group_id(engine):
    """0007_profile_groups on the events branch: rows written before it read as no groups."""
    from alembic import command

    from rejse.migrate import alembic_config, upgrade

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002_events")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO profile (id, traits, lead_score, event_count, created_at, updated_at)"
                " VALUES ('prf_old', '{}', 0, 0, :at, :at)"
            ),
            {"at": "2026-11-20 09:00:00.000000"},
        )
    upgrade(engine)
    with engine.connect() as conn:
        groups = conn.execute(sa.text("SELECT groups FROM profile WHERE id = 'prf_old'")).scalar()
        heads = {r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    assert groups in ({}, "{}")
    applied = _applied(cfg, heads)
    assert "0007_profile_groups" in applied
    assert "0002_events" not in heads


def _applied(cfg, heads: set[str]) -> set[str]:
    """Every revision at or below the database's heads (later migrations move the heads on)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    return {rev.revision for rev in script.iterate_revisions(tuple(heads), "base")}
