"""events and profiles: events, outbox, dead letters, webhook sources, profiles, identifiers,
consents, merges, erasures

Revision ID: 0002_events
Revises: 0001_foundation
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import rejse.db

revision = "0002_events"
down_revision = "0001_foundation"
branch_labels = ("events",)
depends_on = None

UTC = rejse.db.UTCDateTime
BUCKETS = 64  # rejse.models.events.OUTBOX_BUCKETS at the time of writing


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("message_id", sa.String(300), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("event", sa.String(200), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("anonymous_id", sa.String(255), nullable=True),
        sa.Column("previous_id", sa.String(255), nullable=True),
        sa.Column("profile_id", sa.String(32), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("timestamp", UTC(), nullable=False),
        sa.Column("received_at", UTC(), nullable=False),
        sa.Column("processed_at", UTC(), nullable=True),
        sa.Column("source", sa.String(60), nullable=False),
    )
    op.create_index("ix_event_profile_ts", "event", ["profile_id", "timestamp"])
    op.create_table(
        "event_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("available_at", UTC(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("processed", sa.JSON(), nullable=True),
    )
    op.create_index("ix_outbox_bucket_id", "event_outbox", ["bucket", "id"])
    bucket = op.create_table(
        "event_outbox_bucket",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.bulk_insert(bucket, [{"bucket": b} for b in range(BUCKETS)])
    op.create_table(
        "event_dead_letter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("error", sa.String(1000), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("retried_at", UTC(), nullable=True),
        sa.Column("processed", sa.JSON(), nullable=True),
    )
    op.create_index("ix_event_dead_letter_event_id", "event_dead_letter", ["event_id"])
    op.create_table(
        "webhook_source",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("disabled_at", UTC(), nullable=True),
        sa.UniqueConstraint("kind", "name", name="uq_webhook_source_kind_name"),
    )

    op.create_table(
        "profile",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("lifecycle_stage", sa.String(32), nullable=True),
        sa.Column("lead_score", sa.Float(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTC(), nullable=True),
        sa.Column("last_seen_at", UTC(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.Column("erased_at", UTC(), nullable=True),
    )
    op.create_table(
        "profile_identifier",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.UniqueConstraint("type", "value", name="uq_identifier_type_value"),
    )
    op.create_index("ix_profile_identifier_profile_id", "profile_identifier", ["profile_id"])
    op.create_table(
        "consent",
        sa.Column("profile_id", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("at", UTC(), nullable=False),
    )
    op.create_table(
        "consent_change",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("at", UTC(), nullable=False),
    )
    op.create_index("ix_consent_change_profile", "consent_change", ["profile_id", "at"])
    op.create_table(
        "profile_merge",
        sa.Column("from_profile_id", sa.String(32), primary_key=True),
        sa.Column("into_profile_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", UTC(), nullable=False),
    )
    op.create_index("ix_profile_merge_into_profile_id", "profile_merge", ["into_profile_id"])
    op.create_table(
        "erased_identifier",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("erased_at", UTC(), nullable=False),
    )
    op.create_table(
        "profile_erasure",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("profile_id", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_index("ix_profile_erasure_profile_id", "profile_erasure", ["profile_id"])


def downgrade() -> None:
    for table in (
        "profile_erasure",
        "erased_identifier",
        "profile_merge",
        "consent_change",
        "consent",
        "profile_identifier",
        "profile",
        "webhook_source",
        "event_dead_letter",
        "event_outbox_bucket",
        "event_outbox",
        "event",
    ):
        op.drop_table(table)
