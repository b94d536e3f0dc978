"""Extension: the service-promise reports (``app.domain.reports``) in JSON or CSV (the
printable HTML page with charts is ``app.web``'s, ``/web/reports/{report}.html``).

For an API key with the ``reports`` or ``admin`` scope (not a sandbox key), as
``Authorization: Bearer <key>`` or the ``api_key`` parameter (so the page opens in a browser,
as every GeoReport read does; the access log never records query strings). Errors are
GeoReport error documents: JSON for ``.json``, XML otherwise (the rule of every path).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api.deps import JurisdictionDep, QueryDep, StateDep, ViewerDep, bearer_token
from app.api.docs import JSON_MEDIA, documented, error_response
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID, query_parameter, text_parameter
from app.domain import policy
from app.domain import reports as domain
from app.domain.api_keys import KeyInfo
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.submissions import check_key_and_limit
from app.errors import InvalidParameter
from app.georeport.formats import Format
from app.georeport.params import Parameters

router = APIRouter(tags=["reports (extension)"])

ReportFormat = Annotated[
    Literal["json", "csv"],
    Path(description="json or csv.", examples=["json"]),
]
CSV_MEDIA = "text/csv; charset=utf-8"
API_KEY = text_parameter(
    "api_key",
    "A key with the reports or admin scope (or send it as Authorization: Bearer).",
)
START = query_parameter(
    "start",
    {"type": "string", "format": "date", "maxLength": 10},
    "First local day of the period (YYYY-MM-DD); default: 1 January of the year of the "
    "newest request.",
)
END = query_parameter(
    "end",
    {"type": "string", "format": "date", "maxLength": 10},
    "Last local day of the period (YYYY-MM-DD, inclusive; at most "
    f"{domain.MAX_PERIOD_DAYS} days after start); default: 31 December of start's year.",
)
GROUP_BY = query_parameter(
    "group_by",
    {"type": "string", "enum": [g.value for g in domain.GroupBy]},
    "What each row is: division (default), service, ward, channel or month.",
)
YEAR = query_parameter(
    "year",
    {"type": "integer", "minimum": domain.MIN_YEAR, "maximum": domain.MAX_YEAR},
    "The year (default: the year of the newest request).",
)
_FIGURES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "group": {"type": "string"},
        "label": {"type": "string"},
        **{
            name: {"type": ["number", "null"] if "rate" in name or "hours" in name else "integer"}
            for name in domain.FIGURES
        },
    },
}
SERVICE_PROMISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["report", "jurisdiction_id", "start", "end", "group_by", "groups", "total"],
    "properties": {
        "report": {"const": "service-promise"},
        "jurisdiction_id": {"type": "string"},
        "start": {"type": "string", "format": "date"},
        "end": {"type": "string", "format": "date"},
        "group_by": {"enum": [g.value for g in domain.GroupBy]},
        "generated_at": {"type": "string", "format": "date-time"},
        "groups": {"type": "array", "items": _FIGURES_SCHEMA},
        "total": _FIGURES_SCHEMA,
    },
}
KEY_METRICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["report", "jurisdiction_id", "year", "total", "channels", "top_services"],
    "properties": {
        "report": {"const": "key-metrics"},
        "jurisdiction_id": {"type": "string"},
        "year": {"type": "integer"},
        "generated_at": {"type": "string", "format": "date-time"},
        "total": _FIGURES_SCHEMA,
        "months": {"type": "array", "items": {"type": "object"}},
        "channels": {"type": "array", "items": {"type": "object"}},
        "top_services": {"type": "array", "items": {"type": "object"}},
        "trending": {"type": "array", "items": {"type": "object"}},
        "divisions": {"type": "array", "items": _FIGURES_SCHEMA},
    },
}


def _responses(schema: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": description,
            "content": {
                JSON_MEDIA: {"schema": schema},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
    for status in (400, 403, 404, 429, 500, 503):
        out[status] = error_response(status)
    return out


async def reader(request: Request, state: Any, viewer: KeyInfo | None, pk: int) -> KeyInfo:
    """The caller's key (Bearer first, else the verified api_key), allowed to read reports
    of this jurisdiction (403 otherwise)."""
    token = bearer_token(request.headers.get("authorization"))
    key = viewer
    if token is not None:
        # The key's rate limit applies as on every keyed call (api_key: read_access took it).
        key, _ = await check_key_and_limit(
            state.engine, state.limiter, state.settings, token, state.keys
        )
    policy.require_reports(key)
    assert key is not None  # noqa: S101 - require_reports refused None
    policy.require_jurisdiction(key, pk)
    return key


async def service_promise_report(
    state: Any, jurisdiction: JurisdictionInfo, query: Parameters
) -> dict[str, Any]:
    """The service-promise report the query asks for (400 for bad parameters)."""
    problems: list[str] = []
    start, end = query.one("start", problems), query.one("end", problems)
    group_by = query.one("group_by", problems)
    if problems:
        raise InvalidParameter(*problems)
    grouping = domain.parse_group_by(group_by)
    year = await domain.default_year(state.engine, jurisdiction)
    period = domain.parse_period(start, end, year)
    return await domain.service_promise(state.engine, jurisdiction, period, grouping)


async def key_metrics_report(
    state: Any, jurisdiction: JurisdictionInfo, query: Parameters
) -> dict[str, Any]:
    """The key-metrics report the query asks for (400 for bad parameters)."""
    problems: list[str] = []
    text = query.one("year", problems)
    if problems:
        raise InvalidParameter(*problems)
    year = domain.parse_year(text, await domain.default_year(state.engine, jurisdiction))
    return await domain.key_metrics(state.engine, jurisdiction, year)


def _answer(fmt: str, report: dict[str, Any], csv_text: str, name: str) -> Response:
    if fmt == "csv":
        return Response(
            csv_text,
            media_type=CSV_MEDIA,
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return render("report", report, Format.json)


@router.get(
    "/reports/service-promise.{format}",
    operation_id="reports-service-promise",
    response_class=Response,
    responses=_responses(
        SERVICE_PROMISE_SCHEMA,
        "Requests received in the period, grouped: closed, within target (compliance rate), "
        "median and 90th-percentile hours to close, open and overdue now, first-contact "
        "resolution. CSV: one line per group then the total.",
    ),
    openapi_extra=documented(START, END, GROUP_BY, API_KEY, JURISDICTION_ID),
)
async def get_service_promise(
    request: Request,
    format: ReportFormat,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """The service-promise (compliance) report of a period."""
    await reader(request, state, viewer, jurisdiction.pk)
    report = await service_promise_report(state, jurisdiction, query)
    csv_text = domain.service_promise_csv(report) if format == "csv" else ""
    return _answer(format, report, csv_text, "service-promise")


@router.get(
    "/reports/key-metrics.{format}",
    operation_id="reports-key-metrics",
    response_class=Response,
    responses=_responses(
        KEY_METRICS_SCHEMA,
        "A year's key metrics: volumes by channel and month, top services, trending issues "
        "(largest rises against the previous year), compliance by division. CSV: "
        "table,key,label,measure,value lines.",
    ),
    openapi_extra=documented(YEAR, API_KEY, JURISDICTION_ID),
)
async def get_key_metrics(
    request: Request,
    format: ReportFormat,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """The key-metrics report of a year."""
    await reader(request, state, viewer, jurisdiction.pk)
    report = await key_metrics_report(state, jurisdiction, query)
    year = report["year"]
    csv_text = domain.key_metrics_csv(report) if format == "csv" else ""
    return _answer(format, report, csv_text, f"key-metrics-{year}")
