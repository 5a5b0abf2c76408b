"""api_keys.expires_at: when a project key stops working

Revision ID: 0016
Revises: 0015

Null: the key never expires (every key made before the column exists). The proxy refuses a
key from this instant on (401 `api_key_expired`); the row stays, so the access review can
list the key as `expired`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
