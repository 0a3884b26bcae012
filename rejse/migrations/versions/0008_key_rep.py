"""keys: api_key.rep_id, the sales rep a sales key is bound to

Revision ID: 0008_key_rep
Revises: 0001_foundation
Create Date: 2026-12-01

A sales key bound to a rep sees and changes only that rep's leads; existing keys stay unbound
(they see every rep's, as before). A plain column, no foreign key: reps belong to the leads
branch, which migrates on its own.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_key_rep"
down_revision = "0001_foundation"
branch_labels = ("keys",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("rep_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("rep_id")
