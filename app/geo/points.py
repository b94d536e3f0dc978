"""Validation of WGS84 coordinates and their SQL point expressions."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, func

# The spatial reference of every coordinate at the edges of the system (WGS84 lat/long).
WGS84 = 4326


def check_lat_long(lat: float, lon: float) -> list[str]:
    """Problems with a WGS84 latitude/longitude pair (empty when valid)."""
    problems = []
    if not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        problems.append("lat must be a number between -90 and 90 (decimal degrees, WGS84).")
    if not math.isfinite(lon) or not -180.0 <= lon <= 180.0:
        problems.append("long must be a number between -180 and 180 (decimal degrees, WGS84).")
    return problems


def point_expression(lat: float | ColumnElement[float], lon: float | ColumnElement[float]) -> Any:
    """SQL for the PostGIS point of a location (x = longitude, y = latitude): values, bound
    parameters or columns."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), WGS84)
