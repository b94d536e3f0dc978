"""PostgreSQL: the search index (``ix_service_request_search``, GIN) without a pending list.

With GIN's default ``fastupdate``, an INSERT adds its words to a pending list, and the INSERT
that finds the list over ``gin_pending_list_limit`` (4 MB) moves all of it into the index
itself: one POST in some thousands pays tens of milliseconds (a loopback probe of 40,000
single-row INSERTs: p99 4.0 ms and max 79 ms with it, 0.85 ms and 13 ms without; p50 0.32 vs
0.33 ms). Without it each INSERT updates the index as it goes. The list left is moved in now.
SQLite (FTS5) is unchanged.

Revision ID: 0016_search_fastupdate
Revises: 0015_report_passes
Create Date: 2026-12-09 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_search_fastupdate"
down_revision: str | None = "0015_report_passes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_service_request_search SET (fastupdate = off)")
    op.execute("SELECT gin_clean_pending_list('ix_service_request_search'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_service_request_search RESET (fastupdate)")
