"""Wards: versioned boundary sets of areas (PostGIS MultiPolygon), request ward, outside rule.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "boundary_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_boundary_set_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_boundary_set")),
        sa.UniqueConstraint(
            "jurisdiction_id", "name", name=op.f("uq_boundary_set_jurisdiction_id")
        ),
    )
    geom = Geometry("MULTIPOLYGON", srid=4326, spatial_index=False) if _postgres() else sa.Text()
    op.create_table(
        "area",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("boundary_set_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("geom", geom, nullable=False),
        sa.Column("properties", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(
            ["boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_area_boundary_set_id_boundary_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area")),
        sa.UniqueConstraint("boundary_set_id", "code", name=op.f("uq_area_boundary_set_id")),
    )
    op.create_index(op.f("ix_area_boundary_set_id"), "area", ["boundary_set_id"], unique=False)
    if _postgres():
        op.create_index("ix_area_geom", "area", ["geom"], postgresql_using="gist")
    with op.batch_alter_table("jurisdiction") as batch:
        batch.add_column(
            sa.Column("accepts_outside", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("service_request") as batch:
        batch.add_column(sa.Column("ward_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_service_request_ward_id_area"),
            "area",
            ["ward_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index(
        "ix_service_request_ward_requested", "service_request", ["ward_id", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_request_ward_requested", table_name="service_request")
    with op.batch_alter_table("service_request") as batch:
        batch.drop_constraint(op.f("fk_service_request_ward_id_area"), type_="foreignkey")
        batch.drop_column("ward_id")
    with op.batch_alter_table("jurisdiction") as batch:
        batch.drop_column("accepts_outside")
    if _postgres():
        op.drop_index("ix_area_geom", table_name="area")
    op.drop_index(op.f("ix_area_boundary_set_id"), table_name="area")
    op.drop_table("area")
    op.drop_table("boundary_set")
