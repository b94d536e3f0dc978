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


# The sphere both backends measure distances on (PostGIS' mean radius of WGS84, metres).
EARTH_RADIUS_M = 6_371_008.8


def haversine(lat: float, lon: float, centre_lat: float, centre_lon: float) -> float:
    """The haversine of the central angle between two points (0 same point, 1 antipodes);
    ``distance_m`` of it gives metres. The store computes the same expression in SQL."""
    a = math.sin((math.radians(lat) - math.radians(centre_lat)) / 2)
    b = math.sin((math.radians(lon) - math.radians(centre_lon)) / 2)
    return a * a + math.cos(math.radians(lat)) * math.cos(math.radians(centre_lat)) * b * b


def distance_m(haversine_value: float) -> float:
    """Metres on the sphere of a haversine value (``haversine``)."""
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, haversine_value))))


def haversine_limit(radius_m: float) -> float:
    """The largest haversine value of a point within ``radius_m`` of a centre."""
    angle = min(math.pi, radius_m / EARTH_RADIUS_M)
    return math.sin(angle / 2) ** 2


def box_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat): a box holding every point within ``radius_m`` of
    the centre (a little larger: the spatial index's prefilter), clamped to the WGS84 range.

    Near a pole the box takes every longitude; a circle across the antimeridian is cut at it
    (points on its other side are not found)."""
    angle = math.degrees(radius_m / EARTH_RADIUS_M) * 1.000001 + 1e-9
    min_lat, max_lat = max(-90.0, lat - angle), min(90.0, lat + angle)
    widest = max(abs(min_lat), abs(max_lat))
    if widest >= 89.999_999 or angle >= 90:
        return -180.0, min_lat, 180.0, max_lat
    # The widest longitude span of the circle (at the latitude of its tangent meridians).
    sine = math.sin(math.radians(angle)) / math.cos(math.radians(lat))
    span = 180.0 if sine >= 1 else math.degrees(math.asin(sine)) * 1.000001 + 1e-9
    return max(-180.0, lon - span), min_lat, min(180.0, lon + span), max_lat
