"""journeys: journey_run.entry_no, the run's entry number within its workflow id

Revision ID: 0006_journey_run_entry_no
Revises: 0004_journeys
Create Date: 2026-11-23

Before, the entry number was counted from the runs ordered by event time, which is ambiguous
when two entries share a timestamp (or a late event is older than the previous entry), and the
number is part of every send's idempotency key. Existing rows are numbered by that same order.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_journey_run_entry_no"
down_revision = "0004_journeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journey_run") as batch:
        batch.add_column(sa.Column("entry_no", sa.Integer(), nullable=False, server_default="1"))
    op.execute(
        "UPDATE journey_run SET entry_no = (SELECT count(*) FROM journey_run AS earlier "
        "WHERE earlier.workflow_id = journey_run.workflow_id "
        "AND (earlier.entered_at < journey_run.entered_at OR (earlier.entered_at = "
        "journey_run.entered_at AND earlier.id <= journey_run.id)))"
    )
    op.create_index(
        "ix_journey_run_workflow_entry", "journey_run", ["workflow_id", "entry_no"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_journey_run_workflow_entry", table_name="journey_run")
    with op.batch_alter_table("journey_run") as batch:
        batch.drop_column("entry_no")
