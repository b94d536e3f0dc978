"""Column types whose storage differs by dialect (PostGIS geometry vs embedded SQLite)."""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.geo.srid import WGS84


class PointGeometry(TypeDecorator[Any]):
    """``geometry(Point, 4326)`` on PostGIS; an always-NULL text column on SQLite.

    On the embedded default the point lives only in the request's ``lat``/``lon`` columns and
    spatial work is done in process with Shapely.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Geometry on PostgreSQL, text elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Geometry("POINT", srid=WGS84, spatial_index=False))
        return dialect.type_descriptor(Text())


class MultiPolygonGeometry(TypeDecorator[Any]):
    """``geometry(MultiPolygon, 4326)`` on PostGIS; hex WKB text on SQLite (read by Shapely)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Geometry on PostgreSQL, text elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(
                Geometry("MULTIPOLYGON", srid=WGS84, spatial_index=False)
            )
        return dialect.type_descriptor(Text())
