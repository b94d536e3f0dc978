"""ASGI middleware: response headers (rate limits, security) and load shedding."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _ResponseStartEditor:
    """Pass-through middleware that edits each ``http.response.start`` message (headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def edit(self, scope: Scope, message: Message) -> Message:
        """The message to send instead of ``message``."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, editing ``http.response.start``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_edited(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self.edit(scope, message)
            await send(message)

        await self.app(scope, receive, send_edited)


class RateLimitHeaders(_ResponseStartEditor):
    """Adds the RateLimit-* headers of the call's bucket (set by the read dependency)."""

    def edit(self, scope: Scope, message: Message) -> Message:
        """The headers of the bucket's decision, unless the response set them itself."""
        decision: Any = scope.get("state", {}).get("ratelimit")
        if decision is None:
            return message
        present = {k.lower() for k, _ in message.get("headers", [])}
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in decision.headers().items()
            if k.lower().encode("latin-1") not in present
        ]
        return {**message, "headers": [*message.get("headers", []), *extra]}


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


class SecurityHeaders(_ResponseStartEditor):
    """Headers every response carries; a Content-Security-Policy on HTML pages."""

    def edit(self, scope: Scope, message: Message) -> Message:
        """The security headers the response did not set itself."""
        headers = list(message.get("headers", []))
        present = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
        content_type = dict(headers).get(b"content-type", b"")
        if content_type.startswith(b"text/html") and b"content-security-policy" not in present:
            headers.append((b"content-security-policy", HTML_CSP))
        return {**message, "headers": headers}
