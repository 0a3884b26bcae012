"""analytics: attribution settings and KPI targets, conversions, counters; BI views

Revision ID: 0012_analytics
Revises: 0001_foundation
Create Date: 2026-12-08

Analytics is its own branch. `analytics_pending` holds conversion events the processor noted
until they are credited; `analytics_delta` rows are appended as runs, messages and
conversions change and folded into `analytics_rollup` (rejse.analytics.rollups). On PostgreSQL
the read-only views for BI tools (docs/analytics.md, "SQL views for BI") are created too; they
read only these tables. Runs and messages written before this migration are not counted until
`rejse.analytics.rollups.rebuild` recounts them.
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0012_analytics"
down_revision = "0001_foundation"
branch_labels = ("analytics",)
depends_on = None

UTC = rejse.db.UTCDateTime
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Each view reads folded and unfolded counters alike, so it is exact at any moment.
COUNTS_VIEW = """
CREATE VIEW analytics_counts_v AS
SELECT journey_key, version, step_id, day, channel, template, metric,
       sum(n)::bigint AS n, sum(revenue_units) / 10000.0 AS revenue
FROM (
  SELECT journey_key, version, step_id, day, channel, template, metric, n, revenue_units
  FROM analytics_rollup
  UNION ALL
  SELECT journey_key, version, step_id, day, channel, template, metric, n, revenue_units
  FROM analytics_delta
) AS c
GROUP BY journey_key, version, step_id, day, channel, template, metric
"""

_COUNT = "coalesce(sum(n) FILTER (WHERE metric = '{}'), 0)::bigint"
KPIS_VIEW = f"""
CREATE VIEW analytics_kpis_v AS
SELECT journey_key, version, step_id, day, channel, template,
       {_COUNT.format("entered")} AS entered,
       {_COUNT.format("step_entered")} AS reached,
       {_COUNT.format("delivered")} + {_COUNT.format("failed")} AS sent,
       {_COUNT.format("delivered")} AS delivered,
       {_COUNT.format("failed")} AS failed,
       {_COUNT.format("skipped")} AS skipped,
       {_COUNT.format("opened")} AS opened,
       {_COUNT.format("clicked")} AS clicked,
       {_COUNT.format("unsubscribed")} AS unsubscribed,
       coalesce(sum(n) FILTER (WHERE metric LIKE 'converted.%'), 0)::bigint AS converted,
       coalesce(sum(revenue) FILTER (WHERE metric LIKE 'converted.%'), 0) AS revenue
FROM analytics_counts_v
GROUP BY journey_key, version, step_id, day, channel, template
"""  # noqa: S608 - constants only

JOURNEYS_VIEW = """
CREATE VIEW analytics_journeys_v AS
SELECT journey_key, entered, sent, delivered, failed, skipped, opened, clicked, unsubscribed,
       converted, revenue,
       delivered::numeric / nullif(sent, 0) AS delivery_rate,
       opened::numeric / nullif(delivered, 0) AS open_rate,
       clicked::numeric / nullif(delivered, 0) AS click_rate,
       clicked::numeric / nullif(opened, 0) AS click_to_open_rate,
       unsubscribed::numeric / nullif(delivered, 0) AS unsubscribe_rate,
       converted::numeric / nullif(delivered, 0) AS conversion_rate,
       converted::numeric / nullif(entered, 0) AS run_conversion_rate,
       revenue / nullif(delivered, 0) AS revenue_per_recipient
FROM (
  SELECT journey_key, sum(entered) AS entered, sum(sent) AS sent, sum(delivered) AS delivered,
         sum(failed) AS failed, sum(skipped) AS skipped, sum(opened) AS opened,
         sum(clicked) AS clicked, sum(unsubscribed) AS unsubscribed,
         sum(converted) AS converted, sum(revenue) AS revenue
  FROM analytics_kpis_v WHERE journey_key <> '' GROUP BY journey_key
) AS t
"""

REASONS_VIEW = """
CREATE VIEW analytics_reasons_v AS
SELECT journey_key, version, step_id, day, channel, template,
       split_part(metric, '.', 1) AS status, split_part(metric, '.', 2) AS reason, n
FROM analytics_counts_v
WHERE metric LIKE 'skipped.%' OR metric LIKE 'failed.%'
"""

CONVERSIONS_VIEW = """
CREATE VIEW analytics_conversions_v AS
SELECT id, event_id, kind, journey_key, version, step_id, channel, template, day, run_id,
       message_id, touch, touch_at, revenue_units / 10000.0 AS revenue, currency, at
FROM analytics_conversion
"""

VIEWS = (
    "analytics_counts_v",
    "analytics_kpis_v",
    "analytics_journeys_v",
    "analytics_reasons_v",
    "analytics_conversions_v",
)


def upgrade() -> None:
    op.create_table(
        "analytics_journey",
        sa.Column("journey_key", sa.String(64), primary_key=True),
        sa.Column("conversion_event", sa.String(200), nullable=False),
        sa.Column("attribution_window", sa.String(40), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    )
    op.create_table(
        "analytics_conversion",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("event_id", sa.String(40), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("journey_key", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("message_id", sa.String(40), nullable=True),
        sa.Column("touch", sa.String(10), nullable=True),
        sa.Column("touch_at", UTC, nullable=True),
        sa.Column("revenue_units", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index(
        "ix_analytics_conversion_journey_day", "analytics_conversion", ["journey_key", "day"]
    )
    op.create_table(
        "analytics_pending",
        sa.Column("event_id", sa.String(40), primary_key=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("revenue_units", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
    )
    op.create_index("ix_analytics_pending_at", "analytics_pending", ["at"])
    op.create_table(
        "analytics_delta",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("journey_key", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("revenue_units", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_analytics_delta_journey", "analytics_delta", ["journey_key", "day"])
    op.create_table(
        "analytics_rollup",
        sa.Column("journey_key", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("template", sa.String(200), primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("revenue_units", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for view in (COUNTS_VIEW, KPIS_VIEW, JOURNEYS_VIEW, REASONS_VIEW, CONVERSIONS_VIEW):
            op.execute(view)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for view in reversed(VIEWS):
            op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_table("analytics_rollup")
    op.drop_table("analytics_delta")
    op.drop_table("analytics_pending")
    op.drop_table("analytics_conversion")
    op.drop_table("analytics_journey")
