"""leads: scoring models, profile scores, score counters and grants, sales reps, leads

Revision ID: 0005_leads
Revises: 0001_foundation
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0005_leads"
down_revision = "0001_foundation"
branch_labels = ("leads",)
depends_on = None

T = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "scoring_model",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("activated_at", T(), nullable=True),
    )
    op.create_table(
        "profile_score",
        sa.Column("profile_id", sa.String(64), primary_key=True),
        sa.Column("behaviour", sa.Float(), nullable=False),
        sa.Column("fit", sa.Float(), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("fit_breakdown", sa.JSON(), nullable=False),
        sa.Column("decayed_at", T(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("recent", sa.JSON(), nullable=False),
        sa.Column("suppressed_until", T(), nullable=True),
        sa.Column("updated_at", T(), nullable=False),
    )
    op.create_table(
        "score_counter",
        sa.Column("profile_id", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(80), primary_key=True),
        sa.Column("period_start", T(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
    )
    op.create_table(
        "score_grant",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("at", T(), nullable=False),
    )
    op.create_index("ix_score_grant_profile_id", "score_grant", ["profile_id"])
    op.create_table(
        "sales_rep",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("territories", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("manager_id", sa.String(32), nullable=True),
        sa.Column("webhook_url", sa.String(1000), nullable=True),
        sa.Column("crm_owner_id", sa.String(100), nullable=True),
        sa.Column("locale", sa.String(10), nullable=False, server_default="en"),
        sa.Column("last_assigned_at", T(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
    )
    op.create_table(
        "lead",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("trigger_key", sa.String(200), nullable=False, unique=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rep_id", sa.String(32), nullable=True),
        sa.Column("assigned_at", T(), nullable=True),
        sa.Column("due_at", T(), nullable=True),
        sa.Column("reminded_at", T(), nullable=True),
        sa.Column("reassignments", sa.Integer(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("notifications", sa.JSON(), nullable=False),
        sa.Column("crm_enabled", sa.Boolean(), nullable=False),
        sa.Column("crm_status", sa.String(20), nullable=False),
        sa.Column("crm_error", sa.String(1000), nullable=True),
        sa.Column("crm_ref", sa.String(200), nullable=True),
        sa.Column("crm_task_id", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("outcome_at", T(), nullable=True),
        sa.Column("first_contact_at", T(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
    )
    op.create_index("ix_lead_profile_id", "lead", ["profile_id"])
    op.create_index("ix_lead_rep_status", "lead", ["rep_id", "status"])


def downgrade() -> None:
    for table in (
        "lead",
        "sales_rep",
        "score_grant",
        "score_counter",
        "profile_score",
        "scoring_model",
    ):
        op.drop_table(table)
