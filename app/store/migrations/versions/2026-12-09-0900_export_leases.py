"""Export leases: one export per caller across every server process.

- ``export_lease``: per caller (``key:<id>`` or ``ip:<address>``), the export holding it
  (``holder``) and until when (``expires_at``, renewed while the export streams).

Revision ID: 0015_export_leases
Revises: 0014_subscriptions
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_export_leases"
down_revision: str | None = "0014_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_lease",
        sa.Column("caller", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", name=op.f("pk_export_lease")),
    )


def downgrade() -> None:
    op.drop_table("export_lease")
