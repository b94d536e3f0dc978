"""Settings of the geocoder (``OPEN311_GEOCODE__*`` once attached to ``app.settings``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from app.geo.addresses import MAX_ADDRESS_LENGTH

DEFAULT_USER_AGENT = "open311-server (GeoReport v2; set OPEN311_GEOCODE__USER_AGENT)"


class GeocodeSettings(BaseModel):
    """Addresses to places: which geocoder, and its limits."""

    # embedded: the gazetteer built from imported address points (no outside service);
    # http: a Nominatim- or Pelias-compatible service at base_url; none: no geocoding.
    kind: Literal["embedded", "http", "none"] = "embedded"

    # -- http
    # The only place the HTTP geocoder calls (its search and reverse paths under it): the
    # operator's allow-list of one. No redirects are followed.
    base_url: str = ""
    flavor: Literal["nominatim", "pelias"] = "nominatim"
    # Public Nominatim's usage policy asks for an identifying User-Agent (and at most one
    # request per second: run your own instance for a city's traffic).
    user_agent: str = Field(default=DEFAULT_USER_AGENT, min_length=1, max_length=200)
    # Sent as ``api_key_param`` (Pelias/geocode.earth: api_key, LocationIQ: key).
    api_key: SecretStr | None = None
    api_key_param: str = Field(default="api_key", pattern=r"^[A-Za-z0-9_.\-]{1,40}$")
    # Fixed query parameters for every call, e.g. {"countrycodes": "ca"} (Nominatim) or
    # {"boundary.country": "CA"} (Pelias).
    params: dict[str, str] = Field(default_factory=dict, max_length=20)
    # Appended to every forward query, e.g. ", Toronto, Ontario" (city context).
    query_suffix: str = Field(default="", max_length=100)
    connect_timeout_s: float = Field(default=1.0, gt=0, le=30)
    read_timeout_s: float = Field(default=2.0, gt=0, le=30)
    # One lookup (waiting for a slot, connecting, reading) gives up after this long.
    total_timeout_s: float = Field(default=3.0, gt=0, le=60)
    max_response_bytes: int = Field(default=256 << 10, ge=1024, le=16 << 20)
    # Lookups in flight at once; beyond, a lookup waits (within total_timeout_s).
    max_concurrency: int = Field(default=4, ge=1, le=100)
    # Answers (found and not found; never failures) kept this long, this many.
    cache_size: int = Field(default=2048, ge=0, le=1_000_000)
    cache_ttl_s: float = Field(default=3600.0, gt=0, le=30 * 86400)

    # -- both
    # Reverse lookups: the nearest place within this many metres, else none.
    max_distance_m: float = Field(default=100.0, gt=0, le=10_000)
    # Longer addresses are not looked up.
    max_address_length: int = Field(default=MAX_ADDRESS_LENGTH, ge=16, le=MAX_ADDRESS_LENGTH)

    # -- embedded
    # An intersection not stored is worked out from the two streets' points within this.
    intersection_distance_m: float = Field(default=60.0, gt=0, le=1000)
    # No exact house number: the nearest on the street within this many numbers.
    max_number_gap: int = Field(default=100, ge=0, le=10_000)
    # Street names matched fuzzily at this rapidfuzz ratio (0-100) or better.
    fuzzy_cutoff: float = Field(default=90.0, ge=50, le=100)
    # An address-points file larger than this, or with more records, is refused.
    max_import_bytes: int = Field(default=512 << 20, ge=1024)
    max_import_records: int = Field(default=2_000_000, ge=1)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must have no credentials, query or fragment")
        return value.rstrip("/") + "/"

    @field_validator("user_agent")
    @classmethod
    def _user_agent(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise ValueError("user_agent must be printable ASCII")
        return value

    @model_validator(mode="after")
    def _http_needs_url(self) -> GeocodeSettings:
        if self.kind == "http" and not self.base_url:
            raise ValueError("geocode kind http needs base_url")
        if self.total_timeout_s < self.connect_timeout_s:
            raise ValueError("total_timeout_s must be at least connect_timeout_s")
        return self
