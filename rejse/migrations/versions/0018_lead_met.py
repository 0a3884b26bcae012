"""leads: lead.met, kept "reached a meeting at some point", and the sales figures' indexes

Revision ID: 0018_lead_met
Revises: 0005_leads
Create Date: 2026-12-02

The console's team page (`sales_figures.per_rep` and `uncalled`) measured at 120,000 leads
(bench.console, PostgreSQL):

- Meetings per rep are the leads now in `meeting` or that had a `meeting` outcome before (a
  won lead after a meeting). Read from the history JSON that was an EXISTS over every lead's
  history array, the larger part of the figures' aggregate. `met` keeps the fact (set by
  `record_outcome`, never unset), so the figure is a plain column. The upgrade sets it for the
  leads written before it: an outcome entry `meeting` in the history.
- The median hours to contact sorted every contacted lead by rep (on disk with the default
  work_mem, or an index scan of the whole table in rep order): ix_lead_contacted_rep, partial on
  the contacted leads with the median's columns (INCLUDE, PostgreSQL), is an index-only read in
  rep order, ~110 -> ~30 ms.
- The AQLs nobody called (first contact null) were a scan of every lead for the count per rep
  and again for the oldest 100: ix_lead_uncalled, partial on them, ordered by (created_at, id)
  with rep_id, status and due_at (INCLUDE, PostgreSQL), serves both, ~100 -> ~12 ms.

SQLite gets the same partial indexes without the INCLUDE columns.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_lead_met"
down_revision = "0005_leads"
branch_labels = None
depends_on = None

_BACKFILL_PG = """
UPDATE lead SET met = true
WHERE EXISTS (
  SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(lead.history) = 'array'
                                         THEN lead.history ELSE '[]'::json END) AS h
  WHERE h->>'kind' = 'outcome' AND h->>'outcome' = 'meeting'
)
"""

_BACKFILL_SQLITE = """
UPDATE lead SET met = 1
WHERE json_type(lead.history) = 'array' AND EXISTS (
  SELECT 1 FROM json_each(lead.history) AS h
  WHERE json_extract(h.value, '$.kind') = 'outcome'
    AND json_extract(h.value, '$.outcome') = 'meeting'
)
"""


def upgrade() -> None:
    op.add_column("lead", sa.Column("met", sa.Boolean(), nullable=False, server_default=sa.false()))
    pg = op.get_bind().dialect.name == "postgresql"
    op.execute(_BACKFILL_PG if pg else _BACKFILL_SQLITE)
    op.create_index(
        "ix_lead_contacted_rep",
        "lead",
        ["rep_id"],
        postgresql_where=sa.text("first_contact_at IS NOT NULL"),
        sqlite_where=sa.text("first_contact_at IS NOT NULL"),
        postgresql_include=["first_contact_at", "assigned_at", "created_at"],
    )
    op.create_index(
        "ix_lead_uncalled",
        "lead",
        ["created_at", "id"],
        postgresql_where=sa.text("first_contact_at IS NULL"),
        sqlite_where=sa.text("first_contact_at IS NULL"),
        postgresql_include=["rep_id", "status", "due_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_lead_uncalled", table_name="lead")
    op.drop_index("ix_lead_contacted_rep", table_name="lead")
    with op.batch_alter_table("lead") as batch:
        batch.drop_column("met")
