"""Photos uploaded with requests and updates: their stored renditions.

- ``service_request.photos`` and ``request_update.photos``: one object per uploaded photo,
  in order (``url``, ``thumbnail_url``, ``content_type``, ``width``, ``height``); the first
  photo's ``url`` is also the row's ``media_url``. Null when nothing was uploaded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("service_request", sa.Column("photos", JSON_TYPE, nullable=True))
    op.add_column("request_update", sa.Column("photos", JSON_TYPE, nullable=True))


def downgrade() -> None:
    op.drop_column("request_update", "photos")
    op.drop_column("service_request", "photos")
