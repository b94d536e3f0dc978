"""What a geocoder answers: a place (a point and what is there)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# PostGIS' sphere (mean Earth radius), as app.geo.wards uses.
EARTH_RADIUS_M = 6_371_008.8
# Metres per degree of latitude; a degree of longitude is this times cos(latitude).
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0

PlaceKind = Literal["address", "intersection", "street"]


@dataclass(frozen=True, slots=True)
class Place:
    """A located address, intersection or street (WGS84)."""

    lat: float
    lon: float
    # The normalised address ("333 KING ST E", "KING ST W & SPADINA AVE"): the same spelling
    # for every way of writing it (app.geo.addresses).
    address: str
    # The address as its source wrote it ("333 King St E"), for people.
    label: str
    kind: PlaceKind
    # 0..1: 1 is an exact match; lower for a nearest house number, a fuzzy street name, an
    # intersection worked out from nearby points, a whole street.
    confidence: float
    # Reverse lookups: how far the place is from the point asked about, in metres.
    distance_m: float | None = None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
