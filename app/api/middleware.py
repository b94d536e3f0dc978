"""ASGI middleware: rate-limit headers on every limited response."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimitHeaders:
    """Adds the RateLimit-* headers of the call's bucket (set by the read dependency)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, adding headers to ``http.response.start``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Any = scope.get("state", {}).get("ratelimit")
                if decision is not None:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in decision.headers().items()
                        if k.lower().encode("latin-1") not in present
                    ]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoadShedder:
    """Refuses work beyond ``max_in_flight`` concurrent API calls with a fast 503.

    Accepted calls keep their latency instead of every call slowing down together; health and
    metrics endpoints are never shed.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, base_path: str) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.base_path = base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the call in, or answer 503 at once."""
        if scope["type"] != "http" or self.max_in_flight <= 0:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith(("/health", "/metrics")):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            from app.api.responses import render_errors
            from app.georeport.formats import format_from_path

            response = render_errors(
                [(503, "The server is at capacity. Please retry in a moment.")],
                format_from_path(path),
                503,
                {"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


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


class SecurityHeaders:
    """Headers every response carries; a Content-Security-Policy on HTML pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, adding the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                content_type = dict(headers).get(b"content-type", b"")
                if (
                    content_type.startswith(b"text/html")
                    and b"content-security-policy" not in present
                ):
                    headers.append((b"content-security-policy", HTML_CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
