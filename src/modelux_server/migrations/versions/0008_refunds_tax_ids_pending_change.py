"""Billing that holds against real Stripe: refunds, tax IDs, in-flight plan changes

Revision ID: 0008
Revises: 0007

refunds records money given back on our own initiative (unused time when a
subscription ends early, a duplicate subscription), once per subscription. plan_states gains the
customer's tax IDs (shown on the billing page) and the plan change being
asked of Stripe at the moment (so its webhook is credited to the right
person even when it arrives before Stripe's answer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan_states") as batch:
        batch.add_column(sa.Column("tax_ids", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pending_change", sa.JSON(), nullable=True))
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_cents", sa.Integer(), nullable=False),
        sa.Column("refunded_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "subscription_id", name="uq_refunds_kind_subscription"),
    )
    op.create_index("ix_refunds_org_id", "refunds", ["org_id"])
    op.create_index("ix_refunds_status", "refunds", ["status"])


def downgrade() -> None:
    op.drop_index("ix_refunds_status", table_name="refunds")
    op.drop_index("ix_refunds_org_id", table_name="refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("plan_states") as batch:
        batch.drop_column("pending_change")
        batch.drop_column("tax_ids")
