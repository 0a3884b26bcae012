"""messaging: API-managed templates and the message log

Revision ID: 0003_messaging
Revises: 0001_foundation
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0003_messaging"
down_revision = "0001_foundation"
branch_labels = ("messaging",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_template",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("created_at", rejse.db.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("key", "channel", "version", name="uq_message_template_version"),
    )
    op.create_index("ix_message_template_key", "message_template", ["key"])
    op.create_table(
        "message",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(300), nullable=False, unique=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("template_version", sa.Integer, nullable=True),
        sa.Column("locale", sa.String(10), nullable=True),
        sa.Column("transactional", sa.Boolean, nullable=False),
        sa.Column("journey_key", sa.String(200), nullable=True),
        sa.Column("journey_version", sa.Integer, nullable=True),
        sa.Column("step_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("to_address", sa.String(320), nullable=True),
        sa.Column("inbox_user", sa.String(200), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("provider_id", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", rejse.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("opened_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("clicked_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("read_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("retry_at", rejse.db.UTCDateTime(), nullable=True),
        sa.Column("open_count", sa.Integer, nullable=False),
        sa.Column("click_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_message_profile_id", "message", ["profile_id"])
    op.create_index("ix_message_profile_sent", "message", ["profile_id", "sent_at"])
    op.create_index("ix_message_journey_step", "message", ["journey_key", "step_id"])
    op.create_index("ix_message_inbox", "message", ["inbox_user", "channel"])


def downgrade() -> None:
    op.drop_table("message")
    op.drop_table("message_template")
