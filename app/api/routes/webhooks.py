"""Extension: an app manages the webhooks that tell it about updates of its requests.

Any valid key of an app manages that app's subscriptions (whatever its scopes); an app never
sees or touches another app's. The signing secret is shown once, in the POST response.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.api.deps import (
    FormatDep,
    PostParamsDep,
    QueryDep,
    StateDep,
    ViewerDep,
    refuse_uploads,
)
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import WEBHOOK_API_KEY
from app.domain import policy
from app.domain.api_keys import KeyInfo
from app.domain.submissions import check_key_and_limit
from app.domain.webhooks import (
    MAX_URL_LENGTH,
    checked_url,
    create_subscription,
    delete_subscription,
    list_subscriptions,
)
from app.errors import Forbidden, InvalidApiKey, NotFound
from app.georeport.datetimes import format_w3c
from app.store.engine import write_transaction

router = APIRouter(tags=["webhooks (extension)"], route_class=LeanRoute)

ROOT = "webhooks"
_ITEM = ConfigDict(extra="forbid", json_schema_extra={"xml": {"name": "webhook"}})


class WebhookCreated(BaseModel):
    """The item of a POST webhooks response: the only time the secret is shown."""

    model_config = _ITEM

    id: int
    url: str
    secret: str = Field(
        description="HMAC-SHA256 key of the X-Open311-Signature header: "
        "t=<unix time>,v1=<hex HMAC of '<t>.' + body>. Store it; it is never shown again."
    )


class Webhook(BaseModel):
    """An item of GET webhooks."""

    model_config = _ITEM

    id: int
    url: str
    active: bool
    created_at: str


class WebhookDeleted(BaseModel):
    """The item of a DELETE webhook response."""

    model_config = _ITEM

    id: int
    deleted: bool


_URL = "https://app.example.org/open311/hook"
EXAMPLE_CREATED = [{"id": 7, "url": _URL, "secret": "whsec_" + "x" * 43}]
EXAMPLE_LIST = [{"id": 7, "url": _URL, "active": True, "created_at": "2024-03-01T09:30:00+00:00"}]
EXAMPLE_DELETED = [{"id": 7, "deleted": True}]

POST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "url"],
    "properties": {
        "api_key": {"type": "string", "description": "Any valid key of the app."},
        "url": {
            "type": "string",
            "format": "uri",
            "maxLength": MAX_URL_LENGTH,
            "description": "Absolute http(s) URL that receives a signed JSON POST per update "
            "of the app's requests. It must be a public address (not loopback, link-local, "
            "private or otherwise special) unless the operator allows private targets.",
            "examples": [_URL],
        },
    },
}


def _app_of(key: KeyInfo) -> int:
    policy.require_no_sandbox(key, "manage webhooks")
    if key.app_id is None:
        raise Forbidden("This api_key belongs to no app.")
    return key.app_id


@router.post(
    "/webhooks.{format}",
    operation_id="webhooks-create",
    response_class=Response,
    responses=responses(
        WebhookCreated,
        root=ROOT,
        many=True,
        errors=(400, 403, 413),
        description="The new subscription with its signing secret (shown only this once).",
        examples={"created": ("A new webhook", EXAMPLE_CREATED)},
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "Form fields; also read from the query string (the body wins).",
            "content": {
                "application/x-www-form-urlencoded": {"schema": POST_BODY_SCHEMA},
                "multipart/form-data": {"schema": POST_BODY_SCHEMA},
            },
        }
    },
)
async def create_webhook(fmt: FormatDep, state: StateDep, params: PostParamsDep) -> Response:
    """Subscribe a URL to signed POSTs about updates of the requests this app submitted."""
    refuse_uploads(params)
    key, _ = await check_key_and_limit(
        state.engine, state.limiter, state.settings, params.one("api_key")
    )
    app_id = _app_of(key)
    # Checked before the transaction: it may resolve the host name.
    url = await checked_url(
        params.one("url"), allow_private=state.settings.webhooks.allow_private_targets
    )
    async with write_transaction(state.engine) as conn:
        subscription_id, secret = await create_subscription(conn, app_id=app_id, url=url)
    return render(ROOT, [{"id": subscription_id, "url": url, "secret": secret}], fmt)


@router.get(
    "/webhooks.{format}",
    operation_id="webhooks-list",
    response_class=Response,
    responses=responses(
        Webhook,
        root=ROOT,
        many=True,
        errors=(403,),
        description="The app's webhooks, oldest first (never their secrets).",
        examples={"webhooks": ("One webhook", EXAMPLE_LIST), "none": ("No webhook", [])},
    ),
    openapi_extra=documented(WEBHOOK_API_KEY),
)
async def get_webhooks(fmt: FormatDep, state: StateDep, viewer: ViewerDep) -> Response:
    """The webhooks of the app the api_key belongs to."""
    # The GeoReport router's read_access dependency verified (and rate-limited) the key.
    if viewer is None:
        raise InvalidApiKey("A valid api_key of the app is required.")
    async with state.engine.connect() as conn:
        rows = await list_subscriptions(conn, app_id=_app_of(viewer))
    items = [{**row, "created_at": format_w3c(row["created_at"], UTC)} for row in rows]
    return render(ROOT, items, fmt)


@router.delete(
    "/webhooks/{subscription_id}.{format}",
    operation_id="webhooks-delete",
    response_class=Response,
    responses=responses(
        WebhookDeleted,
        root=ROOT,
        many=True,
        errors=(400, 403),
        description="The webhook is gone, with its queued deliveries.",
        examples={"deleted": ("A deleted webhook", EXAMPLE_DELETED)},
    ),
    openapi_extra=documented(WEBHOOK_API_KEY),
)
async def remove_webhook(
    subscription_id: Annotated[int, Path(description="The webhook's id.", ge=1, le=2**31 - 1)],
    fmt: FormatDep,
    state: StateDep,
    query: QueryDep,
) -> Response:
    """Delete one of the app's webhooks (404 for another app's)."""
    key, _ = await check_key_and_limit(
        state.engine, state.limiter, state.settings, query.one("api_key")
    )
    async with write_transaction(state.engine) as conn:
        deleted = await delete_subscription(
            conn, app_id=_app_of(key), subscription_id=subscription_id
        )
    if not deleted:
        raise NotFound(f"This app has no webhook {subscription_id}.")
    return render(ROOT, [{"id": subscription_id, "deleted": True}], fmt)
