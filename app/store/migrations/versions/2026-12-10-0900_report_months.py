"""Report rollups by month, and the open requests with a target in every rollup.

- ``report_day`` gains ``open_targeted`` (open requests with an ``expected_datetime``),
  ``first_due`` and ``last_due`` (the earliest and latest of those targets): a report counts
  "open and overdue now" from the rollups for every day whose targets have all fallen due (or
  none has yet), and reads requests only for the recent days whose targets span the present.
- ``report_month``: the same counts summed by calendar month, rewritten with the days of that
  month, so a report reads its whole months there (months x keys rows, not days x keys).

The rollups are rebuilt: existing rows are removed and every jurisdiction's rollups are
marked never refreshed (its next report, or the worker, builds them again).

Revision ID: 0018_report_months
Revises: 0017_where_index
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_report_months"
down_revision: str | None = "0017_where_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _forget_rollups() -> None:
    op.execute("DELETE FROM report_day")
    op.execute("DELETE FROM report_pending")
    op.execute("UPDATE report_refresh SET refreshed_at = NULL, pass_started = NULL")


def _open_due() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("open_targeted", sa.Integer(), nullable=False),
        sa.Column("first_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_due", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    _forget_rollups()
    with op.batch_alter_table("report_day") as batch:
        for column in _open_due():
            batch.add_column(column)
    op.create_table(
        "report_month",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("with_target", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("first_contact", sa.Integer(), nullable=False),
        sa.Column("close_buckets", JSON_TYPE, nullable=True),
        *_open_due(),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_report_month_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_month")),
    )
    op.create_index(
        "ix_report_month_jurisdiction_dimension_month",
        "report_month",
        ["jurisdiction_id", "dimension", "month"],
    )


def downgrade() -> None:
    _forget_rollups()
    op.drop_index("ix_report_month_jurisdiction_dimension_month", table_name="report_month")
    op.drop_table("report_month")
    with op.batch_alter_table("report_day") as batch:
        batch.drop_column("last_due")
        batch.drop_column("first_due")
        batch.drop_column("open_targeted")
