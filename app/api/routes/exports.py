"""Extension: streaming exports of requests (CSV, GeoJSON, NDJSON), for open-data portals and
partner systems that read in bulk."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.api.deps import (
    AppState,
    CatalogDep,
    JurisdictionDep,
    QueryDep,
    StateDep,
    ViewerDep,
    client_address,
)
from app.api.docs import documented, error_response
from app.api.filters import PAGING, parse_filters
from app.api.lean import LeanRoute
from app.api.schemas import JURISDICTION_ID, REQUEST_FILTERS
from app.domain.exports import ExportGate, export_body, key_segment, lease_seconds
from app.errors import RouteNotFound
from app.georeport.exports import CSV_COLUMNS, CSV_EXTENSION_COLUMNS, ExportFormat

router = APIRouter(tags=["exports (extension)"], route_class=LeanRoute)
log = logging.getLogger("open311.exports")

ExportFormatDep = Annotated[
    ExportFormat,
    Path(alias="format", description="The export's format: csv, geojson or ndjson."),
]
# GET requests' filters, without its paging (an export has no pages).
EXPORT_FILTERS = tuple(p for p in REQUEST_FILTERS if p["name"] not in PAGING)
GATE = "open311_export_gate"


class ExportResponse(StreamingResponse):
    """A streamed export that gives its slot back however it ends (done, failed, the client
    went away, or stopped reading for ``idle_timeout`` seconds: then the stream is cut, so a
    caller that never reads cannot hold an export slot). ``renew`` is awaited before each
    send (the caller's lease)."""

    def __init__(
        self,
        content: Any,
        release: Callable[[], Awaitable[None]],
        idle_timeout: float,
        renew: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self.release = release
        self.renew = renew
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def bounded_send(message: Message) -> None:
            await self.renew()
            # The server's send waits while the client's window is full (it reads nothing).
            async with asyncio.timeout(self.idle_timeout):
                await send(message)

        try:
            await super().__call__(scope, receive, bounded_send)
        except TimeoutError:
            log.info("export cut: the client read nothing for %.0f s", self.idle_timeout)
        finally:
            await self.release()


def export_gate(request: Request, state: AppState) -> ExportGate:
    """The app's export gate (made on first use): per process, and per caller across the
    processes of the store (``state``: the app's state)."""
    gate: ExportGate | None = getattr(request.app.state, GATE, None)
    if gate is None:
        settings = state.settings.exports
        gate = ExportGate(settings.max_concurrent, state.store.engine, lease_seconds(settings))
        setattr(request.app.state, GATE, gate)
    return gate


_ITEM = {"type": "object", "description": "A request: the fields of GET requests' items."}
_CONTENT: dict[str, Any] = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "RFC 4180 CSV with a header line: "
            + ", ".join(CSV_COLUMNS)
            + "; with extensions=true also "
            + ", ".join(CSV_EXTENSION_COLUMNS)
            + ". Text that a spreadsheet would take for a formula starts with an apostrophe.",
        }
    },
    "application/geo+json": {
        "schema": {
            "type": "object",
            "description": "RFC 7946 FeatureCollection: a Feature per request, its id the "
            "service_request_id, a Point geometry (null for a request located by address only) "
            "and the request's other fields as properties.",
            "required": ["type", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "features": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
    "application/x-ndjson": {
        "schema": {
            "type": "string",
            "description": "One JSON object per line, one line per request.",
        },
        "x-item-schema": _ITEM,
    },
}


@router.get(
    "/exports/requests.{format}",
    operation_id="exports-requests",
    response_class=Response,
    responses={
        200: {
            "description": "Every matching request (no result cap, newest requested first), "
            "public fields only, streamed in the path's format.",
            "content": _CONTENT,
        },
        **{status: error_response(status, xml=False) for status in (400, 404, 429, 500, 503)},
    },
    openapi_extra=documented(*EXPORT_FILTERS, JURISDICTION_ID),
)
async def export_requests(
    request: Request,
    fmt: ExportFormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Export requests: GET requests' filters (without dates: every request, no window), no
    result cap, streamed. One export at a time per caller (429 otherwise)."""
    settings = state.settings
    if not settings.exports.enabled:
        raise RouteNotFound()
    filters = parse_filters(query, jurisdiction.tz, settings.requests, export=True)
    caller = f"key:{viewer.id}" if viewer is not None else f"ip:{client_address(request)}"
    gate = export_gate(request, state)
    await gate.enter(caller)
    try:
        body = await export_body(state.store, jurisdiction, catalog, filters, fmt, settings, viewer)
    except BaseException:
        await gate.leave(caller)
        raise

    async def release() -> None:
        await body.stop()  # a COPY still running is cancelled, its connection closed
        await gate.leave(caller)

    async def renew() -> None:
        await gate.renew(caller)

    name = f"requests-{key_segment(jurisdiction.code)}.{fmt.value}"
    return ExportResponse(
        body.chunks,
        release,
        settings.exports.idle_timeout_s,
        renew,
        media_type=fmt.media_type,
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
