"""Ward lookup: which area of the current ward set a point falls in.

One rule, two implementations that must agree (the tests check thousands of points):

* PostGIS (production): SQL expressions (``app.store.ward_sql``) evaluated inside the INSERT
  of a request, so the lookup costs no extra round trip; the GiST index on ``area.geom``
  serves ``ST_Covers``.
* Shapely (embedded default): an in-process ``STRtree`` over prepared polygons.

The rule: a point covered by an area (boundary included) belongs to it; on a boundary shared
by several areas the one with the lowest id (import order) wins. A point covered by none but
within ``tolerance_m`` metres of an area belongs to the nearest such area (ties: lowest id) —
five real Toronto requests on Steeles Avenue lie about 1 m outside the city. Otherwise the
point is in no ward.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

# PostGIS' sphere (mean Earth radius).
EARTH_RADIUS_M = 6_371_008.8
# Metres per degree of latitude; a degree of longitude is this times cos(latitude).
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0


def degrees_for(metres: float, lat: float) -> float:
    """A distance in degrees that is at least ``metres`` in every direction at ``lat``."""
    return metres / (METRES_PER_DEGREE * max(math.cos(math.radians(min(abs(lat), 89.0))), 0.01))


@dataclass(frozen=True, slots=True)
class WardHit:
    """The ward a point falls in."""

    area_id: int
    code: str
    name: str


class WardIndex:
    """Shapely index of one ward set (the embedded default's lookup)."""

    def __init__(self, areas: Iterable[tuple[int, str, str, BaseGeometry]]) -> None:
        items = sorted(areas, key=lambda a: a[0])
        self._ids = [a[0] for a in items]
        self._hits = [WardHit(a[0], a[1], a[2]) for a in items]
        self._geoms = [a[3] for a in items]
        for geom in self._geoms:
            shapely.prepare(geom)
        self._tree = shapely.STRtree(self._geoms)

    def __len__(self) -> int:
        return len(self._ids)

    def lookup(self, lat: float, lon: float, tolerance_m: float) -> WardHit | None:
        """The ward of a point, by the module's rule."""
        point = Point(lon, lat)
        candidates = sorted(int(i) for i in self._tree.query(point, predicate="intersects"))
        for index in candidates:
            if self._geoms[index].covers(point):
                return self._hits[index]
        if tolerance_m <= 0:
            return None
        window = point.buffer(degrees_for(tolerance_m, lat))
        # Distances in metres on a local plane around the point (equirectangular: exact to
        # well under 0.1 % at the few metres a tolerance spans, like PostGIS' sphere).
        scale = np.array([METRES_PER_DEGREE * math.cos(math.radians(lat)), METRES_PER_DEGREE])
        origin = np.array([lon, lat])
        here = Point(0.0, 0.0)
        best: tuple[float, int] | None = None
        for index in sorted(int(i) for i in self._tree.query(window)):
            local = shapely.transform(self._geoms[index], lambda xy: (xy - origin) * scale)
            distance = float(local.distance(here))
            if distance <= tolerance_m and (best is None or distance < best[0]):
                best = (distance, index)
        return self._hits[best[1]] if best is not None else None
