"""The PostGIS ward lookup as SQL expressions, evaluated inside the INSERT of a request.

The rule is the one of ``app.geo.wards`` (the Shapely index of the embedded default); the
tests check both agree on thousands of points.
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geography
from sqlalchemy import ColumnElement, Float, and_, cast, func, literal, select
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import CTE

from app.geo.wards import METRES_PER_DEGREE, degrees_for
from app.store.tables import Area, AreaPiece

AREA = Area.__table__
PIECE = AreaPiece.__table__


def _degrees_sql(tolerance_m: float, lat: float | ClauseElement) -> Any:
    if isinstance(lat, int | float):
        return literal(degrees_for(tolerance_m, lat), Float())
    cosine = func.greatest(func.cos(func.radians(func.least(func.abs(lat), 89.0))), 0.01)
    return literal(tolerance_m / METRES_PER_DEGREE) / cosine


def ward_cte(ward_id: ColumnElement[Any]) -> CTE:
    """``WITH ward AS MATERIALIZED (SELECT <ward_id> AS ward_id)``: an INSERT refers to the
    ward twice (the value, the inside-a-ward condition) and PostgreSQL would otherwise inline
    the CTE and run the lookup once per reference."""
    return (
        select(ward_id.label("ward_id"))
        .cte("ward")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )


def ward_id_expression(
    boundary_set_id: int | ColumnElement[int],
    point: Any,
    lat: float | ClauseElement,
    tolerance_m: float,
) -> ColumnElement[Any]:
    """SQL for the id of the ward of ``point`` in a boundary set (NULL when none), PostGIS.

    ``point`` and ``lat`` are values or column expressions (set-based re-assignment).
    """
    # Against the small pieces of the areas (GiST, then a cheap exact test); a point on the
    # border of two areas is covered by pieces of both: the lowest area id wins, as before.
    covering = (
        select(PIECE.c.area_id)
        .where(PIECE.c.boundary_set_id == boundary_set_id, func.ST_Covers(PIECE.c.geom, point))
        .order_by(PIECE.c.area_id)
        .limit(1)
        .scalar_subquery()
    )
    if tolerance_m <= 0:
        return covering
    geography_point = cast(point, Geography)
    geography_area = cast(AREA.c.geom, Geography)
    nearest = (
        select(AREA.c.id)
        .where(
            and_(
                AREA.c.boundary_set_id == boundary_set_id,
                # Index-assisted bounding-box prefilter in degrees, then metres on the sphere.
                AREA.c.geom.op("&&")(func.ST_Expand(point, _degrees_sql(tolerance_m, lat))),
                func.ST_DWithin(geography_area, geography_point, tolerance_m, False),
            )
        )
        .order_by(func.ST_Distance(geography_area, geography_point, False), AREA.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(covering, nearest)
