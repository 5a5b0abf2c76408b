"""api_keys.last_used_at and management_keys.last_used_at: when each key was last used

Revision ID: 0015
Revises: 0014

Written in batches by a background flush (auth/last_used.py), at most once a minute per
key and process, never by the request that used the key. Null: not used since the column
exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "management_keys")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("last_used_at")
