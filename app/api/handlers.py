"""One error pipeline: every failure becomes a GeoReport ``errors`` document.

The format comes from the path suffix, because the format dependency may not have run. The
descriptions are in the caller's language (``locale``, else ``Accept-Language``) where the
server's messages have it (``app.messages``), English otherwise; the answer names its language
(``Content-Language``, ``Vary: Accept-Language``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from app.api.deps import count_failed_auth
from app.api.i18n import error_locale, language_headers
from app.api.responses import render_errors
from app.errors import (
    FormatNotFound,
    InternalError,
    InvalidApiKey,
    InvalidParameter,
    MethodNotAllowed,
    Open311Error,
    RouteNotFound,
    ServiceUnavailable,
)
from app.georeport.formats import format_from_path
from app.messages import Text, translate
from app.store.engine import is_unavailable

log = logging.getLogger("open311.errors")


def _respond(request: Request, error: Open311Error) -> Response:
    locale = error_locale(request)
    errors = [(code, translate(description, locale)) for code, description in error.errors]
    headers = {**error.headers, **language_headers(locale)}
    return render_errors(errors, format_from_path(request.url.path), error.status_code, headers)


async def open311_error_handler(request: Request, exc: Exception) -> Response:
    """Render a domain error (a refused credential also counts against the caller's address)."""
    assert isinstance(exc, Open311Error)  # noqa: S101 - invariant, not an input check
    if isinstance(exc, InvalidApiKey):
        count_failed_auth(request)
    return _respond(request, exc)


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
    name = ".".join(loc) or "request"
    # pydantic's message is its own msgid: translated when the catalogue has that text.
    return Text("{name}: {msg}.", name=name, msg=Text(str(error.get("msg", "invalid value"))))


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 becomes the spec's 400 (an unknown format suffix is a 404)."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - invariant, not an input check
    errors = list(exc.errors())
    if any(tuple(e.get("loc", ())) == ("path", "format") for e in errors):
        return _respond(request, FormatNotFound())
    return _respond(request, InvalidParameter(*[_describe(e) for e in errors]))


def _allowed_methods(request: Request) -> list[str]:
    # Starlette reports only the first route whose path matched; a resource such as
    # requests.{format} has one route per method, so probe the router with each method.
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 (and any other HTTP error) in the GeoReport shape."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - invariant, not an input check
    error: Open311Error
    if exc.status_code == 404:
        error = RouteNotFound()
    elif exc.status_code == 405:
        error = MethodNotAllowed(headers={"Allow": ", ".join(_allowed_methods(request))})
    else:
        error = Open311Error(str(exc.detail))
        error.status_code = exc.status_code
    return _respond(request, error)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Log the failure; the client gets a spec-shaped 500 (or 503) without internals."""
    if is_unavailable(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        return _respond(
            request,
            ServiceUnavailable(
                Text("The service request database is temporarily unavailable. Please retry."),
                headers={"Retry-After": "1"},
            ),
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(request, InternalError())


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(Open311Error, open311_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
