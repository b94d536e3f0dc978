"""POST Service Request, GET Service Requests and GET Service Request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from starlette.responses import Response

from app.api import examples
from app.api.caching import (
    CONDITIONAL_HEADERS,
    Validators,
    cache_headers,
    entity_tag,
    not_modified,
    not_modified_response,
)
from app.api.deps import (
    CatalogDep,
    FormatDep,
    JurisdictionDep,
    PostJurisdictionDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    ViewerDep,
    public_base,
)
from app.api.docs import documented, error_response, responses
from app.api.filters import parse_filters, parse_nearby, wants_extensions
from app.api.lean import LeanRoute
from app.api.paging import list_headers, next_page_link, next_page_url, paging_headers
from app.api.responses import render
from app.api.schemas import (
    EXTENSIONS,
    IDEMPOTENCY_KEY,
    JURISDICTION_ID,
    LAT,
    LONG,
    POST_BODY_SCHEMA,
    POST_EXAMPLES,
    REQUEST_FILTERS,
    text_parameter,
    with_media,
)
from app.domain.areas import areas_version
from app.domain.requests import PageInfo, get_request, list_requests, nearby_requests
from app.domain.submissions import PostForm
from app.errors import MethodNotAllowed
from app.federation.headers import synced_headers
from app.georeport.codec import encode_json
from app.georeport.geojson import (
    GEOJSON,
    collection_schema,
    feature_schema,
    request_collection,
    request_feature,
)
from app.georeport.models import NearbyRequest, RequestCreated, ServiceRequest
from app.store.engine import read_connection

router = APIRouter(tags=["requests"], route_class=LeanRoute)

# POST requests answers an id (realtime) or a token (batch): follow it to the new request.
CREATED_LINKS: dict[str, Any] = {
    "GetServiceRequest": {
        "operationId": "requests-get",
        "parameters": {
            "service_request_id": "$response.body#/0/service_request_id",
            "format": "$request.path.format",
            "jurisdiction_id": "$request.body#/jurisdiction_id",
        },
        "description": "The new request of a realtime service (same jurisdiction).",
    },
    "GetToken": {
        "operationId": "tokens-get",
        "parameters": {
            "token": "$response.body#/0/token",
            "format": "$request.path.format",
            "jurisdiction_id": "$request.body#/jurisdiction_id",
        },
        "description": "The token of a batch submission, resolved to its request id.",
    },
}


@router.api_route(
    "/requests.geojson",
    methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)
async def requests_geojson_other_methods() -> Response:
    """requests.geojson is read-only: without this, POST would reach POST requests.{format}
    (as an unknown format, a 404) rather than be a 405."""
    raise MethodNotAllowed(headers={"Allow": "GET, HEAD"})


@router.post(
    "/requests.{format}",
    operation_id="requests-create",
    response_class=Response,
    responses=responses(
        RequestCreated,
        root="service_requests",
        many=True,
        errors=(400, 403, 413, 422),
        description="The new request's id (realtime), token (batch) or neither (blackbox).",
        examples={
            "realtime": ("A realtime service: the id", examples.CREATED_REALTIME),
            "batch": ("A batch service: a token", examples.CREATED_BATCH),
            "blackbox": ("A blackbox service: neither", examples.CREATED_BLACKBOX),
        },
        links=CREATED_LINKS,
    ),
    openapi_extra=documented(
        JURISDICTION_ID,
        requestBody={
            "required": True,
            "description": "Form fields; every field is also read from the query string "
            "(the body wins).",
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": POST_BODY_SCHEMA,
                    "examples": POST_EXAMPLES,
                },
                "multipart/form-data": {
                    "schema": with_media(POST_BODY_SCHEMA),
                    "examples": POST_EXAMPLES,
                },
            },
        },
    ),
)
async def create_service_request(
    request: Request,
    fmt: FormatDep,
    state: StateDep,
    params: PostParamsDep,
    jurisdiction: PostJurisdictionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retry-safe submission: a retry with the same key and body replays the "
            "first response (header Idempotent-Replayed: true) and creates nothing; the same "
            "key with another body is a 422.",
            json_schema_extra=IDEMPOTENCY_KEY,
        ),
    ] = None,
) -> Response:
    """Submit a new service request (needs an api_key)."""
    form = PostForm(
        params.pairs,
        request.url.path,
        idempotency_key,
        photos=params.uploads,
        public_base=public_base(request, state.settings) if params.uploads else "",
    )
    outcome = await state.submissions.submit(jurisdiction, form)
    return render(
        "service_requests",
        [outcome.item],
        fmt,
        status_code=outcome.status_code,
        headers=outcome.headers,
    )


LIST_HEADERS = list_headers("When the page is full")
LIST_LINKS = next_page_link(
    "requests-list", "The next page of a full page (send the same filters again)."
)


GEOJSON_PROPERTIES: dict[str, Any] = {
    "type": "object",
    "description": "The request's fields as in requests.json (extended_attributes with "
    "extensions=true), lat and long aside: the geometry carries them.",
    "required": [
        name
        for name in ServiceRequest.model_fields
        if name not in ("lat", "long", "extended_attributes")
    ],
}
GEOJSON_NEXT_PAGE = {
    "NextPage": {
        "operationId": "requests-geojson",
        "parameters": {"cursor": "$response.header.X-Next-Cursor"},
        "description": "The next page (send the same filters again, with this cursor).",
    }
}
GEOJSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: error_response(status, xml=False) for status in (400, 404, 429, 500)
}


async def _list(
    request: Request,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> tuple[list[dict[str, Any]], dict[str, str], str | None]:
    """GET requests in any format: the items, the headers, the next page's cursor."""
    limits = state.settings.requests
    filters = parse_filters(query, jurisdiction.tz, limits)
    paging = PageInfo()
    items = await list_requests(
        state.store,
        jurisdiction,
        catalog,
        filters,
        limits,
        viewer,
        paging,
        sql_w3c=state.settings.speed.sql_timestamps,
    )
    headers = paging_headers(request, state.settings, limits.max_results, paging.next_cursor)
    headers.update(await synced_headers(state.engine, jurisdiction))  # federation: freshness
    return items, headers, paging.next_cursor


@router.get(
    "/requests.geojson",
    operation_id="requests-geojson",
    response_class=Response,
    responses={
        200: {
            "description": "The requests of GET requests (same filters, order and paging) as "
            "an RFC 7946 FeatureCollection; a full page names its next page in links and in "
            "the headers.",
            "content": {GEOJSON: {"schema": collection_schema(GEOJSON_PROPERTIES)}},
            "headers": LIST_HEADERS,
            "links": GEOJSON_NEXT_PAGE,
        },
        **GEOJSON_ERRORS,
    },
    openapi_extra=documented(*REQUEST_FILTERS, JURISDICTION_ID),
)
async def list_service_requests_geojson(
    request: Request,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Extension: GET requests as GeoJSON, for map clients."""
    items, headers, cursor = await _list(request, state, jurisdiction, catalog, query, viewer)
    next_url = None if cursor is None else next_page_url(request, state.settings, cursor)
    body = encode_json(request_collection(items, next_url))
    return Response(body, headers=headers, media_type=GEOJSON)


@router.get(
    "/requests.{format}",
    operation_id="requests-list",
    response_class=Response,
    responses=responses(
        ServiceRequest,
        root="service_requests",
        many=True,
        errors=(400,),
        description="Matching requests, newest first (empty list when none match).",
        headers=LIST_HEADERS,
        links=LIST_LINKS,
        examples={
            "requests": (
                "Two requests",
                [examples.REQUEST, examples.REQUEST_ADDRESS_ONLY],
            ),
            "extensions": ("With extensions=true", [examples.REQUEST_EXTENDED]),
            "none": ("No match", []),
        },
    ),
    openapi_extra=documented(*REQUEST_FILTERS, JURISDICTION_ID),
)
async def list_service_requests(
    request: Request,
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Search requests. Without dates: the last 90 days; at most 1000 results."""
    items, headers, _ = await _list(request, state, jurisdiction, catalog, query, viewer)
    return render("service_requests", items, fmt, headers=headers)


NEARBY_PARAMETERS = (
    {
        **text_parameter("service_code", "The service of the report about to be filed.", "POTHOLE"),
        "required": True,
    },
    {**LAT, "required": True},
    {**LONG, "required": True},
)
NEARBY_PARAMETERS[0]["schema"]["pattern"] = r"\S"  # an empty value counts as absent


@router.get(
    "/requests/nearby.{format}",
    operation_id="requests-nearby",
    response_class=Response,
    responses=responses(
        NearbyRequest,
        root="service_requests",
        many=True,
        errors=(400,),
        description="Open requests of the service near the point, nearest first, each with "
        "its distance in metres (empty list when none).",
        examples={"nearby": ("One request 42.5 m away", [examples.REQUEST_NEARBY])},
    ),
    openapi_extra=documented(*NEARBY_PARAMETERS, EXTENSIONS, JURISDICTION_ID),
)
async def nearby_service_requests(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Extension: open requests of a service near a point, before a duplicate is filed.

    Those requested in the last requests.nearby_max_age_days days (default 60) within
    requests.nearby_radius_m metres (default 200), nearest first, at most
    requests.nearby_max_results (default 20)."""
    limits = state.settings.requests
    service_code, lat, lon, wanted = parse_nearby(query)
    items = await nearby_requests(
        state.store,
        jurisdiction,
        catalog,
        service_code,
        lat,
        lon,
        limits,
        viewer,
        wanted,
        sql_w3c=state.settings.speed.sql_timestamps,
    )
    headers = await synced_headers(state.engine, jurisdiction)  # federation: freshness
    return render("service_requests", items, fmt, headers=headers)


@router.get(
    "/requests/{service_request_id}.geojson",
    operation_id="requests-get-geojson",
    response_class=Response,
    responses={
        200: {
            "description": "One request as an RFC 7946 Feature.",
            "content": {GEOJSON: {"schema": feature_schema(GEOJSON_PROPERTIES)}},
        },
        **GEOJSON_ERRORS,
    },
    openapi_extra=documented(EXTENSIONS, JURISDICTION_ID),
)
async def get_service_request_geojson(
    service_request_id: Annotated[
        str, Path(description="The id of a request.", examples=["638344"])
    ],
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Extension: one request as GeoJSON."""
    wanted = wants_extensions(query.one("extensions"))
    item, headers = await _one(state, jurisdiction, catalog, viewer, service_request_id, wanted)
    return Response(encode_json(request_feature(item)), headers=headers, media_type=GEOJSON)


async def _one(
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    viewer: ViewerDep,
    service_request_id: str,
    extensions: bool,
) -> tuple[dict[str, Any], dict[str, str]]:
    """One request's item (404 when none) and the headers every answer of it carries."""
    item = await get_request(
        state.store,
        jurisdiction,
        service_request_id,
        extensions,
        viewer,
        sql_w3c=state.settings.speed.sql_timestamps,
        catalog=catalog,
        max_notes=state.settings.requests.extensions_max_notes,
    )
    headers = await synced_headers(state.engine, jurisdiction)  # federation: freshness
    return item, headers


@router.get(
    "/requests/{service_request_id}.{format}",
    operation_id="requests-get",
    response_class=Response,
    responses={
        **responses(
            ServiceRequest,
            root="service_requests",
            many=True,
            errors=(400,),
            description="A one-element list.",
            examples={"request": ("One request", [examples.REQUEST])},
            headers=cache_headers(languages=False),
        ),
        **not_modified_response(languages=False),
    },
    openapi_extra=documented(EXTENSIONS, JURISDICTION_ID, *CONDITIONAL_HEADERS),
)
async def get_service_request(
    request: Request,
    service_request_id: Annotated[
        str, Path(description="The id of a request.", examples=["638344"])
    ],
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    catalog: CatalogDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """One request by id. Cached by HTTP: ETag, Last-Modified, Cache-Control; a conditional
    GET whose copy is current answers 304."""
    wanted = wants_extensions(query.one("extensions"))
    item, headers = await _one(state, jurisdiction, catalog, viewer, service_request_id, wanted)
    response = render("service_requests", [item], fmt, headers=headers)
    # The item's own W3C rendering (ISO 8601 with an offset): the standard parser reads it.
    changed = [datetime.fromisoformat(item["updated_datetime"]), catalog.changed_at]
    if wanted:  # the ward: another ward map made current changes it
        async with read_connection(state.engine) as conn:
            areas = (await areas_version(conn, jurisdiction)).changed_at
        if areas is not None:
            changed.append(areas)
    private = "reporter" in item or (viewer is not None and viewer.sandbox)
    control = "private, no-cache" if private else state.settings.cache.request_control
    validators = Validators(entity_tag(response.body), max(changed))
    cache = validators.headers(control)
    if validators.not_modified(request):
        return not_modified({**cache, **headers})
    response.headers.update(cache)
    return response
