"""Addresses to places at intake: a POST with an address and no point gets one, a located POST
without an address gets one.

The jurisdiction's geocoder is what ``geocode.kind`` names: its embedded gazetteer
(``Gazetteers``, built from its address points), the operator's HTTP geocoder (one shared
client, to ``geocode.base_url`` only, with its timeouts, concurrency cap and cache), or none.
A lookup never fails a POST: an address that is not found, a geocoder that fails or times
out, or a point in none of the jurisdiction's wards (when it refuses outside locations) leaves
the submission as it came (stored without a point, as before geocoding).

Embedded lookups are CPU work (street-name parsing, fuzzy matching, a spatial index): they run
in a worker thread, off the event loop. Whether a jurisdiction's address points changed is
asked at most every ``recheck_s`` seconds, so a located POST pays no database round trip for
its reverse lookup most of the time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from app.domain.addresses import Gazetteers
from app.domain.requests import TEXT_FIELDS, LocationOutside, Submission, check_location
from app.geo.geocode import Geocoder, NoGeocoder, build_geocoder
from app.geo.place import Place
from app.store.engine import read_connection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.domain.jurisdictions import JurisdictionInfo
    from app.geo.gazetteer import Gazetteer
    from app.geo.settings import GeocodeSettings
    from app.store.base import WardIndexes

log = logging.getLogger(__name__)

# The longest address stored (POST requests' address_string bound).
ADDRESS_MAX = TEXT_FIELDS["address_string"]
# How often (seconds) a jurisdiction's address points are checked for a change.
RECHECK_S = 5.0


class Locator:
    """Fills in the point or the address of a submission from the jurisdiction's geocoder."""

    def __init__(
        self,
        settings: GeocodeSettings,
        engine: AsyncEngine,
        *,
        wards: WardIndexes | None = None,
        tolerance_m: float = 0.0,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.wards = wards
        self.tolerance_m = tolerance_m
        self.recheck_s = recheck_s
        self.gazetteers = Gazetteers(settings) if settings.kind == "embedded" else None
        # The HTTP geocoder (or none): one for every jurisdiction.
        self._shared: Geocoder | None = (
            build_geocoder(settings) if settings.kind != "embedded" else None
        )
        self._checked: dict[int, tuple[float, Gazetteer]] = {}

    @property
    def remote(self) -> bool:
        """True when lookups call an outside service (the HTTP geocoder)."""
        return self.settings.kind == "http"

    @staticmethod
    def wants(sub: Submission) -> bool:
        """Whether a submission would be looked up (no point, or no address)."""
        return sub.lat is None or sub.address is None

    async def _gazetteer(self, jurisdiction_pk: int) -> Gazetteer:
        assert self.gazetteers is not None  # noqa: S101 - embedded kind only
        now = time.monotonic()
        checked = self._checked.get(jurisdiction_pk)
        if checked is not None and now - checked[0] < self.recheck_s:
            return checked[1]
        async with read_connection(self.engine) as conn:
            gazetteer = await self.gazetteers.get(conn, jurisdiction_pk)
        self._checked[jurisdiction_pk] = (now, gazetteer)
        return gazetteer

    def forget(self, jurisdiction_pk: int | None = None) -> None:
        """Look again at the address points (of one jurisdiction, or all) on the next lookup."""
        if jurisdiction_pk is None:
            self._checked.clear()
        else:
            self._checked.pop(jurisdiction_pk, None)
        if self.gazetteers is not None:
            self.gazetteers.forget(jurisdiction_pk)

    async def forward(self, jurisdiction_pk: int, address: str) -> Place | None:
        """The place an address names in the jurisdiction, or None."""
        if self._shared is not None:
            return await self._shared.forward(address)
        gazetteer = await self._gazetteer(jurisdiction_pk)
        if not len(gazetteer):
            return None
        return await asyncio.to_thread(gazetteer.locate, address)

    async def reverse(self, jurisdiction_pk: int, lat: float, lon: float) -> Place | None:
        """The known place nearest a point in the jurisdiction (within the distance), or None."""
        if self._shared is not None:
            return await self._shared.reverse(lat, lon)
        gazetteer = await self._gazetteer(jurisdiction_pk)
        if not len(gazetteer):
            return None
        return await asyncio.to_thread(gazetteer.nearest, lat, lon)

    async def complete(self, jurisdiction: JurisdictionInfo, sub: Submission) -> None:
        """Give an address-only submission its point, a located one without an address its
        address (never raises for a lookup that fails)."""
        if isinstance(self._shared, NoGeocoder):
            return
        try:
            if sub.lat is None:
                text = sub.address or sub.address_id
                if text:
                    await self._locate(jurisdiction, sub, text)
            elif sub.address is None and sub.lon is not None:
                place = await self.reverse(jurisdiction.pk, sub.lat, sub.lon)
                if place is not None and (place.label or place.address):
                    # An outside service's label may be long: the column's bound holds.
                    sub.address = (place.label or place.address)[:ADDRESS_MAX]
        except Exception:  # a geocoder never fails a POST
            log.warning("geocoding failed", exc_info=True)

    async def _locate(self, jurisdiction: JurisdictionInfo, sub: Submission, text: str) -> None:
        place = await self.forward(jurisdiction.pk, text)
        if place is None or place.kind == "street":
            return  # a whole street is no place to send a crew to
        located = Submission(lat=place.lat, lon=place.lon)
        try:
            async with read_connection(self.engine) as conn:
                await check_location(
                    conn, jurisdiction, located, wards=self.wards, tolerance_m=self.tolerance_m
                )
        except LocationOutside:
            return  # found elsewhere than in this city: stored without a point
        sub.lat, sub.lon = place.lat, place.lon

    async def aclose(self) -> None:
        """Close the HTTP geocoder's connections."""
        if self._shared is not None:
            await self._shared.aclose()
