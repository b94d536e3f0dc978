"""The edge of the app: one ASGI middleware in front of everything.

Each ASGI middleware layer costs a call and a wrapped ``send`` on every request, so the
concerns every call shares live in one layer, :class:`Edge`, in this order:

1. input bounds, before any parsing or authentication: the URL (414) and the headers (431)
   are capped, and a request body is read here, whole, while it streams: over its limit it is
   a 413 (at once when ``Content-Length`` says so), and it must arrive within
   ``http.body_timeout_s`` (408), so a stalled upload frees its connection;
2. load shedding: beyond ``max_in_flight`` concurrent calls, a fast spec-shaped 503
   (health and metrics are never shed). Only calls whose body has arrived count: a thousand
   stalled uploads hold no slot. The calls in flight are the gauge
   ``open311_http_requests_in_flight``;
3. the request id (``X-Request-ID``), the access log line and the HTTP metrics
   (:class:`app.observability.AccessLog`);
4. CORS: calls with an ``Origin`` header go through Starlette's ``CORSMiddleware``; the others
   only get the ``Vary: Origin`` it would add;
5. response headers: the RateLimit-* headers of the call's bucket (set by the read
   dependency), the security headers, a Content-Security-Policy on HTML pages.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    HeadersTooLarge,
    Open311Error,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UriTooLong,
)
from app.georeport.codec import generated_writers
from app.observability import AccessLog, InFlight
from app.settings import HttpSettings, Settings

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Pages and docs are served with their assets from this server only.
HTML_CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    b"script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)
REQUEST_ID = b"x-request-id"
# Never shed: orchestrators and scrapers must see the process even when it is saturated.
UNSHED = ("/health", "/metrics")


def cors(app: ASGIApp, settings: Settings) -> CORSMiddleware:
    """Starlette's CORS middleware configured for browser apps (keys travel as parameters,
    credentials are never allowed)."""
    return CORSMiddleware(
        app,
        allow_origins=settings.http.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type", "Idempotency-Key", "Authorization", "X-Request-ID"],
        expose_headers=[
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "Idempotent-Replayed",
            "X-Next-Cursor",
            "X-Page-Size-Max",
            "Link",
            "X-Request-ID",
            # HTTP caching of the catalogue reads (Last-Modified, Cache-Control and
            # Content-Language are readable by any page already).
            "ETag",
        ],
        max_age=3600,
    )


def edit_headers(
    scope: Scope, headers: list[tuple[bytes, bytes]], request_id: str, cross_origin: bool
) -> list[tuple[bytes, bytes]]:
    """The response headers of a call with what the edge adds (headers the response set
    itself win, except ``X-Request-ID``, which is always the call's id)."""
    present = {key.lower() for key, _ in headers}
    out = headers
    if REQUEST_ID in present:
        out = [(k, v) for k, v in headers if k.lower() != REQUEST_ID]
    decision: Any = scope.get("state", {}).get("ratelimit")
    if decision is not None:
        for key, value in decision.headers().items():
            name = key.lower().encode("latin-1")
            if name not in present:
                out.append((name, value.encode("latin-1")))
    out += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
    if b"content-security-policy" not in present:
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html"):
            out.append((b"content-security-policy", HTML_CSP))
    if not cross_origin:
        # What CORSMiddleware adds to a call without an Origin header.
        vary = [v for k, v in out if k.lower() == b"vary"]
        if vary:
            out = [(k, v) for k, v in out if k.lower() != b"vary"]
        out.append((b"vary", b", ".join([*vary, b"Origin"])))
    out.append((REQUEST_ID, request_id.encode("latin-1")))
    return out


class Edge:
    """The outermost middleware of the app (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.cors = cors(app, settings)
        self.max_in_flight = settings.http.max_in_flight
        self.limits = settings.http
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.log = AccessLog(direct=settings.speed.direct_access_log)
        self.plain_xml = not settings.speed.xml_writers  # measuring the generated writers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = origin = None
        for key, value in scope["headers"]:
            if key == REQUEST_ID:
                incoming = value
            elif key == b"origin":
                origin = value
        request_id = self.log.request_id(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = self.log.bind(request_id)
        root_path = scope.get("root_path", "")
        cross_origin = origin is not None
        status = 500

        async def send_edited(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = edit_headers(
                    scope, list(message.get("headers", [])), request_id, cross_origin
                )
                message = {**message, "headers": headers}
            await send(message)

        counted = not scope["path"].startswith(UNSHED)
        plain = generated_writers.set(False) if self.plain_xml else None
        try:
            try:
                replay = await bounded_input(scope, receive, self.limits)
            except Open311Error as exc:
                await _refuse(scope, receive, send_edited, exc)
                return
            if replay is None:  # the client went away before its body arrived
                return
            receive = replay
            if counted and 0 < self.max_in_flight <= self.in_flight.calls:
                await self._shed(scope, receive, send_edited)
                return
            if counted:
                self.in_flight.calls += 1
            try:
                await (self.cors if cross_origin else self.app)(scope, receive, send_edited)
            finally:
                if counted:
                    self.in_flight.calls -= 1
        finally:
            if plain is not None:
                generated_writers.reset(plain)
            self.log.finish(
                scope, root_path, request_id, token, status, time.perf_counter() - started
            )

    @staticmethod
    async def _shed(scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(
            scope,
            receive,
            send,
            ServiceUnavailable(
                "The server is at capacity. Please retry in a moment.", headers={"Retry-After": "1"}
            ),
        )


async def _refuse(scope: Scope, receive: Receive, send: Send, error: Open311Error) -> None:
    """Answer a call at the edge with a GeoReport error document (format from the path)."""
    from app.api.responses import render_errors
    from app.georeport.formats import format_from_path

    status = error.status_code
    headers = dict(error.headers)
    if status in (408, 413, 431):
        # What is left of the request on the connection is not read: close it.
        headers["Connection"] = "close"
    response = render_errors(
        [(status, d) for d in error.descriptions], format_from_path(scope["path"]), status, headers
    )
    await response(scope, receive, send)


def _has_body(scope: Scope) -> tuple[bool, int | None, bool]:
    """(a body may follow, its declared length, it is multipart) from the headers."""
    length: int | None = None
    chunked = multipart = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            # Any length longer than 18 digits is over every limit (and int() refuses strings
            # of thousands of digits); a length that is not a number is read and counted.
            length = (int(value) if len(value) <= 18 else 1 << 62) if value.isdigit() else -1
        elif key == b"transfer-encoding":
            chunked = True
        elif key == b"content-type":
            multipart = value[:19].lower() == b"multipart/form-data"
    return chunked or bool(length), length, multipart


async def bounded_input(scope: Scope, receive: Receive, limits: HttpSettings) -> Receive | None:
    """Check the URL and headers against their caps and read the body, bounded in size and
    time; a ``receive`` that replays the body (None when the client disconnected).

    Raises UriTooLong, HeadersTooLarge, PayloadTooLarge or RequestTimeout.
    """
    if len(scope.get("raw_path") or b"") + len(scope["query_string"]) > limits.max_url_bytes:
        raise UriTooLong(f"The path and query string may be at most {limits.max_url_bytes} bytes.")
    if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > limits.max_header_bytes:
        raise HeadersTooLarge(
            f"The request headers may be at most {limits.max_header_bytes} bytes in all."
        )
    may_have_body, declared, multipart = _has_body(scope)
    if not may_have_body:
        return receive
    limit = limits.max_multipart_bytes if multipart else limits.max_body_bytes
    too_large = PayloadTooLarge(f"The request body may be at most {limit} bytes.")
    if declared is not None and declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None  # http.disconnect
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {limits.body_timeout_s:g} seconds."
        ) from None
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
