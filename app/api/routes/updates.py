"""mySociety/FixMyStreet extension: GET and POST servicerequestupdates."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from app.api.deps import (
    FormatDep,
    JurisdictionDep,
    PostJurisdictionDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    ViewerDep,
    public_base,
)
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.paging import list_headers, next_page_link, paging_headers
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID, PAGE_SIZE_MAX, UPDATE_FEED, with_media
from app.domain.media import NOTHING, photo_owner
from app.domain.policy import require_scope
from app.domain.submissions import check_key_and_limit
from app.domain.updates import FeedQuery, app_update, list_updates
from app.errors import InvalidParameter
from app.georeport.models import Photo
from app.store.engine import read_connection, write_transaction

router = APIRouter(tags=["updates (extension)"], route_class=LeanRoute)

UPDATE_EXAMPLE = {
    "update_id": "UPD-8841",
    "service_request_id": "638344",
    "status": "open",
    "updated_datetime": "2024-02-22T09:30:00-05:00",
    "description": "Repair booked for Friday.",
    "media_url": None,
    "external_status_code": "SCHED",
}
_FIELD = {"type": "string"}
UPDATE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_request_id", "update_id", "updated_datetime", "status"],
    "properties": {
        "api_key": {**_FIELD, "description": "A key with the update scope; else 403."},
        "jurisdiction_id": _FIELD,
        "service_request_id": {**_FIELD, "description": "The request updated; unknown: 404."},
        "update_id": {
            **_FIELD,
            "maxLength": 255,
            "description": "The app's id of the update; one already received is a 400.",
        },
        "updated_datetime": {
            **_FIELD,
            "description": "When the update happened (W3C datetime with a zone, not in the "
            "future).",
        },
        "status": {
            **_FIELD,
            "description": "A core or extended status in any case (OPEN, CLOSED, FIXED, "
            "IN_PROGRESS, ACTION_SCHEDULED, ..., REOPEN).",
        },
        "description": {**_FIELD, "maxLength": 4000},
        "media_url": {**_FIELD, "maxLength": 2048, "description": "An http(s) URL."},
        "external_status_code": {**_FIELD, "maxLength": 255},
    },
}


class UpdateCreated(BaseModel):
    """The item of a POST servicerequestupdates response."""

    model_config = ConfigDict(json_schema_extra={"xml": {"name": "request_update"}})

    update_id: str


def _absent_not_null(schema: dict[str, Any]) -> None:
    # A field left out rather than null: no "default": null in the schema.
    schema.pop("default", None)


class RequestUpdateItem(BaseModel):
    """An item of GET servicerequestupdates."""

    model_config = ConfigDict(json_schema_extra={"xml": {"name": "request_update"}})

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: str
    description: str | None
    media_url: str | None
    external_status_code: str | None
    photos: list[Photo] | SkipJsonSchema[None] = Field(
        default=None,
        description="Extension: the photos uploaded with the update (the first is its "
        "media_url); absent when it has none.",
        json_schema_extra=_absent_not_null,
    )


@router.get(
    "/servicerequestupdates.{format}",
    operation_id="updates-list",
    response_class=Response,
    responses=responses(
        RequestUpdateItem,
        many=True,
        errors=(400, 404),
        description="Updates in the window, oldest first (ties by update_id); when more "
        "follow, the X-Next-Cursor and Link headers lead to the next page.",
        root="service_request_updates",
        headers=list_headers("When more updates follow this page"),
        links=next_page_link("updates-list"),
        examples={"updates": ("One update", [UPDATE_EXAMPLE])},
    ),
    openapi_extra=documented(*UPDATE_FEED, JURISDICTION_ID),
)
async def get_updates(
    request: Request,
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Updates of requests (status changes, notes) whose time lies in the window, by pages."""
    limits = state.settings.requests
    problems: list[str] = []
    asked = FeedQuery(
        start_date=query.one("start_date", problems),
        end_date=query.one("end_date", problems),
        service_request_ids=query.every("service_request_id"),
        page_size=query.one("page_size", problems),
        cursor=query.one("cursor", problems),
    )
    if asked.page_size is None and query.every("page_size"):
        asked.page_size = ""  # documented as an integer: an empty one is refused, not ignored
    if problems:
        raise InvalidParameter(*problems)
    async with read_connection(state.engine) as conn:
        page = await list_updates(
            conn,
            jurisdiction,
            asked,
            window_days=limits.default_window_days,
            max_results=limits.max_results,
            page_size_max=min(limits.max_results, PAGE_SIZE_MAX),
            viewer=viewer,
        )
    headers = paging_headers(request, state.settings, limits.max_results, page.next_cursor)
    return render("service_request_updates", page.items, fmt, headers=headers)


@router.post(
    "/servicerequestupdates.{format}",
    operation_id="updates-create",
    response_class=Response,
    responses=responses(
        UpdateCreated,
        many=True,
        errors=(400, 403, 404),
        description="The new update's update_id.",
        root="service_request_updates",
        examples={"created": ("The update's id", [{"update_id": "UPD-8842"}])},
    ),
    openapi_extra=documented(
        JURISDICTION_ID,
        requestBody={
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": UPDATE_FORM},
                "multipart/form-data": {"schema": with_media(UPDATE_FORM)},
            },
        },
    ),
)
async def post_update(
    request: Request,
    fmt: FormatDep,
    state: StateDep,
    params: PostParamsDep,
    jurisdiction: PostJurisdictionDep,
) -> Response:
    """An app (with the update scope) reports an update of a request (FixMyStreet style);
    photos in ``media`` file parts (the first is the update's media_url)."""
    values = params.grouped()
    key, decision = await check_key_and_limit(
        state.engine,
        state.limiter,
        state.settings,
        params.one("api_key"),
        state.keys,
    )
    require_scope(key, "update")
    intake, uploaded = state.photos, NOTHING
    if params.uploads and intake is not None:  # the parser refuses files when photos are off
        uploaded = await intake.accept(
            params.uploads,
            sandbox=key.sandbox,
            owner=photo_owner(jurisdiction.pk, key.app_id),
            public_base=public_base(request, state.settings),
        )
    kept = intake.kept_unless_failed(uploaded) if intake is not None else contextlib.nullcontext()
    async with kept, write_transaction(state.engine) as conn:
        item = await app_update(
            conn,
            jurisdiction,
            caller=key,
            params=values,
            first_contact_window=state.settings.service_promise.first_contact_window,
            photos=uploaded.records or None,
        )
    return render(
        "service_request_updates",
        [{"update_id": item["update_id"]}],
        fmt,
        headers=decision.headers(),
    )
