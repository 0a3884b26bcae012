"""console: console_session, browser sessions of the web console

Revision ID: 0015_console
Revises: 0001_foundation
Create Date: 2026-12-02

One table of its own; the signed-in key is a plain id (no foreign key into the foundation).
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0015_console"
down_revision = "0001_foundation"
branch_labels = ("console",)
depends_on = None

UTC = rejse.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
    )
    op.create_index("ix_console_session_key", "console_session", ["key_id"])


def downgrade() -> None:
    op.drop_table("console_session")
