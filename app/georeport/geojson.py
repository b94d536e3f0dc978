"""GeoJSON (RFC 7946) of service requests: one shared feature builder.

A request's wire item (``app.domain.requests``) becomes a ``Feature``: its id is the
``service_request_id``, its geometry a ``Point`` at ``[long, lat]`` (WGS84; ``null`` for a
request located by address only, as RFC 7946 §3.2 allows), its properties every other field
of the item. Used by the exports (``GET exports/requests.geojson``, the daily dumps); any other
GeoJSON of requests (e.g. ``GET requests.geojson``) should build its features here too, so
every GeoJSON of requests has the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

MEDIA_TYPE: Final = "application/geo+json"
# What a FeatureCollection written in parts starts and ends with (``collection_parts``).
COLLECTION_HEAD: Final = '{"type":"FeatureCollection","features":['
COLLECTION_TAIL: Final = "]}\n"
_LOCATION: Final = ("lat", "long")


def point(lat: float | None, lon: float | None) -> dict[str, Any] | None:
    """A GeoJSON Point (``[longitude, latitude]``), or None without both coordinates."""
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def request_feature(item: Mapping[str, Any]) -> dict[str, Any]:
    """The GeoJSON Feature of a request's wire item (see the module's docstring)."""
    return {
        "type": "Feature",
        "id": item["service_request_id"],
        "geometry": point(item.get("lat"), item.get("long")),
        "properties": {k: v for k, v in item.items() if k not in _LOCATION},
    }


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole FeatureCollection (for a document small enough to build at once)."""
    return {"type": "FeatureCollection", "features": features}
