"""audit_events and audit_heads: the append-only, hash-chained audit log

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("actor_type", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(100), nullable=True),
        sa.Column("actor_label", sa.String(320), nullable=True),
        sa.Column("source", sa.String(20), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(500), nullable=True),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(100), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("org_id", "seq", name="uq_audit_events_org_id_seq"),
    )
    op.create_index("ix_audit_events_org_id_created_at", "audit_events", ["org_id", "created_at"])
    op.create_index("ix_audit_events_org_id_action", "audit_events", ["org_id", "action"])
    op.create_index(
        "ix_audit_events_org_id_target_type_target_id", "audit_events", ["org_id", "target_type", "target_id"]
    )
    op.create_table(
        "audit_heads",
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_heads")
    op.drop_index("ix_audit_events_org_id_target_type_target_id", table_name="audit_events")
    op.drop_index("ix_audit_events_org_id_action", table_name="audit_events")
    op.drop_index("ix_audit_events_org_id_created_at", table_name="audit_events")
    op.drop_table("audit_events")
