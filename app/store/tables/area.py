"""Boundary sets (versioned ward maps) and their areas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field, timestamp_field
from app.store.types import JSONValue, MultiPolygonGeometry


class BoundarySet(TableModel, table=True):
    """One version of a jurisdiction's areas of a kind (e.g. Toronto's 2018 25-ward map).

    At most one set per jurisdiction and kind is current; older sets are kept.
    """

    __tablename__ = "boundary_set"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=255)
    kind: str = Field(default="ward", max_length=32)
    current: bool = Field(default=False)
    source: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_at_field()
    # When the set last became current or stopped being current (None: never since created);
    # with created_at, the last change of a jurisdiction's areas (GET areas' Last-Modified).
    updated_at: datetime | None = timestamp_field()


class Area(TableModel, table=True):
    """One area (ward) of a boundary set, a SRID 4326 MultiPolygon."""

    __tablename__ = "area"
    __table_args__ = (
        UniqueConstraint("boundary_set_id", "code"),
        Index("ix_area_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    boundary_set_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("boundary_set.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    code: str = Field(max_length=64)
    name: str = Field(max_length=255)
    geom: Any = Field(sa_type=MultiPolygonGeometry, nullable=False)
    properties: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)


# Ward lookups test a point against pieces of at most this many vertices (PostGIS).
PIECE_MAX_VERTICES = 64


class AreaPiece(TableModel, table=True):
    """A piece of an area, from ``ST_Subdivide`` (PostGIS only; empty on SQLite).

    Point-in-polygon against a ward of thousands of vertices costs in proportion to them; the
    GiST index over small pieces finds the one or two that can hold a point, and testing those
    costs next to nothing. Pieces are written with their area (``import_boundary_set``) and are
    never edited.
    """

    __tablename__ = "area_piece"
    __table_args__ = (
        Index("ix_area_piece_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    area_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("area.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    boundary_set_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("boundary_set.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    geom: Any = Field(sa_type=MultiPolygonGeometry, nullable=False)
