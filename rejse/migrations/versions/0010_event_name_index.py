"""events: index event (event, timestamp, profile_id)

Revision ID: 0010_event_name_index
Revises: 0007_profile_groups
Create Date: 2026-12-01

Audience conditions ask "who did X within P90D" over all profiles: with this index the
database reads the window of one event name and the profile ids from the index alone, instead
of probing every profile's events (ix_event_profile_ts serves the one-profile questions).
"""

from alembic import op

revision = "0010_event_name_index"
down_revision = "0007_profile_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_name_ts_profile", "event", ["event", "timestamp", "profile_id"])


def downgrade() -> None:
    op.drop_index("ix_event_name_ts_profile", table_name="event")
