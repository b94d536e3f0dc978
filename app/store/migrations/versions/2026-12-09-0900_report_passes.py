"""Report rollups refreshed in bounded pieces: the pass in progress and its lease.

- ``report_refresh``: ``pass_started`` (the refresh pass in progress), ``lease_owner`` and
  ``lease_at`` (who runs it, so one pass per jurisdiction runs at a time in any process).
- ``report_pending``: the ranges of local days that pass has still to recompute.

Revision ID: 0015_report_passes
Revises: 0015_export_leases
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_report_passes"
down_revision: str | None = "0015_export_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_refresh") as batch:
        batch.add_column(sa.Column("pass_started", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "report_pending",
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_report_pending_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jurisdiction_id", "first_day", name=op.f("pk_report_pending")),
    )


def downgrade() -> None:
    op.drop_table("report_pending")
    with op.batch_alter_table("report_refresh") as batch:
        batch.drop_column("lease_at")
        batch.drop_column("lease_owner")
        batch.drop_column("pass_started")
