"""maturity: maturity_assessment, the stored data-maturity assessments

Revision ID: 0014_maturity
Revises: 0001_foundation
Create Date: 2026-12-02

The maturity assessment is its own branch: one table, no columns on other domains' tables.
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0014_maturity"
down_revision = "0001_foundation"
branch_labels = ("maturity",)
depends_on = None

UTC = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "maturity_assessment",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("company", sa.String(200), nullable=True),
        sa.Column("goal", sa.String(2000), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("motivation", sa.Float(), nullable=False),
        sa.Column("customer_data", sa.Float(), nullable=False),
        sa.Column("competence", sa.Float(), nullable=True),
        sa.Column("success", sa.Float(), nullable=True),
        sa.Column("start_position", sa.String(16), nullable=False),
        sa.Column("progress_scenario", sa.String(16), nullable=True),
    )
    op.create_index("ix_maturity_assessment_created", "maturity_assessment", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("maturity_assessment")
