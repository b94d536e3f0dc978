"""Errors of the GeoReport v2 API (pure Python, no FastAPI import).

Open311Error (status, code, description)
├── BadRequest (400)
│   ├── JurisdictionRequired
│   └── InvalidParameter
├── Forbidden (403)
│   └── InvalidApiKey
├── NotFound (404)
│   ├── JurisdictionNotFound, ServiceNotFound, RequestNotFound, TokenNotFound
│   └── FormatNotFound, RouteNotFound
├── MethodNotAllowed (405)
├── RequestTimeout (408)
├── PayloadTooLarge (413)
├── UriTooLong (414)
├── HeadersTooLarge (431)
├── Conflict (409)
├── TooManyRequests (429)
├── ServiceUnavailable (503)
└── InternalError (500)

One error may carry several problems (the GeoReport error document is a list). Descriptions
are English; the error handler answers in the caller's language where ``app.messages`` has a
translation (titles here are ``Text`` messages, so every one of them has).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.messages import Text


class Open311Error(Exception):
    """A failure rendered as a GeoReport ``errors`` document."""

    status_code: int = 400
    title: str = Text("Bad request")

    def __init__(self, *descriptions: str, headers: dict[str, str] | None = None) -> None:
        self.descriptions: list[str] = list(descriptions) or [self.title]
        self.headers = headers or {}
        super().__init__("; ".join(self.descriptions))

    @property
    def errors(self) -> list[tuple[int, str]]:
        """(code, description) pairs of this error document."""
        return [(self.status_code, d) for d in self.descriptions]

    @classmethod
    def collect(cls, descriptions: Iterable[str]) -> Open311Error | None:
        """One error of this class for all the problems given, or None when there are none."""
        items = list(descriptions)
        return cls(*items) if items else None


class BadRequest(Open311Error):
    """400: the request cannot be fulfilled as sent."""

    status_code = 400


class JurisdictionRequired(BadRequest):
    """400: jurisdiction_id is required on this multi-jurisdiction server."""

    title: str = Text("jurisdiction_id is required: this server hosts several jurisdictions.")


class InvalidParameter(BadRequest):
    """400: a parameter value is invalid."""


class Forbidden(Open311Error):
    """403: not allowed."""

    status_code = 403
    title: str = Text("Forbidden.")


class InvalidApiKey(Forbidden):
    """403: api_key missing, unknown or revoked."""

    title: str = Text("A valid api_key is required to submit service requests.")


class NotFound(Open311Error):
    """404: the resource does not exist."""

    status_code = 404
    title: str = Text("Not found.")


class JurisdictionNotFound(NotFound):
    """404: unknown jurisdiction_id."""


class ServiceNotFound(NotFound):
    """404: unknown service_code."""


class RequestNotFound(NotFound):
    """404: unknown service_request_id."""


class TokenNotFound(NotFound):
    """404: unknown token."""


class FormatNotFound(NotFound):
    """404: the path has no .xml/.json suffix."""

    title: str = Text("Unknown format: use a .xml or .json suffix on the resource path.")


class RouteNotFound(NotFound):
    """404: no such resource path."""

    title: str = Text(
        "No such resource. See the discovery document for the methods of this endpoint."
    )


class MethodNotAllowed(Open311Error):
    """405: the path exists but not with this HTTP method."""

    status_code = 405
    title: str = Text("Method not allowed on this resource.")


class Conflict(Open311Error):
    """409: the request conflicts with stored data."""

    status_code = 409
    title: str = Text("Conflict.")


class RequestTimeout(Open311Error):
    """408: the request body did not arrive in time."""

    status_code = 408
    title: str = Text("The request body did not arrive in time.")


class PayloadTooLarge(Open311Error):
    """413: the request body is larger than the server accepts."""

    status_code = 413
    title: str = Text("Request body too large.")


class UriTooLong(Open311Error):
    """414: the path and query string are longer than the server accepts."""

    status_code = 414
    title: str = Text("The request URL is too long.")


class HeadersTooLarge(Open311Error):
    """431: the request headers are larger than the server accepts."""

    status_code = 431
    title: str = Text("The request headers are too large.")


class TooManyRequests(Open311Error):
    """429: over the rate limit; retry after the time given in Retry-After."""

    status_code = 429
    title: str = Text(
        "Too many requests: over the rate limit. Retry after the time in Retry-After."
    )


class ServiceUnavailable(Open311Error):
    """503: the backend is unavailable; retry later."""

    status_code = 503
    title: str = Text("The service is temporarily unavailable. Please retry later.")


class InternalError(Open311Error):
    """500: an unexpected failure (details are logged, never sent)."""

    status_code = 500
    title: str = Text("Internal server error.")
