"""Tables for multi-workspace installs: slack_sdk's installation and OAuth state stores.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    SQLAlchemyInstallationStore.build_bots_table(md, "slack_bots")
    SQLAlchemyInstallationStore.build_installations_table(md, "slack_installations")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(md, "slack_oauth_states")
    return md


def upgrade() -> None:
    _metadata().create_all(op.get_bind())


def downgrade() -> None:
    _metadata().drop_all(op.get_bind())
