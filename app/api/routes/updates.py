"""mySociety/FixMyStreet extension: GET and POST servicerequestupdates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from app.api.deps import (
    FormatDep,
    JurisdictionDep,
    PostJurisdictionDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    ViewerDep,
)
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID, UPDATE_WINDOW
from app.domain.policy import require_scope
from app.domain.submissions import check_key_and_limit
from app.domain.updates import app_update, list_updates
from app.errors import InvalidParameter
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


@router.get(
    "/servicerequestupdates.{format}",
    operation_id="updates-list",
    response_class=Response,
    responses=responses(
        RequestUpdateItem,
        many=True,
        errors=(400, 404),
        description="Updates in the window, oldest first.",
        root="service_request_updates",
        examples={"updates": ("One update", [UPDATE_EXAMPLE])},
    ),
    openapi_extra=documented(*UPDATE_WINDOW, JURISDICTION_ID),
)
async def get_updates(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """Updates of requests (status changes, notes) whose time lies in the window."""
    limits = state.settings.requests
    problems: list[str] = []
    start_date, end_date = query.one("start_date", problems), query.one("end_date", problems)
    if problems:
        raise InvalidParameter(*problems)
    async with read_connection(state.engine) as conn:
        items = await list_updates(
            conn,
            jurisdiction,
            start_date=start_date,
            end_date=end_date,
            window_days=limits.default_window_days,
            max_results=limits.max_results,
            viewer=viewer,
        )
    return render("service_request_updates", items, fmt)


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
                "multipart/form-data": {"schema": UPDATE_FORM},
            },
        },
    ),
)
async def post_update(
    fmt: FormatDep, state: StateDep, params: PostParamsDep, jurisdiction: PostJurisdictionDep
) -> Response:
    """An app (with the update scope) reports an update of a request (FixMyStreet style)."""
    values = params.grouped()
    key, decision = await check_key_and_limit(
        state.engine,
        state.limiter,
        state.settings,
        params.one("api_key"),
        state.keys,
    )
    require_scope(key, "update")
    async with write_transaction(state.engine) as conn:
        item = await app_update(
            conn,
            jurisdiction,
            caller=key,
            params=values,
            first_contact_window=state.settings.service_promise.first_contact_window,
        )
    return render(
        "service_request_updates",
        [{"update_id": item["update_id"]}],
        fmt,
        headers=decision.headers(),
    )
