"""BI views over the lead funnel, the sales figures and the A/B arms (PostgreSQL only)

Revision ID: 0016_bi_views
Revises: 0013_funnel (depends on 0012_analytics and 0005_leads)
Create Date: 2026-12-02

Read-only views for BI tools beside 0012's (docs/analytics.md, "SQL views for BI"): each reads
the rollups and the rows not yet folded alike, so it is exact whenever it is queried, and none
carries a profile id, a name or an address.
"""

from alembic import op

revision = "0016_bi_views"
down_revision = "0013_funnel"
branch_labels = None
depends_on = ("0012_analytics", "0005_leads")

# stage_daily plus the changes no fold has counted yet ('' = outside the funnel)
FUNNEL_DAILY_VIEW = """
CREATE VIEW funnel_daily_v AS
SELECT day, from_stage, to_stage, sum(changes)::bigint AS changes
FROM (
  SELECT day, from_stage, to_stage, changes FROM stage_daily
  UNION ALL
  SELECT CAST(timezone('UTC', at) AS date), coalesce(from_stage, ''), coalesce(to_stage, ''), 1
  FROM stage_change WHERE NOT folded
) AS c
GROUP BY day, from_stage, to_stage
"""

FUNNEL_STAGES_VIEW = """
CREATE VIEW funnel_stages_v AS
SELECT stage, sum(n)::bigint AS profiles
FROM (
  SELECT to_stage AS stage, changes AS n FROM funnel_daily_v WHERE to_stage <> ''
  UNION ALL
  SELECT from_stage, -changes FROM funnel_daily_v WHERE from_stage <> ''
) AS s
GROUP BY stage
"""

SALES_LEADS_VIEW = """
CREATE VIEW sales_leads_v AS
SELECT id, rep_id, source, score, status, outcome, created_at, assigned_at, due_at,
       first_contact_at, outcome_at, reassignments,
       first_contact_at IS NULL AND status IN ('open', 'assigned', 'expired') AS uncalled
FROM lead
"""

SALES_REPS_VIEW = """
CREATE VIEW sales_reps_v AS
SELECT l.rep_id, r.name AS rep_name, count(*) AS leads,
       count(*) FILTER (WHERE l.status IN ('open', 'assigned', 'contacted', 'meeting')) AS open,
       count(*) FILTER (WHERE l.uncalled) AS uncalled,
       count(*) FILTER (WHERE l.first_contact_at IS NOT NULL) AS contacted,
       count(*) FILTER (WHERE l.status = 'meeting') AS meeting,
       count(*) FILTER (WHERE l.status = 'won') AS won,
       count(*) FILTER (WHERE l.status = 'lost') AS lost,
       count(*) FILTER (WHERE l.status = 'not_relevant') AS not_relevant,
       count(*) FILTER (WHERE l.status = 'expired') AS expired
FROM sales_leads_v l LEFT JOIN sales_rep r ON r.id = l.rep_id
GROUP BY l.rep_id, r.name
"""

ARMS_VIEW = """
CREATE VIEW analytics_arms_v AS
SELECT journey_key, version, step_id, day, split_part(metric, ':', 2) AS arm,
       coalesce(sum(n) FILTER (WHERE metric LIKE 'arm.entered:%'), 0)::bigint AS entered,
       coalesce(sum(n) FILTER (WHERE metric LIKE 'arm.converted:%'), 0)::bigint AS converted,
       coalesce(sum(revenue) FILTER (WHERE metric LIKE 'arm.converted:%'), 0) AS revenue
FROM analytics_counts_v
WHERE metric LIKE 'arm.%'
GROUP BY journey_key, version, step_id, day, split_part(metric, ':', 2)
"""

VIEWS = (
    ("funnel_daily_v", FUNNEL_DAILY_VIEW),
    ("funnel_stages_v", FUNNEL_STAGES_VIEW),
    ("sales_leads_v", SALES_LEADS_VIEW),
    ("sales_reps_v", SALES_REPS_VIEW),
    ("analytics_arms_v", ARMS_VIEW),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for _, view in VIEWS:
            op.execute(view)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _ in reversed(VIEWS):
            op.execute(f"DROP VIEW IF EXISTS {name}")
