"""Service requests as RFC 7946 GeoJSON (extension): ``requests.geojson`` and
``requests/{id}.geojson``.

A request is a Feature: ``id`` its service_request_id, ``geometry`` its point (``[long, lat]``,
WGS84) or null when it has none, ``properties`` every other field of its GeoReport item (the
same values as in requests.json, ``lat`` and ``long`` aside). A list is a FeatureCollection; a
full page also names its next page in ``links`` (the foreign member OGC API Features uses),
besides the X-Next-Cursor and Link headers. The exports (``GET exports/requests.geojson``,
the daily dumps) build their features here too, so every GeoJSON of requests has one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

GEOJSON: Final = "application/geo+json"
MEDIA_TYPE: Final = GEOJSON
# What a FeatureCollection written in parts starts and ends with (a streamed export).
COLLECTION_HEAD: Final = '{"type":"FeatureCollection","features":['
COLLECTION_TAIL: Final = "]}\n"
_LOCATION: Final = ("lat", "long")


def point(lat: float | None, lon: float | None) -> dict[str, Any] | None:
    """A GeoJSON Point (``[longitude, latitude]``), or None without both coordinates."""
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def request_feature(item: Mapping[str, Any]) -> dict[str, Any]:
    """The Feature of a GeoReport request item."""
    return {
        "type": "Feature",
        "id": item["service_request_id"],
        "geometry": point(item.get("lat"), item.get("long")),
        "properties": {k: v for k, v in item.items() if k not in _LOCATION},
    }


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole FeatureCollection (for a document small enough to build at once)."""
    return {"type": "FeatureCollection", "features": features}


def request_collection(items: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    """The FeatureCollection of a page of request items (``next_url``: its next page)."""
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [request_feature(item) for item in items],
    }
    if next_url is not None:
        collection["links"] = [{"rel": "next", "type": GEOJSON, "href": next_url}]
    return collection


_POINT = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "Point"},
        "coordinates": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 2,
            "maxItems": 2,
            "description": "[long, lat] (WGS84).",
        },
    },
}


def feature_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a request Feature whose properties have schema ``properties``."""
    return {
        "type": "object",
        "description": "RFC 7946 Feature of a request: its point (null when it has none) and "
        "its GeoReport fields but lat and long.",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "string"},
            "geometry": {"anyOf": [_POINT, {"type": "null"}]},
            "properties": properties,
        },
    }


def collection_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a FeatureCollection of requests."""
    return {
        "type": "object",
        "description": "RFC 7946 FeatureCollection of requests (EPSG:4326).",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": feature_schema(properties)},
            "links": {
                "type": "array",
                "description": "With a full page: its next page (rel next).",
                "items": {
                    "type": "object",
                    "required": ["rel", "href"],
                    "properties": {
                        "rel": {"type": "string"},
                        "type": {"type": "string"},
                        "href": {"type": "string"},
                    },
                },
            },
        },
    }
