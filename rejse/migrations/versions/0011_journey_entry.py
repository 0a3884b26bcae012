"""journeys: journey_entry, entries of many profiles at once (schedule fires, audience entries)

Revision ID: 0011_journey_entry
Revises: 0006_journey_run_entry_no
Create Date: 2026-12-01

A schedule fire or a manual entry of an audience enters its profiles page by page at a
configured rate; this row holds where it is (cursor), how far it got (entered, skipped of
total) and which driver works on it (lease), so it resumes after a restart and shows progress.
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0011_journey_entry"
down_revision = "0006_journey_run_entry_no"
branch_labels = None
depends_on = None

UTC = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "journey_entry",
        sa.Column("journey_key", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("audience", sa.String(64), nullable=True),
        sa.Column("fired_at", UTC(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        sa.Column("lease_until", UTC(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=True),
    )
    op.create_index("ix_journey_entry_status", "journey_entry", ["status"])


def downgrade() -> None:
    op.drop_index("ix_journey_entry_status", table_name="journey_entry")
    op.drop_table("journey_entry")
