"""Service-promise reports: daily rollups and the open-and-overdue index.

- ``report_day``: per jurisdiction, local day, dimension (all, service, ward, channel) and
  key, the counts of the requests received that day (``app.store.tables.report``).
- ``report_refresh``: when each jurisdiction's rollups were last brought up to date.
- ``ix_service_request_status_expected``: open requests past their expected datetime.

Revision ID: 0013_reports
Revises: 0011_where
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0013_reports"
down_revision: str | None = "0011_where"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("with_target", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("first_contact", sa.Integer(), nullable=False),
        sa.Column("close_buckets", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_report_day_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_day")),
    )
    op.create_index(
        "ix_report_day_jurisdiction_dimension_day",
        "report_day",
        ["jurisdiction_id", "dimension", "day"],
    )
    op.create_table(
        "report_refresh",
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_report_refresh_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jurisdiction_id", name=op.f("pk_report_refresh")),
    )
    op.create_index(
        "ix_service_request_status_expected",
        "service_request",
        ["jurisdiction_id", "status", "expected_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_service_request_status_expected", table_name="service_request")
    op.drop_table("report_refresh")
    op.drop_table("report_day")
