"""audiences: audience, audience_membership, audience_recheck; customer value on profile

Revision ID: 0009_audiences
Revises: 0001_foundation (depends on 0002_events, which creates profile)
Create Date: 2026-12-01

Audiences are their own branch. The customer value columns (order count, revenue net of
refunds, currency, first and last order time) belong to the profile and start at zero for
existing profiles; `rejse import` of past orders fills them.
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0009_audiences"
down_revision = "0001_foundation"
branch_labels = ("audiences",)
depends_on = "0002_events"  # the profile table

UTC = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "audience",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("canvas", sa.JSON(), nullable=False),
        sa.Column("trigger_existing", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("computed_at", UTC, nullable=True),
    )
    op.create_table(
        "audience_membership",
        sa.Column("audience_key", sa.String(64), primary_key=True),
        sa.Column("profile_id", sa.String(32), primary_key=True),
        sa.Column("entered_at", UTC, nullable=False),
    )
    op.create_index("ix_audience_membership_profile", "audience_membership", ["profile_id"])
    op.create_table(
        "audience_recheck",
        sa.Column("audience_key", sa.String(64), primary_key=True),
        sa.Column("profile_id", sa.String(32), primary_key=True),
        sa.Column("due_at", UTC, nullable=False),
    )
    op.create_index("ix_audience_recheck_due", "audience_recheck", ["due_at"])
    op.create_index("ix_audience_recheck_profile", "audience_recheck", ["profile_id"])
    with op.batch_alter_table("profile") as batch:
        batch.add_column(sa.Column("order_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("revenue", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("first_order_at", UTC, nullable=True))
        batch.add_column(sa.Column("last_order_at", UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile") as batch:
        for column in ("last_order_at", "first_order_at", "currency", "revenue", "order_count"):
            batch.drop_column(column)
    op.drop_table("audience_recheck")
    op.drop_table("audience_membership")
    op.drop_table("audience")
