"""maturity: maturity_profile_data, the per-profile flags the prefill counts

Revision ID: 0015_maturity_profile_data
Revises: 0014_maturity
Create Date: 2026-12-02

Kept by the event processor from here on; `rejse.maturity.flags.rebuild` sets them from the
profiles and events stored before (run it once after the upgrade, with nothing else writing).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_maturity_profile_data"
down_revision = "0014_maturity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maturity_profile_data",
        sa.Column("profile_id", sa.String(64), primary_key=True),
        sa.Column("structural", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("transactional", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("activity", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("maturity_profile_data")
