"""Operations: structured request logs, Prometheus metrics, health endpoints.

- **Logs**: one line per HTTP request (``time, level, request_id, method, path, status,
  duration_ms``) from :class:`AccessLog` (run by the edge middleware), JSON by default
  (``OPEN311_LOG_FORMAT=text`` for humans). The request id comes from a sane incoming
  ``X-Request-ID`` header or is generated, and is echoed in the response's ``X-Request-ID``;
  every log line written while the request runs carries it. Uvicorn's own lines go through
  the same formatter and its access log is switched off (ours replaces it).
- **Metrics** at ``GET /metrics`` (Prometheus text format): HTTP requests by route template,
  method and status, a latency histogram, service requests created per jurisdiction and
  service, and gauges read from the database at scrape time (cached a few seconds): open
  requests per ward, queue depth (queued batch submissions, pending webhook deliveries) and
  failed webhook deliveries. Counters live in this process: with ``--workers N`` each worker
  process counts its own calls (scrape each, or run one worker per container).
- **Health**: ``GET /health/live`` (the process answers; no database) and ``GET /health/ready``
  (the database answers within 1 s: 200, else 503 with ``Retry-After``).
- **Who may look**: ``/health/live`` is public (orchestrators). ``/metrics`` and
  ``/health/ready`` tell how the service and its database are doing and cost a database
  round trip: they answer callers sending ``Authorization: Bearer <metrics.api_key>`` and
  callers on loopback that came through no proxy (the container's own healthcheck, a
  Prometheus on the same host); anyone else gets a 403.

The SQL of the scrape-time gauges lives in ``app.store.stats``: it is operational bookkeeping
over the queue tables, not a GeoReport use case, so no domain module stands between.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from app.errors import Forbidden
from app.settings import Settings
from app.store.engine import ping
from app.store.stats import read_gauges

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# Ids we accept from a client or proxy: short, printable, no spaces (they end up in logs).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READY_TIMEOUT_S = 1.0
GAUGE_TTL_S = 5.0
GAUGE_TIMEOUT_S = 2.0

_request_id: ContextVar[str | None] = ContextVar("open311_request_id", default=None)
access_log = logging.getLogger("open311.access")
log = logging.getLogger("open311.observability")


def current_request_id() -> str | None:
    """The id of the HTTP request being handled, if any."""
    return _request_id.get()


def sane_request_id(value: str | None) -> str | None:
    """The incoming id when it is safe to log and echo, else None."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


# --- logs -----------------------------------------------------------------------------------

# Fields a request line carries besides the standard ones, in output order.
_ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client", "endpoint")
# uvicorn adds color_message (its message with ANSI colours) to some records.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def _record_time(created: float) -> str:
    """``created`` as UTC ISO 8601 with milliseconds and a Z (the second's text is reused
    while it lasts: a busy server writes many lines a second)."""
    fraction, whole = math.modf(created)
    micros = round(fraction * 1_000_000)  # as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    if _second[0] != whole:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[:] = [whole, text]
    return f"{_second[1]}.{micros // 1000:03d}Z"


def json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    request_id: str | None,
    fields: dict[str, Any],
    exception: str | None = None,
) -> str:
    """One JSON log line (without the newline): the standard keys, then ``fields``."""
    data: dict[str, Any] = {
        "time": _record_time(created),
        "level": level,
        "logger": logger,
        "message": message,
        "request_id": request_id,
    }
    for key, value in fields.items():
        if key not in data:
            data[key] = value
    if exception is not None:
        data["exception"] = exception
    return orjson.dumps(data, default=str).decode()


def text_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    request_id: str | None,
    fields: dict[str, Any],
    exception: str | None = None,
) -> str:
    """One readable line: time level logger [request id] message key=value ..."""
    extras = " ".join(f"{key}={fields[key]}" for key in _ACCESS_FIELDS if key in fields)
    line = f"{_record_time(created)} {level.upper():<7} {logger}"
    if request_id:
        line += f" [{request_id}]"
    line += f" {message}"
    if extras:
        line += f" {extras}"
    if exception is not None:
        line += "\n" + exception
    return line


class _LineFormatter(logging.Formatter):
    """A formatter writing each record with one of the line functions above (``line``)."""

    line: Callable[..., str]

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line (plus a traceback, if any)."""
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        }
        request_id = fields.pop("request_id", None) or current_request_id()
        return self.line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            request_id,
            fields,
            self.formatException(record.exc_info) if record.exc_info else None,
        )


class JsonFormatter(_LineFormatter):
    """One JSON object a line: time, level, logger, message, request_id and extra fields."""

    line = staticmethod(json_line)


class TextFormatter(_LineFormatter):
    """A readable line: time level logger [request id] message key=value ..."""

    line = staticmethod(text_line)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (like logging's last resort).

    Access lines written directly (``AccessLog.finish``) are queued with ``defer`` and written
    together at the end of the event loop's turn: one write for all the calls that finished in
    it. Any other record first writes what is queued, so lines keep their order.
    """

    _open311 = True

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []

    def defer(self, text: str) -> None:
        """Queue a finished line (with its newline) for the end of this turn of the loop."""
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(text)
            first = len(self._pending) == 1
        if first:
            try:
                asyncio.get_running_loop().call_soon(self.drain)
            except RuntimeError:  # no event loop here: write now
                self.drain()

    def drain(self) -> None:
        """Write the queued lines."""
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                try:
                    stream = sys.stderr
                    stream.write(text)
                    stream.flush()
                except Exception:  # like logging: a lost stderr loses lines, never a call
                    return

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.drain()
        super().emit(record)

    def flush(self) -> None:
        self.drain()
        super().flush()

    @property
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Send every log line to stderr in the configured format; idempotent."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_open311", False)]:
        old.flush()  # lines it still queues
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level.upper())
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    # Uvicorn's loggers (configured before the app is built) go through ours; its access
    # log would repeat our request line without the request id.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


# --- metrics --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ProcessMetrics:
    """Counters of this process, shared by every app built in it."""

    http_requests: Counter
    http_latency: Histogram
    created: Counter


@cache
def _process_metrics() -> _ProcessMetrics:
    # Built once per process and registered in no global registry: each app's registry
    # (built in install()) adds them, so apps built in tests never collide. No *_created
    # series: they double the output and dashboards use rate() anyway.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client: untyped
    return _ProcessMetrics(
        http_requests=Counter(
            "open311_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["endpoint", "method", "status"],
            registry=None,
        ),
        http_latency=Histogram(
            "open311_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template and method.",
            ["endpoint", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=None,
        ),
        created=Counter(
            "open311_service_requests_created",
            "Service requests created (POST of realtime/blackbox services, batch "
            "submissions processed by the worker), by jurisdiction and service_code.",
            ["jurisdiction", "service_code"],
            registry=None,
        ),
    )


def record_created(jurisdiction_code: str, service_code: str) -> None:
    """Count a service request stored by ``create_request`` (called right after it)."""
    _process_metrics().created.labels(jurisdiction_code, service_code).inc()


@dataclass(slots=True)
class _Snapshot:
    """Database gauges read at one scrape."""

    up: bool = False
    queued_submissions: int = 0
    pending_deliveries: int = 0
    failed_deliveries: int = 0
    open_by_ward: list[tuple[str, str, int]] = field(default_factory=list)


class DatabaseGauges(Collector):
    """Gauges computed from the database, refreshed at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = GAUGE_TTL_S) -> None:
        self.ttl = ttl
        self.snapshot = _Snapshot()
        self._read_at = -1e9
        self._lock = asyncio.Lock()

    async def refresh(self, engine: AsyncEngine) -> None:
        """Read the gauges again unless the last reading is recent."""
        if time.monotonic() - self._read_at < self.ttl:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < self.ttl:
                return
            try:
                async with asyncio.timeout(GAUGE_TIMEOUT_S):
                    self.snapshot = await self._read(engine)
            except Exception as exc:  # a scrape must answer even when the database does not
                log.warning("metrics: database gauges unavailable: %r", exc)
                self.snapshot = _Snapshot(up=False)
            self._read_at = time.monotonic()

    @staticmethod
    async def _read(engine: AsyncEngine) -> _Snapshot:
        gauges = await read_gauges(engine)
        return _Snapshot(
            up=True,
            queued_submissions=gauges.queued_submissions,
            pending_deliveries=gauges.pending_deliveries,
            failed_deliveries=gauges.failed_deliveries,
            open_by_ward=[(c.jurisdiction, c.ward or "none", c.count) for c in gauges.open_by_ward],
        )

    def collect(self) -> Iterator[Metric]:
        """The last snapshot as Prometheus gauges."""
        snap = self.snapshot
        yield GaugeMetricFamily(
            "open311_database_up",
            "1 when the last scrape could read the database gauges, else 0.",
            value=1 if snap.up else 0,
        )
        if not snap.up:
            return
        depth = GaugeMetricFamily(
            "open311_queue_depth",
            "Work waiting for the worker: queued batch submissions, pending webhook deliveries.",
            labels=["queue"],
        )
        depth.add_metric(["submissions"], snap.queued_submissions)
        depth.add_metric(["webhook_deliveries"], snap.pending_deliveries)
        yield depth
        yield GaugeMetricFamily(
            "open311_webhook_deliveries_failed",
            "Webhook deliveries that failed after their last attempt.",
            value=snap.failed_deliveries,
        )
        open_requests = GaugeMetricFamily(
            "open311_open_service_requests",
            "Open service requests (sandbox excluded) by jurisdiction and ward code "
            "('none': outside every ward or without a location).",
            labels=["jurisdiction", "ward"],
        )
        for jurisdiction, ward, n in snap.open_by_ward:
            open_requests.add_metric([jurisdiction, ward], n)
        yield open_requests


# --- request ids, request log, HTTP metrics --------------------------------------------------


def _endpoint(scope: Scope, root_path: str) -> str:
    """The route template that handled a call (label values stay few), or 'unmatched'.

    FastAPI routes leave themselves in ``scope["route"]``; a mount (static files) only
    extends ``root_path``; another Starlette route (``/openapi.json``) only sets ``endpoint``.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if template:
        return _with_prefix(str(template), getattr(route, "path_regex", None), scope, root_path)
    if "endpoint" not in scope:
        return "unmatched"
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    if mounted:
        return f"{mounted}/{{path}}"
    if not scope.get("path_params"):
        return str(scope["path"])
    return "unmatched"


def _with_prefix(template: str, regex: Any, scope: Scope, root_path: str) -> str:
    # Depending on the FastAPI version, the route of an included router carries the
    # router's prefix in its template or not; when not, the (literal) prefix is the part of
    # the path before what the route's own pattern matches.
    path = str(scope["path"])
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    if regex is None or regex.match(path):
        return template
    for index, char in enumerate(path):
        if char == "/" and index and regex.match(path[index:]):
            return path[:index] + template
    return template


class AccessLog:
    """Request ids, one log line and the HTTP metrics of every call (used by the edge
    middleware, ``app.api.middleware.Edge``)."""

    def __init__(self, *, direct: bool = True) -> None:
        self.metrics = _process_metrics()
        # Off (``speed.direct_access_log``): every line goes through logging and its formatter.
        self.direct = direct
        # Route template of each route object (routes live as long as the app).
        self._templates: dict[int, str] = {}
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    @staticmethod
    def request_id(incoming: bytes | None) -> str:
        """A sane incoming ``X-Request-ID`` or a new id."""
        if incoming is not None:
            sane = sane_request_id(incoming.decode("latin-1"))
            if sane is not None:
                return sane
        return os.urandom(16).hex()

    @staticmethod
    def bind(request_id: str) -> Token[str | None]:
        """Make ``request_id`` the current one (log lines written meanwhile carry it)."""
        return _request_id.set(request_id)

    def finish(
        self,
        scope: Scope,
        root_path: str,
        request_id: str,
        token: Token[str | None],
        status: int,
        elapsed: float,
    ) -> None:
        """Count the call, time it and write its log line."""
        endpoint = self._endpoint(scope, root_path)
        method: str = scope["method"]
        counter = self._counters.get((endpoint, method, status))
        if counter is None:
            counter = self.metrics.http_requests.labels(endpoint, method, str(status))
            self._counters[(endpoint, method, status)] = counter
        counter.inc()
        timer = self._timers.get((endpoint, method))
        if timer is None:
            timer = self._timers[(endpoint, method)] = self.metrics.http_latency.labels(
                endpoint, method
            )
        timer.observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            path: str = scope["path"]
            fields = {
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client": client[0] if client else None,
                "endpoint": endpoint,
            }
            direct = _direct_writer() if self.direct else None
            if direct is None:
                access_log.info(
                    "%s %s %s", method, path, status, extra={"request_id": request_id, **fields}
                )
            else:
                handler, line = direct
                message = f"{method} {path} {status}"
                text = line(time.time(), "info", _ACCESS, message, request_id, fields)
                handler.defer(text + "\n")
        _request_id.reset(token)

    def _endpoint(self, scope: Scope, root_path: str) -> str:
        route = scope.get("route")
        if route is None or root_path:
            return _endpoint(scope, root_path)
        template = self._templates.get(id(route))
        if template is None:
            template = _endpoint(scope, root_path)
            if template != "unmatched":
                self._templates[id(route)] = template
        return template


_ACCESS = access_log.name


def _direct_writer() -> tuple[_StderrHandler, Any] | None:
    """Our handler and its line function, when that handler is the only one an access line
    would reach (the usual case in a server process): the line is then written straight to
    standard error, exactly as the handler would write it, without building a LogRecord and
    going through the logging machinery. None when logging must run (other handlers,
    filters, tests capturing records)."""
    root = logging.getLogger()
    logger: logging.Logger = access_log
    while logger is not root:
        if logger.handlers or logger.filters or not logger.propagate or logger.parent is None:
            return None
        logger = logger.parent
    handlers = root.handlers
    if len(handlers) != 1 or root.filters:
        return None
    handler = handlers[0]
    if not isinstance(handler, _StderrHandler) or handler.filters:
        return None
    if handler.level > logging.INFO:
        return None
    formatter = handler.formatter
    if type(formatter) is JsonFormatter or type(formatter) is TextFormatter:
        return handler, formatter.line
    return None  # a formatter of someone else's (or a subclass): let it format


# --- routes ---------------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def may_observe(request: Request) -> None:
    """403 unless the caller may read /metrics and /health/ready (see the module docstring).

    A proxy on loopback would make every caller look local, so a call carrying proxy
    headers is never taken for a local one."""
    settings: Settings = request.app.state.open311.settings
    secret = settings.metrics.api_key
    if secret:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), secret.encode()
        ):
            return
    client = request.client
    headers = request.headers
    if (
        client is not None
        and _loopback(client.host)
        and "x-forwarded-for" not in headers
        and "forwarded" not in headers
    ):
        return
    raise Forbidden(
        "Metrics and readiness answer local callers, or callers sending "
        "'Authorization: Bearer <OPEN311_METRICS__API_KEY>'."
    )


def _router(registry: CollectorRegistry, gauges: DatabaseGauges) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    guarded = [Depends(may_observe)]

    @router.get("/health/live")
    async def live() -> JSONResponse:
        """The process is up (no database involved)."""
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @router.get("/health/ready", dependencies=guarded)
    async def ready(request: Request) -> JSONResponse:
        """The database answers within a second: 200, else 503."""
        engine: AsyncEngine = request.app.state.open311.engine
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await ping(engine)
        except Exception as exc:  # any failure to reach the database means "not ready"
            log.warning("readiness: database unavailable: %r", exc)
            return JSONResponse(
                {"status": "unavailable"},
                status_code=503,
                headers={"Retry-After": "5", "Cache-Control": "no-store"},
            )
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @router.get("/metrics", dependencies=guarded)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (text exposition format)."""
        await gauges.refresh(request.app.state.open311.engine)
        return Response(generate_latest(registry), media_type=METRICS_CONTENT_TYPE)

    return router


class InFlight:
    """The API calls of one app being answered now (kept by the edge middleware)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


class _InFlightGauge(Collector):
    def __init__(self, in_flight: InFlight) -> None:
        self.in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "open311_http_requests_in_flight",
            "API calls being answered now (health and metrics calls aside); beyond "
            "OPEN311_HTTP__MAX_IN_FLIGHT, calls are shed with a 503.",
        )
        gauge.add_metric([], self.in_flight.calls)
        yield gauge


def install(app: FastAPI, settings: Settings, in_flight: InFlight) -> None:
    """Logging, /metrics (with the ``in_flight`` gauge the edge middleware keeps) and
    /health/* on an app."""
    configure_logging(settings)
    registry = CollectorRegistry(auto_describe=False)
    process = _process_metrics()
    for collector in (process.http_requests, process.http_latency, process.created):
        registry.register(collector)
    registry.register(_InFlightGauge(in_flight))
    gauges = DatabaseGauges()
    registry.register(gauges)
    app.include_router(_router(registry, gauges))
