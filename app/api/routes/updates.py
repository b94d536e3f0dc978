"""mySociety/FixMyStreet extension: GET and POST servicerequestupdates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from app.api.deps import (
    FormatDep,
    JurisdictionDep,
    PostJurisdictionDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    grouped,
)
from app.api.docs import responses
from app.api.responses import render
from app.db import write_transaction
from app.domain.api_keys import require_scope
from app.domain.submissions import check_key_and_limit
from app.domain.updates import app_update, list_updates

router = APIRouter(tags=["updates (extension)"])


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
    ),
)
async def get_updates(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    start_date: Annotated[
        str | None, Query(description="Earliest update time (W3C, inclusive).")
    ] = None,
    end_date: Annotated[
        str | None, Query(description="Latest update time (W3C, inclusive).")
    ] = None,
) -> Response:
    """Updates of requests (status changes, notes) whose time lies in the window."""
    limits = state.settings.requests
    async with state.engine.connect() as conn:
        items = await list_updates(
            conn,
            jurisdiction,
            grouped(query),
            window_days=limits.default_window_days,
            max_results=limits.max_results,
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
    ),
)
async def post_update(
    fmt: FormatDep, state: StateDep, params: PostParamsDep, jurisdiction: PostJurisdictionDep
) -> Response:
    """An app (with the update scope) reports an update of a request (FixMyStreet style)."""
    values = grouped(params)
    key, decision = await check_key_and_limit(
        state.engine, state.limiter, state.settings, (values.get("api_key") or [None])[0]
    )
    require_scope(key, "update")
    async with write_transaction(state.engine) as conn:
        item = await app_update(conn, jurisdiction, app_id=key.app_id, params=values)
    return render(
        "service_request_updates",
        [{"update_id": item["update_id"]}],
        fmt,
        headers=decision.headers(),
    )
