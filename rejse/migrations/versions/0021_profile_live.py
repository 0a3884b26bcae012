"""maturity: a partial index of the live profiles, so the prefill counts them from the index

Revision ID: 0021_profile_live
Revises: 0015_maturity_profile_data
Create Date: 2026-12-03

The maturity prefill's share denominators are the live (not erased) profiles. Counted from
the profile table that is a scan of every row with its traits: at 1,000,000 profiles on
PostgreSQL 73 ms of the prefill's ~120. A partial index on `erased_at` of the live rows (the
key is always null: the smallest entry there is) makes it an index-only count, ~21 ms once the
table is vacuumed (bench.console). An index on a column that only an erasure writes keeps the
processor's profile updates HOT. SQLite gets the same partial index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_profile_live"
down_revision = "0015_maturity_profile_data"
branch_labels = None
depends_on = "0002_events"  # the profile table

LIVE = sa.text("erased_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_profile_live", "profile", ["erased_at"], postgresql_where=LIVE, sqlite_where=LIVE
    )


def downgrade() -> None:
    op.drop_index("ix_profile_live", table_name="profile")
