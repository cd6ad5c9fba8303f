"""Initial tables: thread context, processed events, feedback, Klaviyo connections, report cache.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "thread_contexts",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("thread_ts", sa.String(128), primary_key=True),
        sa.Column("area", sa.String(1)),
        sa.Column("role", sa.String(16)),
        sa.Column("goal", sa.Text),
        sa.Column("lang", sa.String(2)),
        sa.Column("lang_pinned", sa.Boolean, nullable=False),
        sa.Column("last_entry", sa.String(64)),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_key", sa.String(160), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("message_ts", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("vote", sa.SmallInteger, nullable=False),
        sa.Column("entry", sa.String(64)),
        sa.Column("area", sa.String(1)),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "klaviyo_connections",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("encrypted_key", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("missing_scopes", sa.Text),
        sa.Column("connected_by", sa.String(32)),
        sa.Column("connected_at", TS, nullable=False),
    )
    op.create_table(
        "report_cache",
        sa.Column("cache_key", sa.String(255), primary_key=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("report_cache", "klaviyo_connections", "feedback", "processed_events", "thread_contexts"):
        op.drop_table(table)
