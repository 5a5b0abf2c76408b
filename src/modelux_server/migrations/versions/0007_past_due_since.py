"""plan_states.past_due_since: when a subscription's payments started failing

Revision ID: 0007
Revises: 0006

Rows already past_due get no date: the next application of their subscription
(webhook or nightly reconcile) starts the grace from then.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan_states") as batch:
        batch.add_column(sa.Column("past_due_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plan_states") as batch:
        batch.drop_column("past_due_since")
