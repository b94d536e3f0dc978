"""Where filters bounded by their matches: one GiST index for the list filters and the location.

GET requests with ``bbox`` or ``lat``/``long``/``radius`` and the list's usual filters
(service_code, status, dates) was a BitmapAnd of the location's GiST index (every request in
the box, whatever its service or status) and the list btree (every request of the service and
status in the dates): both grow with the table, so the query did too (bench scale study:
2.2-2.9 × at 3 × the rows). ``ix_service_request_where`` holds the list's equality filters,
the location and the time (``btree_gist`` gives GiST the scalar columns), so one index scan
finds exactly the requests of that service and status in the box and the dates: its work is
that of the matching rows, not of the table.

PostgreSQL only: ``btree_gist`` is a contrib extension shipped with PostgreSQL (trusted: a
database owner may create it). SQLite answers where filters with its R*Tree (migration 0011).

Revision ID: 0017_where_index
Revises: 0016_search_fastupdate
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_where_index"
down_revision: str | None = "0016_search_fastupdate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    # Building it reads the whole table (about 20 s per million requests): longer than the
    # server's statement timeout, which is for requests, not for this one-off migration.
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute(
        "CREATE INDEX ix_service_request_where ON service_request USING gist "
        "(jurisdiction_id, service_type_id, status, location, requested_at)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_service_request_where")
    # btree_gist stays: other objects of the database may use it.
