"""The public map page: recent requests by ward, with charts and filters.

``GET /`` (and ``/map``) serves one HTML page; its script reads the GeoReport API itself
(``areas.json?geometry=true`` for the ward polygons, ``requests.json?extensions=true`` for the
points) plus ``GET /web/summary.json`` for counts over the whole window. Leaflet and Chart.js
are vendored under ``static/vendor`` (from the npm registry, with their licences) and served
by the app: the page loads nothing from elsewhere (its Content-Security-Policy says so) and
needs no tile server, so it works offline and on the embedded default.

This package is an HTTP adapter like ``app.api`` and reuses its dependencies.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from app.api.deps import JurisdictionDep, QueryDep, StateDep, ViewerDep, read_access
from app.api.filters import parse_filters
from app.api.routes import reports as reports_api
from app.georeport.datetimes import format_w3c
from app.georeport.params import Parameters
from app.store.tables.base import utcnow
from app.web.report_page import CSP as REPORT_CSP
from app.web.report_page import key_metrics_page, service_promise_page
from app.web.stats import Window, data_range, default_window, summarize

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE = HERE / "templates" / "map.html"
STATIC_PATH = "/web/static"
SUMMARY_PATH = "/web/summary.json"
JSON_TYPE = "application/json; charset=utf-8"
# Everything from this server; inline styles only as set by Leaflet/Chart.js at run time.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/map")
async def map_page(request: Request, state: StateDep) -> HTMLResponse:
    """The map page."""
    root = request.scope.get("root_path", "").rstrip("/")
    values = {
        "api": root + state.settings.base_path,
        "summary": root + SUMMARY_PATH,
        "static": root + STATIC_PATH,
    }
    page = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        page = page.replace("{{ " + name + " }}", html.escape(value, quote=True))
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


@router.get(SUMMARY_PATH, dependencies=[Depends(read_access)])
async def summary(state: StateDep, query: QueryDep) -> Response:
    """Counts per ward and per service for the page's filters (GET requests parameters).

    Without start_date/end_date the window is the last ``default_window_days`` days up to
    the newest request, so imported or demo data shows at once.
    """
    registry = state.jurisdictions
    given = query.one("jurisdiction_id")
    everyone = await registry.all()
    if not given and everyone and await registry.is_multi():
        jurisdiction = everyone[0]  # the page offers the others in a list
    else:
        jurisdiction = await registry.resolve(given)
    # The page filters by the GET requests parameters but service_request_id (not a filter).
    params = Parameters([(k, v) for k, v in query.pairs if k != "service_request_id"])
    limits = state.settings.requests
    filters = parse_filters(params, jurisdiction.tz, limits)
    async with state.engine.connect() as conn:
        first_at, last_at = await data_range(conn, jurisdiction)
        if not any(query.one(name) for name in ("start_date", "end_date")):
            window = default_window(last_at, utcnow(), limits.default_window_days, jurisdiction.tz)
        else:
            assert filters.start is not None  # noqa: S101 - invariant, not an input check
            assert filters.end is not None  # noqa: S101 - invariant, not an input check
            window = Window(filters.start, filters.end)
        catalog = await state.catalogs.get(jurisdiction.pk)
        counts = await summarize(conn, jurisdiction, catalog, filters, window)
    tz = jurisdiction.tz
    body = {
        "jurisdiction": {
            "jurisdiction_id": jurisdiction.code,
            "name": jurisdiction.name,
            "timezone": str(tz),
        },
        "jurisdictions": [{"jurisdiction_id": j.code, "name": j.name} for j in everyone],
        "data_range": {
            "first": format_w3c(first_at, tz) if first_at else None,
            "last": format_w3c(last_at, tz) if last_at else None,
        },
        "max_points": limits.max_results,
        **counts,
    }
    return Response(orjson.dumps(body), media_type=JSON_TYPE)


@router.get("/web/reports/{report}.html", dependencies=[Depends(read_access)])
async def report_page(
    request: Request,
    report: Literal["service-promise", "key-metrics"],
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> HTMLResponse:
    """The printable page of a report (``app.web.report_page``), for the same keys and with
    the same parameters as its JSON (``app.api.routes.reports``)."""
    await reports_api.reader(request, state, viewer, jurisdiction.pk)
    if report == "service-promise":
        built = await reports_api.service_promise_report(state, jurisdiction, query)
        page = service_promise_page(built)
    else:
        built = await reports_api.key_metrics_report(state, jurisdiction, query)
        page = key_metrics_page(built)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": REPORT_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )


def install(app: FastAPI) -> None:
    """Serve the page at / and /map, its assets under /web/static and the summary JSON."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="web-static")
    app.include_router(router)
