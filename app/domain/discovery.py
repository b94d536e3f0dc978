"""The discovery document of this deployment, and the registry of its extensions.

``EXTENSIONS`` is the one list of what this server offers beyond GeoReport v2: each entry
names its specification (a URN clients select it by), the resources it serves (paths under
the GeoReport base path, exactly as the routes are mounted, ``{format}`` where the suffix
varies), their formats, and whether the settings turn it on. Discovery lists every enabled
one as an endpoint; ``tests/api/test_discovery_extensions.py`` checks that the registry and
the mounted routes are the same. A new extension adds its entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.georeport.datetimes import format_w3c
from app.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ["text/xml", "application/json"]
# The resources of GeoReport v2 itself (paths under the base path).
CORE_RESOURCES = (
    "discovery.{format}",
    "services.{format}",
    "services/{service_code}.{format}",
    "requests.{format}",
    "requests/{service_request_id}.{format}",
    "tokens/{token}.{format}",
)


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension of GeoReport v2 this server offers."""

    specification: str
    resources: tuple[str, ...]
    formats: tuple[str, ...] = tuple(FORMATS)
    enabled: Callable[[Settings], bool] = _always


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
# GET reports/service-promise and reports/key-metrics (JSON, CSV).
REPORTS_SPECIFICATION = "urn:open311-server:extension:reports:v1"
UPDATES_SPECIFICATION = "urn:open311-server:extension:servicerequestupdates:v1"
WEBHOOKS_SPECIFICATION = "urn:open311-server:extension:webhooks:v1"
EXPORTS_SPECIFICATION = "urn:open311-server:extension:exports:v1"
MEDIA_SPECIFICATION = "urn:open311-server:extension:media:v1"

EXTENSIONS: tuple[Extension, ...] = (
    Extension(
        AREAS_SPECIFICATION,
        ("areas.{format}", "areas.geojson"),
        (*FORMATS, "application/geo+json"),
    ),
    Extension(
        JURISDICTIONS_SPECIFICATION,
        ("jurisdictions.{format}", "jurisdictions/{jurisdiction_id}.{format}"),
    ),
    # The updates feed (mySociety/FixMyStreet's servicerequestupdates, cursor-paged).
    Extension(UPDATES_SPECIFICATION, ("servicerequestupdates.{format}",)),
    # Webhooks of an app's own requests, feed subscriptions, their delivery logs and replays.
    Extension(
        WEBHOOKS_SPECIFICATION,
        (
            "webhooks.{format}",
            "webhooks/{subscription_id}.{format}",
            "webhooks/{subscription_id}/deliveries.{format}",
            "webhooks/{subscription_id}/replay.{format}",
        ),
    ),
    Extension(
        EXPORTS_SPECIFICATION,
        ("exports/requests.{format}",),
        ("text/csv", "application/geo+json", "application/x-ndjson"),
        lambda settings: settings.exports.enabled,
    ),
    # POST requests and servicerequestupdates take photos (``media`` file parts).
    Extension(
        PHOTOS_SPECIFICATION,
        ("requests.{format}", "servicerequestupdates.{format}"),
        enabled=lambda settings: settings.media.enabled,
    ),
    # Address-only reports get a point, located ones an address (at intake).
    Extension(
        GEOCODING_SPECIFICATION,
        ("requests.{format}",),
        enabled=lambda settings: settings.geocode.kind != "none",
    ),
    Extension(WHERE_SPECIFICATION, ("requests.{format}", "requests/nearby.{format}")),
    Extension(SEARCH_SPECIFICATION, ("requests.{format}",)),
    Extension(
        GEOJSON_SPECIFICATION,
        ("requests.geojson", "requests/{service_request_id}.geojson"),
        ("application/geo+json",),
    ),
    Extension(
        DETAILS_SPECIFICATION,
        ("requests.{format}", "requests/{service_request_id}.{format}"),
    ),
    # The Service Promise reports (a reports or admin key).
    Extension(
        REPORTS_SPECIFICATION,
        ("reports/service-promise.{format}", "reports/key-metrics.{format}"),
        ("application/json", "text/csv"),
    ),
    # Photos of requests (their media_url), served when the local object store keeps them.
    Extension(MEDIA_SPECIFICATION, ("media/{key}",), ("image/jpeg", "image/png", "image/webp")),
)


def discovery_document(
    settings: Settings,
    endpoint_url: str,
    changeset: datetime,
    contact: str | None = None,
    key_service: str | None = None,
    *,
    max_page_size: int | None = None,
    locales: list[str] | None = None,
) -> dict[str, Any]:
    """Discovery for the endpoint at ``endpoint_url`` (plus configured extra endpoints and
    every enabled extension). ``max_page_size``: the largest page of a paged list;
    ``locales``: the languages on offer (catalogues and messages), the default first."""
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
    for extension in EXTENSIONS:
        if not extension.enabled(settings):
            continue
        endpoints.append(
            {
                "specification": extension.specification,
                "url": endpoint_url,
                "changeset": stamp,
                "type": settings.discovery.endpoint_type,
                "formats": list(extension.formats),
                "resources": list(extension.resources),
            }
        )
    document: dict[str, Any] = {
        "changeset": stamp,
        "contact": contact or settings.discovery.contact,
        "key_service": key_service or settings.discovery.key_service,
        "endpoints": endpoints,
    }
    if max_page_size is not None:
        document["max_page_size"] = max_page_size
    if locales is not None:
        document["locales"] = locales
    return document
