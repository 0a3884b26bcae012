"""events and profiles: profile.groups (Segment group calls) and event.group_id

Revision ID: 0007_profile_groups
Revises: 0002_events
Create Date: 2026-12-01

A `group` call links a person to a group (an account, a company) with the group's traits.
The profile keeps every group it belongs to in one JSON column (group id -> traits and when
the calls were seen), the event keeps the group id it named. Existing profiles belong to no
group (`{}`), existing events name none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_profile_groups"
down_revision = "0002_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile") as batch:
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("group_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.drop_column("group_id")
    with op.batch_alter_table("profile") as batch:
        batch.drop_column("groups")
