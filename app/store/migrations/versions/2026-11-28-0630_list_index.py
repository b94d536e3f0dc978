"""Performance: an index for the common GET requests filter (service_code + status).

GET requests with a service_code and a status, newest first, is what apps and the map send
most. The index holds exactly that filter followed by the order, so the newest page is read
in index order whatever the table's size or the mix of recent rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 06:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_service_request_list",
        "service_request",
        ["jurisdiction_id", "service_type_id", "status", "requested_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_service_request_list", table_name="service_request")
