"""journeys: definitions, versions, runs, step log

Revision ID: 0004_journeys
Revises: 0001_foundation
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0004_journeys"
down_revision = "0001_foundation"
branch_labels = ("journeys",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("published_version", sa.Integer, nullable=True),
        sa.Column("created_at", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rejse.db.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "journey_version",
        sa.Column("journey_key", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("published_at", rejse.db.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "journey_run",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("journey_key", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("trigger_event_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_step", sa.String(64), nullable=True),
        sa.Column("step_since", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("entered_at", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("converted", sa.Boolean(), nullable=False),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.UniqueConstraint("workflow_id", "trigger_event_id", name="uq_journey_run_trigger"),
    )
    op.create_index("ix_journey_run_journey_status", "journey_run", ["journey_key", "status"])
    op.create_index("ix_journey_run_profile_status", "journey_run", ["profile_id", "status"])
    op.create_index("ix_journey_run_workflow", "journey_run", ["workflow_id"])
    op.create_table(
        "journey_step",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("journey_key", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("at", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
    )
    op.create_index("ix_journey_step_journey", "journey_step", ["journey_key", "step_id"])
    op.create_index("ix_journey_step_run", "journey_step", ["run_id"])


def downgrade() -> None:
    op.drop_table("journey_step")
    op.drop_table("journey_run")
    op.drop_table("journey_version")
    op.drop_table("journey")
