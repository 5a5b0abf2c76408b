"""Background jobs that run once across the fleet

Revision ID: 0010
Revises: 0009

job_leases holds one row per scheduled job (the nightly billing reconcile,
and the purge and export jobs to come): who holds it, until when, and how
many runs completed. See kit/schedule.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(1000), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
