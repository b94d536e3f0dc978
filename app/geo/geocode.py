"""Addresses to places: the ``Geocoder`` protocol and how settings choose one.

Three implementations:

* ``Gazetteer`` (``app.geo.gazetteer``, kind ``embedded``): in memory, built from the
  city's address points; no outside service.
* ``HttpGeocoder`` (``app.geo.http_geocoder``, kind ``http``): a Nominatim- or
  Pelias-compatible service at the operator's base URL.
* ``NoGeocoder`` (kind ``none``): finds nothing.

A geocoder never raises for a lookup: an address it cannot find, or a service that fails,
gives ``None``, and the caller stores the report without a point (as before geocoding).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from app.geo.address_points import AddressRecord
from app.geo.gazetteer import Gazetteer
from app.geo.http_geocoder import HttpGeocoder
from app.geo.place import Place, PlaceKind
from app.geo.settings import GeocodeSettings

__all__ = ["Geocoder", "NoGeocoder", "Place", "PlaceKind", "build_geocoder"]


class Geocoder(Protocol):
    """Finds the place an address names, and the place at a point."""

    async def forward(self, address: str) -> Place | None:
        """The place ``address`` (a street address or intersection) names, or None."""
        ...

    async def reverse(self, lat: float, lon: float) -> Place | None:
        """The nearest known place to a WGS84 point (within the configured distance)."""
        ...

    async def aclose(self) -> None:
        """Release what the geocoder holds (connections)."""
        ...


class NoGeocoder:
    """A geocoder that finds nothing (geocoding switched off)."""

    async def forward(self, address: str) -> Place | None:
        """Nothing."""
        return None

    async def reverse(self, lat: float, lon: float) -> Place | None:
        """Nothing."""
        return None

    async def aclose(self) -> None:
        """Nothing to release."""


def build_gazetteer(settings: GeocodeSettings, records: Iterable[AddressRecord]) -> Gazetteer:
    """The embedded gazetteer over ``records``, with the settings' limits."""
    return Gazetteer(
        records,
        max_distance_m=settings.max_distance_m,
        intersection_distance_m=settings.intersection_distance_m,
        max_number_gap=settings.max_number_gap,
        fuzzy_cutoff=settings.fuzzy_cutoff,
        max_address_length=settings.max_address_length,
    )


def build_geocoder(settings: GeocodeSettings, records: Iterable[AddressRecord] = ()) -> Geocoder:
    """The geocoder the settings choose (``records``: the embedded one's address points)."""
    if settings.kind == "http":
        return HttpGeocoder(settings)
    if settings.kind == "none":
        return NoGeocoder()
    return build_gazetteer(settings, records)
