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
