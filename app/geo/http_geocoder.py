"""The HTTP geocoder: a Nominatim- or Pelias-compatible service at the operator's base URL.

Built so that a geocoding service can never fail or hold up a POST:

* Calls go only to ``base_url`` (fixed paths under it, the address only in the query
  string); redirects are not followed; proxies and .netrc from the environment are ignored.
* Each lookup is bounded by ``total_timeout_s`` (an ``asyncio.timeout`` around waiting for a
  pooled connection, connecting and reading) besides httpx's connect/read timeouts; the pool
  holds ``max_concurrency`` connections, so at most that many lookups are in flight.
* The answer is streamed and dropped once it passes ``max_response_bytes`` (declared or
  read); it is asked for without compression and refused if compressed anyway.
* Every failure (timeout, connection, HTTP status other than 200, oversized or malformed
  answer) gives ``None`` and one log line — which never contains the address looked up.
* Answers, found or not found, are kept in a TTL cache of ``cache_size`` entries
  (failures are not cached, so the next lookup tries again). Forward lookups are keyed by
  the normalised address, so spellings of one address share an entry.

Results coarser than a street (a city, a postal code) are not places: an address a service
cannot find must not land on the city centre. A reverse answer farther than
``max_distance_m`` from the point asked about is none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from cachetools import TTLCache

from app.geo.addresses import (
    ParsedAddress,
    StreetAddress,
    fold,
    normalize_street,
    parse_address,
    query_text,
)
from app.geo.place import Place, PlaceKind, haversine_m
from app.geo.points import check_lat_long
from app.geo.settings import GeocodeSettings

log = logging.getLogger("open311.geocode")

MAX_LABEL_LENGTH = 300
# Nominatim address-detail keys that name the street, in order of preference.
ROAD_KEYS = ("road", "pedestrian", "footway", "residential", "path", "cycleway")


class _Failure(Exception):
    """A lookup that failed (logged; not cached)."""


class HttpGeocoder:
    """A ``Geocoder`` backed by a Nominatim- or Pelias-compatible HTTP service."""

    def __init__(
        self, settings: GeocodeSettings, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        if not settings.base_url:
            raise ValueError("the HTTP geocoder needs geocode.base_url")
        self.settings = settings
        headers = {
            "User-Agent": settings.user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.read_timeout_s,
                pool=settings.total_timeout_s,
            ),
            # At most max_concurrency lookups in flight: the rest wait for a connection
            # from the pool, within the total timeout.
            limits=httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._cache: TTLCache[tuple[str, ...], Place | None] | None = (
            TTLCache(settings.cache_size, settings.cache_ttl_s, timer=timer)
            if settings.cache_size > 0
            else None
        )
        # Calls made to the service (a cache hit makes none).
        self.calls = 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def forward(self, address: str) -> Place | None:
        """The place the service finds for an address or intersection, or None."""
        text = " ".join(address.split())
        if not text or len(text) > self.settings.max_address_length:
            return None
        parsed = parse_address(text)
        query = (query_text(parsed) if parsed is not None else fold(text)) + (
            self.settings.query_suffix
        )
        if self.settings.flavor == "pelias":
            path, params = "v1/search", {"text": query, "size": "1"}
        else:
            path = "search"
            params = {"q": query, "format": "jsonv2", "limit": "1", "addressdetails": "1"}
        return await self._lookup(
            ("forward", query), path, params, lambda data: self._forward_place(data, parsed)
        )

    async def reverse(self, lat: float, lon: float) -> Place | None:
        """The place the service finds at a point (within ``max_distance_m``), or None."""
        if check_lat_long(lat, lon):
            return None
        lat, lon = round(lat, 6), round(lon, 6)
        if self.settings.flavor == "pelias":
            path = "v1/reverse"
            params = {"point.lat": str(lat), "point.lon": str(lon), "size": "1"}
        else:
            path = "reverse"
            params = {
                "lat": str(lat),
                "lon": str(lon),
                "format": "jsonv2",
                "addressdetails": "1",
                "zoom": "18",
            }
        return await self._lookup(
            ("reverse", f"{lat:.6f}", f"{lon:.6f}"),
            path,
            params,
            lambda data: self._reverse_place(data, lat, lon),
        )

    async def _lookup(
        self,
        key: tuple[str, ...],
        path: str,
        params: dict[str, str],
        read: Callable[[Any], Place | None],
    ) -> Place | None:
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        try:
            place = read(await self._get(path, params))
        except _Failure as exc:
            log.warning("geocoder %s: %s", path, exc)
            return None
        except Exception:
            # A bug or a surprise must never fail the POST that asked.
            log.exception("geocoder %s: unexpected error", path)
            return None
        if self._cache is not None:
            self._cache[key] = place
        return place

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        merged = {**self.settings.params, **params}
        if self.settings.api_key is not None:
            merged[self.settings.api_key_param] = self.settings.api_key.get_secret_value()
        return merged

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        """The JSON answer of GET ``path``; raises ``_Failure`` saying what went wrong."""
        limit = self.settings.total_timeout_s
        try:
            async with asyncio.timeout(limit):
                self.calls += 1
                async with self._client.stream("GET", path, params=self._params(params)) as got:
                    if got.status_code != 200:
                        raise _Failure(f"the service answered HTTP {got.status_code}")
                    body = await self._read(got)
        except TimeoutError as exc:
            raise _Failure(f"no answer within {limit:g} s") from exc
        except httpx.TimeoutException as exc:
            raise _Failure(f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise _Failure(f"cannot reach the service ({type(exc).__name__})") from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Failure("the answer is not JSON") from exc

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self.settings.max_response_bytes
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"", "identity"}:
            raise _Failure(f"the answer is compressed ({encoding[:20]}), not asked for")
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _Failure(f"the answer is larger than {limit} bytes")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > limit:
                raise _Failure(f"the answer is larger than {limit} bytes")
        return bytes(body)

    # -- reading answers

    def _forward_place(self, data: Any, parsed: ParsedAddress | None) -> Place | None:
        if self.settings.flavor == "pelias":
            if not isinstance(data, dict) or not isinstance(data.get("features"), list):
                raise _Failure("the answer is not a GeoJSON FeatureCollection")
            features = data["features"]
            return _pelias_place(features[0], parsed) if features else None
        if not isinstance(data, list):
            raise _Failure("the answer is not a JSON list")
        return _nominatim_place(data[0], parsed) if data else None

    def _reverse_place(self, data: Any, lat: float, lon: float) -> Place | None:
        if self.settings.flavor == "pelias":
            if not isinstance(data, dict) or not isinstance(data.get("features"), list):
                raise _Failure("the answer is not a GeoJSON FeatureCollection")
            features = data["features"]
            place = _pelias_place(features[0], None) if features else None
        else:
            if not isinstance(data, dict):
                raise _Failure("the answer is not a JSON object")
            place = None if "error" in data else _nominatim_place(data, None)
        if place is None:
            return None
        metres = haversine_m(lat, lon, place.lat, place.lon)
        if metres > self.settings.max_distance_m:
            return None
        return Place(
            place.lat,
            place.lon,
            place.address,
            place.label,
            place.kind,
            place.confidence,
            distance_m=round(metres, 1),
        )


def _coordinate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Failure("a coordinate is not a number")
    try:
        return float(value)
    except ValueError as exc:
        raise _Failure("a coordinate is not a number") from exc


def _point(lat: Any, lon: Any) -> tuple[float, float]:
    point = _coordinate(lat), _coordinate(lon)
    if check_lat_long(*point):
        raise _Failure("a coordinate is out of range")
    return point


def _text(value: Any) -> str:
    return " ".join(value.split())[:MAX_LABEL_LENGTH] if isinstance(value, str) else ""


def _confidence(kind: PlaceKind, parsed: ParsedAddress | None, house: str) -> float:
    """How far to trust a service's answer that gives no confidence of its own."""
    if kind == "address":
        asked = parsed.number if isinstance(parsed, StreetAddress) else None
        return 0.9 if asked is not None and asked == fold(house) else 0.7
    return 0.4


def _nominatim_place(item: Any, parsed: ParsedAddress | None) -> Place | None:
    if not isinstance(item, dict):
        raise _Failure("a result is not a JSON object")
    lat, lon = _point(item.get("lat"), item.get("lon"))
    raw = item.get("address")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    house = _text(details.get("house_number"))
    road = next((_text(details[k]) for k in ROAD_KEYS if _text(details.get(k))), "")
    rank = item.get("place_rank")
    kind: PlaceKind
    if isinstance(rank, int) and not isinstance(rank, bool):
        # 30: a house or point of interest; 26-27: a street; lower: an area.
        if rank >= 28:
            kind = "address"
        elif rank >= 26:
            kind = "street"
        else:
            return None
    elif house:
        kind = "address"
    elif road:
        kind = "street"
    else:
        return None
    label = _text(item.get("display_name")) or f"{house} {road}".strip()
    if kind == "address" and house and road:
        found = parse_address(f"{house} {road}")
        address = found.normalized if found is not None else fold(label)
    else:
        address = (normalize_street(road) if road else None) or fold(label.split(",")[0])
    return Place(lat, lon, address, label, kind, _confidence(kind, parsed, house))


def _pelias_place(feature: Any, parsed: ParsedAddress | None) -> Place | None:
    if not isinstance(feature, dict):
        raise _Failure("a feature is not a JSON object")
    geometry = feature.get("geometry")
    properties = feature.get("properties")
    if not isinstance(geometry, dict) or not isinstance(properties, dict):
        raise _Failure("a feature has no geometry or properties")
    coordinates = geometry.get("coordinates")
    if geometry.get("type") != "Point" or not isinstance(coordinates, list):
        raise _Failure("a feature is not a Point")
    if len(coordinates) < 2:
        raise _Failure("a Point needs [longitude, latitude]")
    lat, lon = _point(coordinates[1], coordinates[0])
    layer = properties.get("layer")
    kinds: dict[Any, PlaceKind] = {
        "address": "address",
        "venue": "address",
        "street": "street",
        "intersection": "intersection",
    }
    kind = kinds.get(layer)
    if kind is None:
        return None
    name = _text(properties.get("name"))
    label = _text(properties.get("label")) or name
    found = parse_address(name) if name else None
    address = found.normalized if found is not None else fold(name or label)
    confidence = properties.get("confidence")
    if isinstance(confidence, int | float) and not isinstance(confidence, bool):
        score = min(1.0, max(0.0, float(confidence)))
    else:
        score = _confidence(kind, parsed, _text(properties.get("housenumber")))
    return Place(lat, lon, address, label, kind, round(score, 2))
