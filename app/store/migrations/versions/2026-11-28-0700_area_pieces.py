"""Performance: areas cut into small pieces for ward lookups (PostGIS).

A Toronto ward has about a thousand vertices; testing a point against it costs in proportion.
``area_piece`` holds each area cut by ``ST_Subdivide`` into pieces of at most 64 vertices,
under a GiST index: a lookup tests the one or two pieces whose box holds the point. Existing
areas are cut here; new ones with their set (``import_boundary_set``). Empty on SQLite, where
the ward lookup is Shapely's STRtree in process.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIECE_MAX_VERTICES = 64  # app.store.tables.area.PIECE_MAX_VERTICES when this migration was written


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    geom = Geometry("MULTIPOLYGON", srid=4326, spatial_index=False) if _postgres() else sa.Text()
    op.create_table(
        "area_piece",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("boundary_set_id", sa.Integer(), nullable=False),
        sa.Column("geom", geom, nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["area.id"], name=op.f("fk_area_piece_area_id_area"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_area_piece_boundary_set_id_boundary_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_piece")),
    )
    op.create_index(op.f("ix_area_piece_area_id"), "area_piece", ["area_id"], unique=False)
    op.create_index(
        op.f("ix_area_piece_boundary_set_id"), "area_piece", ["boundary_set_id"], unique=False
    )
    if _postgres():
        op.create_index("ix_area_piece_geom", "area_piece", ["geom"], postgresql_using="gist")
        op.execute(
            "INSERT INTO area_piece (area_id, boundary_set_id, geom) "  # noqa: S608 - the only value is a constant of this module, no input
            f"SELECT id, boundary_set_id, ST_Multi(ST_Subdivide(geom, {PIECE_MAX_VERTICES})) "
            "FROM area"
        )
        op.execute("ANALYZE area_piece")


def downgrade() -> None:
    if _postgres():
        op.drop_index("ix_area_piece_geom", table_name="area_piece")
    op.drop_index(op.f("ix_area_piece_boundary_set_id"), table_name="area_piece")
    op.drop_index(op.f("ix_area_piece_area_id"), table_name="area_piece")
    op.drop_table("area_piece")
