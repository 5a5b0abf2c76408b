"""Enterprise plans: versioned custom plans with terms, suspension, invoices, sales
inquiries and the operator's actions

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("custom_plans") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("terms", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(100), nullable=True))
        batch.add_column(sa.Column("stripe_price_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stripe_subscription_id", sa.String(64), nullable=True))
        batch.create_index("ix_custom_plans_stripe_subscription_id", ["stripe_subscription_id"])
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suspended_reason", sa.String(500), nullable=True))
    op.create_table(
        "enterprise_invoices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("custom_plan_id", sa.String(40), nullable=True),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("stripe_invoice_id", sa.String(64), nullable=True, unique=True),
        sa.Column("number", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hosted_url", sa.String(500), nullable=True),
        sa.Column("po_number", sa.String(100), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enterprise_invoices_org_id", "enterprise_invoices", ["org_id"])
    op.create_table(
        "sales_inquiries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("contact_email", sa.String(320), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("monthly_requests", sa.BigInteger(), nullable=True),
        sa.Column("needs", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sales_inquiries_org_id", "sales_inquiries", ["org_id"])
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_operator_actions_org_id", "operator_actions", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_operator_actions_org_id", table_name="operator_actions")
    op.drop_table("operator_actions")
    op.drop_index("ix_sales_inquiries_org_id", table_name="sales_inquiries")
    op.drop_table("sales_inquiries")
    op.drop_index("ix_enterprise_invoices_org_id", table_name="enterprise_invoices")
    op.drop_table("enterprise_invoices")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
    with op.batch_alter_table("custom_plans") as batch:
        batch.drop_index("ix_custom_plans_stripe_subscription_id")
        batch.drop_column("stripe_subscription_id")
        batch.drop_column("stripe_price_id")
        batch.drop_column("actor")
        batch.drop_column("terms")
        batch.drop_column("version")
