"""provider_credentials.is_default: the credential `vendor/model` uses

Revision ID: 0011
Revises: 0010

A partial unique index keeps at most one live default per organization and
vendor (a deleted credential keeps its row with `deleted_at` set and is left
out). Existing organizations keep the routing they had: the oldest live
credential of each vendor, which the proxy used until now, becomes its default.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEX = "uq_provider_credentials_live_default"
# the same predicate on both dialects (a boolean column reads as a condition on SQLite too)
LIVE_DEFAULT = sa.text("is_default AND deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("provider_credentials") as batch:
        batch.add_column(sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()))
    credentials = sa.table(
        "provider_credentials",
        sa.column("id", sa.String()),
        sa.column("org_id", sa.String()),
        sa.column("vendor", sa.String()),
        sa.column("is_default", sa.Boolean()),
        sa.column("deleted_at", sa.DateTime()),
    )
    other = credentials.alias("other")
    oldest = (
        sa.select(sa.func.min(other.c.id))
        .where(
            other.c.org_id == credentials.c.org_id,
            other.c.vendor == credentials.c.vendor,
            other.c.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    op.execute(
        credentials.update()
        .where(credentials.c.deleted_at.is_(None), credentials.c.id == oldest)
        .values(is_default=sa.true())
    )
    op.create_index(
        INDEX,
        "provider_credentials",
        ["org_id", "vendor"],
        unique=True,
        postgresql_where=LIVE_DEFAULT,
        sqlite_where=LIVE_DEFAULT,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="provider_credentials")
    with op.batch_alter_table("provider_credentials") as batch:
        batch.drop_column("is_default")
