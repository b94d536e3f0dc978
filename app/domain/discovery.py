"""The discovery document of this deployment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.georeport.datetimes import format_w3c
from app.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# Our extensions, advertised as extra endpoints (clients select GeoReport ones by specification).
AREAS_SPECIFICATION = "urn:open311-server:extension:areas:v1"
# GET jurisdictions.{fmt}: every jurisdiction with its kind (local/remote/region) and status.
JURISDICTIONS_SPECIFICATION = "urn:open311-server:extension:jurisdictions:v1"
# POST requests and servicerequestupdates take photos (``media`` file parts), listed by
# extensions=true; advertised while photos are switched on.
PHOTOS_SPECIFICATION = "urn:open311-server:extension:photos:v1"
# POST requests geocodes address-only reports and reverse-geocodes located ones; advertised
# while a geocoder is configured.
GEOCODING_SPECIFICATION = "urn:open311-server:extension:geocoding:v1"
# GET requests: bbox= and lat/long/radius=, and GET requests/nearby.{fmt} (issue 18).
WHERE_SPECIFICATION = "urn:open311-server:extension:where:v1"
# GET requests: q= (text search over descriptions, addresses and service names).
SEARCH_SPECIFICATION = "urn:open311-server:extension:search:v1"
# requests.geojson and requests/{id}.geojson (RFC 7946), besides areas.geojson.
GEOJSON_SPECIFICATION = "urn:open311-server:extension:geojson:v1"
# extensions=true: detailed status, media URLs, public attribute values, update history.
DETAILS_SPECIFICATION = "urn:open311-server:extension:details:v1"
FORMATS = ["text/xml", "application/json"]


def discovery_document(
    settings: Settings,
    endpoint_url: str,
    changeset: datetime,
    contact: str | None = None,
    key_service: str | None = None,
) -> dict[str, Any]:
    """Discovery for the endpoint at ``endpoint_url`` (plus configured extra endpoints)."""
    stamp = format_w3c(changeset, UTC)
    endpoints = [
        {
            "specification": SPECIFICATION,
            "url": endpoint_url,
            "changeset": stamp,
            "type": settings.discovery.endpoint_type,
            "formats": list(FORMATS),
        }
    ]
    for extra in settings.discovery.extra_endpoints:
        endpoints.append(
            {
                "specification": SPECIFICATION,
                "url": extra["url"].rstrip("/"),
                "changeset": stamp,
                "type": extra.get("type", "test"),
                "formats": list(FORMATS),
            }
        )
    for extension in (
        AREAS_SPECIFICATION,
        JURISDICTIONS_SPECIFICATION,
        WHERE_SPECIFICATION,
        SEARCH_SPECIFICATION,
        DETAILS_SPECIFICATION,
    ):
        endpoints.append(
            {
                "specification": extension,
                "url": endpoint_url,
                "changeset": stamp,
                "type": settings.discovery.endpoint_type,
                "formats": list(FORMATS),
            }
        )
    intake = [
        (PHOTOS_SPECIFICATION, settings.media.enabled),
        (GEOCODING_SPECIFICATION, settings.geocode.kind != "none"),
    ]
    for extension, enabled in intake:
        if enabled:
            endpoints.append(
                {
                    "specification": extension,
                    "url": endpoint_url,
                    "changeset": stamp,
                    "type": settings.discovery.endpoint_type,
                    "formats": list(FORMATS),
                }
            )
    endpoints.append(
        {
            "specification": GEOJSON_SPECIFICATION,
            "url": endpoint_url,
            "changeset": stamp,
            "type": settings.discovery.endpoint_type,
            "formats": ["application/geo+json"],
        }
    )
    return {
        "changeset": stamp,
        "contact": contact or settings.discovery.contact,
        "key_service": key_service or settings.discovery.key_service,
        "endpoints": endpoints,
    }
