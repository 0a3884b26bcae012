"""funnel: stage_change (every lifecycle stage change) and stage_daily (its daily rollup)

Revision ID: 0013_funnel
Revises: 0001_foundation (depends on 0002_events and 0005_leads: profile, profile_score)
Create Date: 2026-12-08

The funnel is its own branch. Profiles that hold a stage already get one change from no stage
into their current stage, dated when their score state was last written (the history before
this migration was not kept); the fold counts them into stage_daily like any other change.
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0013_funnel"
down_revision = "0001_foundation"
branch_labels = ("funnel",)
depends_on = ("0002_events", "0005_leads")

UTC = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "stage_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("from_stage", sa.String(20), nullable=True),
        sa.Column("to_stage", sa.String(20), nullable=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("seconds_in_from", sa.Float(), nullable=True),
        sa.Column("folded", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_stage_change_profile", "stage_change", ["profile_id", "id"])
    op.create_index("ix_stage_change_at", "stage_change", ["at"])
    op.create_index(
        "ix_stage_change_unfolded",
        "stage_change",
        ["id"],
        postgresql_where=sa.text("NOT folded"),
        sqlite_where=sa.text("NOT folded"),
    )
    op.create_table(
        "stage_daily",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("from_stage", sa.String(20), primary_key=True),
        sa.Column("to_stage", sa.String(20), primary_key=True),
        sa.Column("changes", sa.Integer(), nullable=False),
    )
    op.execute(
        "INSERT INTO stage_change (profile_id, from_stage, to_stage, at, reason, folded) "
        "SELECT s.profile_id, NULL, s.stage, s.updated_at, 'existing', false "
        "FROM profile_score s JOIN profile p ON p.id = s.profile_id "
        "WHERE p.erased_at IS NULL ORDER BY s.updated_at, s.profile_id"
    )


def downgrade() -> None:
    op.drop_table("stage_daily")
    op.drop_index("ix_stage_change_unfolded", table_name="stage_change")
    op.drop_index("ix_stage_change_at", table_name="stage_change")
    op.drop_index("ix_stage_change_profile", table_name="stage_change")
    op.drop_table("stage_change")
