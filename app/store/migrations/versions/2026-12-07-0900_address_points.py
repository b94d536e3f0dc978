"""Address points: what each jurisdiction's embedded geocoder is built from.

- ``address_point``: an address as written in the imported file and its WGS84 point, by
  jurisdiction (``open311 addresses import``; the Toronto demo imports its captured requests').

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "address_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_address_point_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_point")),
    )
    op.create_index(op.f("ix_address_point_jurisdiction_id"), "address_point", ["jurisdiction_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_address_point_jurisdiction_id"), table_name="address_point")
    op.drop_table("address_point")
