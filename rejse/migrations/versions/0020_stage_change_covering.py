"""funnel: the stage changes' time index covers the median's columns (PostgreSQL)

Revision ID: 0020_stage_change_covering
Revises: 0016_bi_views
Create Date: 2026-12-02

The funnel's median time in stage reads the period's changes (from_stage, seconds_in_from) by
`at`. With those columns in the index (INCLUDE, PostgreSQL only) the read is an index-only
scan instead of a heap fetch per change: measured at 1.8M changes, the 30-day median 101 ->
33 ms and the default 90-day funnel 136 -> 103 ms. SQLite keeps the plain index on `at`.
"""

from alembic import op

revision = "0020_stage_change_covering"
down_revision = "0016_bi_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_stage_change_at", table_name="stage_change")
    op.create_index(
        "ix_stage_change_at",
        "stage_change",
        ["at"],
        postgresql_include=["from_stage", "seconds_in_from"],
    )


def downgrade() -> None:
    op.drop_index("ix_stage_change_at", table_name="stage_change")
    op.create_index("ix_stage_change_at", "stage_change", ["at"])
