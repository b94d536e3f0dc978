"""POST Service Request, GET Service Requests and GET Service Request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.api.deps import (
    CatalogDep,
    FormatDep,
    JurisdictionDep,
    PostJurisdictionDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    first,
    grouped,
)
from app.api.docs import responses
from app.api.responses import render
from app.domain.api_keys import verify_key
from app.domain.requests import (
    create_request,
    get_request,
    list_requests,
    parse_filters,
    validate_submission,
    wants_extensions,
)
from app.errors import BadRequest
from app.georeport.models import RequestCreated, ServiceRequest

router = APIRouter(tags=["requests"])

_TEXT = {"type": "string"}
POST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {
        "api_key": {**_TEXT, "description": "Client key (also accepted in the query string)."},
        "jurisdiction_id": _TEXT,
        "service_code": _TEXT,
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {**_TEXT, "maxLength": 1000},
        "address_id": {**_TEXT, "maxLength": 255},
        "email": {**_TEXT, "maxLength": 320},
        "device_id": {**_TEXT, "maxLength": 255},
        "account_id": {**_TEXT, "maxLength": 255},
        "first_name": {**_TEXT, "maxLength": 255},
        "last_name": {**_TEXT, "maxLength": 255},
        "phone": {**_TEXT, "maxLength": 64},
        "description": {**_TEXT, "maxLength": 4000},
        "media_url": {**_TEXT, "format": "uri", "maxLength": 2048},
    },
    "patternProperties": {
        r"^attribute\[[^\]]+\](\[\])?$": {
            "description": "Answer to a service definition attribute: attribute[CODE]=value; "
            "multivaluelist values repeat attribute[CODE][]=value.",
            "oneOf": [_TEXT, {"type": "array", "items": _TEXT}],
        }
    },
}


@router.post(
    "/requests.{format}",
    operation_id="requests-create",
    response_class=Response,
    responses=responses(
        RequestCreated,
        many=True,
        errors=(400, 403, 404, 413),
        description="The new request's id (realtime), token (batch) or neither (blackbox).",
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": POST_BODY_SCHEMA},
                "multipart/form-data": {"schema": POST_BODY_SCHEMA},
            },
        }
    },
)
async def create_service_request(
    fmt: FormatDep, state: StateDep, params: PostParamsDep, jurisdiction: PostJurisdictionDep
) -> Response:
    """Submit a new service request (needs an api_key)."""
    async with state.engine.begin() as conn:
        api_key_id = await verify_key(conn, first(params, "api_key"))
        service_code = first(params, "service_code")
        if service_code is None:
            raise BadRequest("service_code is required.")
        service = (await state.catalogs.get(jurisdiction.pk)).get(service_code)
        submission = validate_submission(params, service, state.settings.requests)
        ward_index = None
        if not state.postgis and jurisdiction.ward_set_id is not None:
            ward_index = await state.wards.get(jurisdiction.ward_set_id)
        item = await create_request(
            conn,
            jurisdiction=jurisdiction,
            service=service,
            sub=submission,
            api_key_id=api_key_id,
            postgis=state.postgis,
            ward_index=ward_index,
            tolerance_m=state.settings.wards.tolerance_m,
        )
    return render(
        "service_requests", [item], fmt, status_code=state.settings.requests.success_status_code
    )


ListQuery = Annotated[str | None, Query()]


@router.get(
    "/requests.{format}",
    operation_id="requests-list",
    response_class=Response,
    responses=responses(
        ServiceRequest, many=True, errors=(400, 404), description="Matching requests, newest first."
    ),
)
async def list_service_requests(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    service_request_id: Annotated[
        str | None, Query(description="Comma-separated ids; overrides every other filter.")
    ] = None,
    service_code: Annotated[str | None, Query(description="Comma-separated service codes.")] = None,
    start_date: Annotated[
        str | None, Query(description="Earliest requested_datetime (W3C, inclusive).")
    ] = None,
    end_date: Annotated[
        str | None, Query(description="Latest requested_datetime (W3C, inclusive).")
    ] = None,
    status: Annotated[
        str | None, Query(description="open, closed or both, comma-separated.")
    ] = None,
    ward: Annotated[
        str | None,
        Query(description="Extension: ward codes (current ward set), comma-separated."),
    ] = None,
    extensions: Annotated[
        str | None,
        Query(description="Extension: true adds extended_attributes (ward, ward_name)."),
    ] = None,
) -> Response:
    """Search requests. Without dates: the last 90 days; at most 1000 results."""
    limits = state.settings.requests
    filters = parse_filters(grouped(query), jurisdiction.tz, limits)
    async with state.engine.connect() as conn:
        items = await list_requests(conn, jurisdiction, catalog, filters, limits)
    return render("service_requests", items, fmt)


@router.get(
    "/requests/{service_request_id}.{format}",
    operation_id="requests-get",
    response_class=Response,
    responses=responses(
        ServiceRequest, many=True, errors=(400, 404), description="A one-element list."
    ),
)
async def get_service_request(
    service_request_id: str,
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    extensions: Annotated[
        str | None,
        Query(description="Extension: true adds extended_attributes (ward, ward_name)."),
    ] = None,
) -> Response:
    """One request by id."""
    wanted = wants_extensions(grouped(query))
    async with state.engine.connect() as conn:
        item = await get_request(conn, jurisdiction, service_request_id, wanted)
    return render("service_requests", [item], fmt)
