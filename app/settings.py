"""Settings: one tree, prefix ``OPEN311_``, nested groups with ``__``.

With no database URL the server runs on the embedded default (SQLite file + Shapely).
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.geo.settings import GeocodeSettings
from app.media.settings import MediaSettings

EMBEDDED_DB_FILE = "open311.db"


class DatabaseSettings(BaseModel):
    """Database connection; empty ``url`` means the embedded SQLite default."""

    url: str = ""
    sqlite_path: Path = Path(EMBEDDED_DB_FILE)
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout: float = 5.0
    # Pooled connections are replaced after this many seconds.
    pool_recycle_s: int = 1800
    # Connecting to PostgreSQL gives up after this long (then: 503 with Retry-After).
    connect_timeout_s: float = 1.0
    statement_timeout_ms: int = 15_000
    echo: bool = False


class DiscoverySettings(BaseModel):
    """Fields of the discovery document that describe this deployment."""

    contact: str = "Open311 operator: set OPEN311_DISCOVERY__CONTACT"
    key_service: str = "Ask the operator for an API key (open311 keys create)."
    # Public base URL of this server as clients see it (no trailing slash). Empty: derived
    # from the request's Host when that names one of http.allowed_hosts, else from the
    # address the connection arrived at (never from an arbitrary Host header).
    public_url: str = ""
    endpoint_type: Literal["production", "test"] = "production"
    # Extra endpoints advertised in discovery, e.g. a sandbox: [{"url": ..., "type": "test"}]
    extra_endpoints: list[dict[str, str]] = Field(default_factory=list)


class RequestsSettings(BaseModel):
    """Limits and defaults of GET requests / POST requests."""

    default_window_days: int = 90
    # Also the most ids one service_request_id list may name. Bounded so that no list filter
    # comes near SQLite's limit of 32,766 bound parameters.
    max_results: int = Field(default=1000, ge=1, le=10_000)
    description_max_length: int = 4000
    text_max_length: int = 1000
    attribute_value_max_length: int = 4000
    max_attributes: int = 100
    max_media_urls: int = 10
    success_status_code: Literal[200, 201] = 200
    # Where filters of GET requests: the largest radius (metres) and bbox side (degrees).
    radius_max_m: float = Field(default=50_000.0, gt=0, le=1_000_000)
    bbox_max_span_deg: float = Field(default=2.0, gt=0, le=360)
    # Text search (q=): the longest query and the most words it may hold.
    q_max_length: int = Field(default=200, ge=1, le=1000)
    q_max_words: int = Field(default=8, ge=1, le=32)
    # GET requests/nearby: open requests of the service this close (metres) and this recent.
    nearby_radius_m: float = Field(default=200.0, gt=0, le=10_000)
    nearby_max_age_days: int = Field(default=60, ge=1, le=3650)
    nearby_max_results: int = Field(default=20, ge=1, le=200)
    # extensions=true: the newest updates of a request's history shown (its notes).
    extensions_max_notes: int = Field(default=100, ge=1, le=1000)


class WardSettings(BaseModel):
    """Ward geocoding."""

    # A point outside every ward but within this many metres of one belongs to the nearest.
    tolerance_m: float = Field(default=5.0, ge=0, le=1000)


class RateLimitSettings(BaseModel):
    """Token-bucket limits (requests per minute; burst = the same number). 0 disables."""

    # Each API key (a key's own rate_limit_per_minute wins); shared across processes on
    # PostgreSQL.
    per_key_per_minute: int = Field(default=600, ge=1)
    # Anonymous GETs per client IP, per server process.
    anonymous_per_minute: int = Field(default=1200, ge=0)
    # Calls refused for a bad credential (unknown or revoked api_key, missing or bad admin
    # key) per client IP, per server process; beyond, that address's keyed calls (POST,
    # DELETE, admin API) get a 429 until the bucket refills.
    failed_auth_per_minute: int = Field(default=30, ge=0)
    # Client addresses whose buckets one process remembers (memory bound); when full, the
    # buckets that will be full again soonest are forgotten first (a limited client is not).
    max_tracked_clients: int = Field(default=100_000, ge=10)


class WorkerSettings(BaseModel):
    """The background worker (batch submissions, webhooks)."""

    # Run the worker loop inside each API process, on both backends (several loops are safe:
    # their claims use SKIP LOCKED on PostgreSQL). Turn it off where a dedicated
    # `open311 worker` runs (docker compose does).
    in_process: bool = True
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)


class WebhookSettings(BaseModel):
    """Where webhook deliveries may go, and how much of the worker one app may take."""

    # Off (the default): webhook URLs must be public addresses, checked when registered and
    # on every connection. On: private, loopback and link-local targets are allowed too.
    allow_private_targets: bool = False
    # Deliveries in flight at once per worker process, in all and per app (a slow app's
    # endpoint holds at most per_app_concurrency of them; the others keep going).
    concurrency: int = Field(default=10, ge=1, le=1000)
    per_app_concurrency: int = Field(default=2, ge=1, le=100)
    # A feed subscription's deliveries go in order: one claim sends up to this many of them,
    # one after the other (a failure stops them; the rest wait for its retry).
    feed_batch: int = Field(default=20, ge=1, le=100)
    # How far back an app may replay a feed subscription's events (POST webhooks/{id}/replay).
    max_replay_days: int = Field(default=7, ge=1, le=365)


class FederationSettings(BaseModel):
    """Partner (remote) jurisdictions: timeouts, refresh, retries and the circuit breaker."""

    # Every call to a partner gives up after this long (then: 504, or a retry later).
    timeout_s: float = Field(default=3.0, gt=0, le=60)
    # A partner answer larger than this (on the wire or decompressed) is refused (502) as
    # soon as it passes the limit.
    max_response_bytes: int = Field(default=32 << 20, ge=1024, le=1 << 30)
    # The worker refreshes each partner's mirrored services and synced requests this often.
    refresh_interval_s: float = Field(default=300.0, ge=1)
    # After this many consecutive failures a partner's circuit opens for breaker_reset_s:
    # calls to it fail at once (503) until one trial call after the pause succeeds.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    # Forwarded POSTs are retried with exponential backoff between these bounds.
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    # Request sync: the last sync_days of requested_datetime, in slices of sync_slice_days.
    sync_days: int = Field(default=30, ge=1, le=3650)
    sync_slice_days: int = Field(default=7, ge=1, le=365)


class HttpSettings(BaseModel):
    """HTTP-level protections."""

    # Concurrent API calls one server process works on; beyond, a fast 503 (0: no limit).
    # A call counts once its body has arrived: a stalled upload never holds a slot.
    max_in_flight: int = Field(default=256, ge=0)
    # Request bodies, enforced by the edge while the body streams, before any parsing or
    # authentication (413 beyond): form and JSON bodies, and multipart bodies.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_multipart_bytes: int = Field(default=10 << 20, ge=1024)
    # The whole body must arrive within this many seconds of the headers (408 otherwise).
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # Path plus query string (414 beyond) and all request headers together (431 beyond).
    max_url_bytes: int = Field(default=8192, ge=256)
    max_header_bytes: int = Field(default=16384, ge=1024)
    # Browser apps: origins allowed by CORS ("*": any; credentials are never allowed, keys
    # travel as parameters).
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # CIDR networks, "*" for any). Empty: nobody's; the client is the connecting peer. With
    # proxies named, the client is the rightmost address in X-Forwarded-For that is not one.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Host names (without port) that links may be built from when discovery.public_url is
    # empty ("*": any Host, as sent). Another Host is not echoed: links then use the address
    # the connection arrived at.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_case_hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().lower() for host in value]


_HEADER_TEXT = re.compile(r"[\x20-\x7e]{1,200}")


class CacheSettings(BaseModel):
    """HTTP caching of the catalogue reads (discovery, services, service definitions, areas)
    and of single requests (GET requests/{id})."""

    # Their Cache-Control (also on their 304s): how long clients and shared caches may reuse
    # an answer without asking again. After that their ETag / Last-Modified make asking cheap
    # (a 304 without a body). E.g. "no-cache" to have every use revalidated.
    control: str = "public, max-age=60"
    # The Cache-Control of GET requests/{id} (and its 304s): requests change, so by default
    # every use is revalidated (a cheap 304 when unchanged). An answer with the reporter's
    # fields, or of a sandbox request, is always "private, no-cache".
    request_control: str = "no-cache"

    @field_validator("control", "request_control")
    @classmethod
    def _header_value(cls, value: str) -> str:
        value = value.strip()
        if not _HEADER_TEXT.fullmatch(value):
            raise ValueError("must be 1 to 200 printable ASCII characters (a header value)")
        return value


class ExportSettings(BaseModel):
    """Streaming exports of requests (``GET exports/requests.{csv,geojson,ndjson}``,
    ``open311 export``) and the worker's daily dump files (``app.domain.exports``)."""

    # Off: GET exports answers 404 (the discovery document no longer lists it).
    enabled: bool = True
    # Requests read per batch (one keyset read each): the memory an export holds at once.
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    # PostgreSQL writes an export's rows itself (COPY of the same read, the same bytes, many
    # times faster); off: they are encoded in Python a batch at a time, as on SQLite.
    sql_copy: bool = True
    # Exports streamed at once by one server process; one more answers 429 (Retry-After).
    # Each caller (API key, else address) has at most one export at a time.
    max_concurrent: int = Field(default=4, ge=1, le=256)
    # An export whose client reads nothing for this long is cut (its slot given back).
    idle_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # The worker writes each jurisdiction's daily dump (CSV and GeoJSON, gzip, and a
    # manifest.json) to the object store of media (media.backend: local or s3).
    dumps_enabled: bool = False
    # The hour (UTC) from which the day's dump is due; it is written once a day.
    dump_hour_utc: int = Field(default=3, ge=0, le=23)
    # Object keys of the dumps: {dump_prefix}/{jurisdiction}/{YYYY-MM-DD}/requests.csv.gz, ...
    dump_prefix: str = Field(default="exports", pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$")


class MetricsSettings(BaseModel):
    """Who may read /metrics and /health/ready."""

    # A secret of your choosing: callers sending "Authorization: Bearer <api_key>" may read
    # them from anywhere. Without it (or without that header), only callers on loopback that
    # came through no proxy may (e.g. the container's own healthcheck).
    api_key: str = ""


class ServicePromiseSettings(BaseModel):
    """Service levels, channels and first contact (``app.domain.channels``)."""

    # A request closed by the staff key that filed it, at most this many minutes after it was
    # made, was resolved at first contact.
    first_contact_minutes: int = Field(default=30, ge=0, le=24 * 60)

    @property
    def first_contact_window(self) -> timedelta:
        """``first_contact_minutes`` as a duration."""
        return timedelta(minutes=self.first_contact_minutes)


class SpeedSettings(BaseModel):
    """Hand-made speed layers, each on by default. Not documented on purpose: turning one off
    runs the library path instead, only so that ``python -m bench --layers`` can measure what
    the layer buys (issue 17)."""

    # app.api.lean.LeanRoute; off: FastAPI's own request handler on every route.
    lean_route: bool = True
    # The stores' own statement paths: compiled statements run by asyncpg on connections of
    # the engine's pool (app.store.engine.Direct), or by sqlite3 on the embedded store's
    # connections (app.store.sqlite); off: SQLAlchemy executes them.
    direct_pool: bool = True
    # app.georeport.codec's generated item writers; off: lists are written by ``_write``.
    xml_writers: bool = True
    # The access line written straight to stderr; off: through ``logging`` and its formatter.
    direct_access_log: bool = True
    # Datetimes of GET requests rendered by the store (PostgreSQL's ``to_char``; the embedded
    # store's W3C text on its connection's thread); off: ``format_w3c``.
    sql_timestamps: bool = True


class Settings(BaseSettings):
    """All configuration of the server."""

    model_config = SettingsConfigDict(
        env_prefix="OPEN311_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    base_path: str = "/open311/v2"
    # When set, the server is in single-jurisdiction mode for this id; when empty and the
    # database holds exactly one jurisdiction, that one is the default; otherwise
    # jurisdiction_id is required on every call (multi-jurisdiction mode).
    default_jurisdiction: str = ""
    multi_jurisdiction: bool | None = None
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    requests: RequestsSettings = Field(default_factory=RequestsSettings)
    wards: WardSettings = Field(default_factory=WardSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    exports: ExportSettings = Field(default_factory=ExportSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    service_promise: ServicePromiseSettings = Field(default_factory=ServicePromiseSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    geocode: GeocodeSettings = Field(default_factory=GeocodeSettings)
    speed: SpeedSettings = Field(default_factory=SpeedSettings)
    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"

    @field_validator("base_path")
    @classmethod
    def _normalise_base_path(cls, value: str) -> str:
        value = "/" + value.strip("/")
        return "" if value == "/" else value

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL in force (embedded SQLite when none is configured)."""
        if self.db.url:
            url = self.db.url
            if url.startswith("postgres://"):
                url = "postgresql://" + url.removeprefix("postgres://")
            if url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite+aiosqlite:///{self.db.sqlite_path}"

    @property
    def embedded(self) -> bool:
        """True when running on the embedded SQLite default."""
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()
