"""Extension: an app manages the webhooks that tell it about updates of its requests, and its
subscriptions to the public events of any request (``app.domain.subscriptions``): their
delivery log and replays.

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
from app.domain.subscriptions import (
    LOG_MAX,
    create_feed,
    delivery_log,
    feed_spec,
    parse_since,
    replay,
)
from app.domain.webhooks import (
    MAX_URL_LENGTH,
    checked_url,
    create_subscription,
    delete_subscription,
    list_subscriptions,
)
from app.errors import BadRequest, Forbidden, InvalidApiKey, NotFound
from app.georeport.datetimes import format_w3c
from app.store.engine import read_connection, write_transaction
from app.store.tables.base import utcnow

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
    kind: str = Field(
        description="own: updates of the app's own requests; feed: the public events of any "
        "request that match the filters."
    )
    events: str | None = Field(default=None, description="A feed's events: created,updated.")
    jurisdiction_id: str | None = Field(default=None, description="A feed's jurisdiction.")
    service_code: str | None = Field(default=None, description="A feed's service codes.")
    ward: str | None = Field(default=None, description="A feed's ward codes.")
    bbox: str | None = Field(
        default=None, description="A feed's box: min_long,min_lat,max_long,max_lat."
    )


class Delivery(BaseModel):
    """An item of a webhook's delivery log."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"xml": {"name": "delivery"}})

    delivery_id: int
    event: str | None = Field(description="service_request.created or service_request.updated.")
    service_request_id: str | None
    state: str = Field(description="pending, delivered or failed (after the last attempt).")
    attempts: int
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None
    created_at: str
    delivered_at: str | None


class Replayed(BaseModel):
    """The item of a replay response."""

    model_config = _ITEM

    id: int
    replay_from: str = Field(description="Events from this time on are sent again, in order.")


class WebhookDeleted(BaseModel):
    """The item of a DELETE webhook response."""

    model_config = _ITEM

    id: int
    deleted: bool


_URL = "https://app.example.org/open311/hook"
EXAMPLE_CREATED = [{"id": 7, "url": _URL, "secret": "whsec_" + "x" * 43}]
EXAMPLE_LIST = [
    {
        "id": 7,
        "url": _URL,
        "active": True,
        "created_at": "2024-03-01T09:30:00+00:00",
        "kind": "own",
        "events": None,
        "jurisdiction_id": None,
        "service_code": None,
        "ward": None,
        "bbox": None,
    },
    {
        "id": 8,
        "url": _URL + "/feed",
        "active": True,
        "created_at": "2024-03-02T10:00:00+00:00",
        "kind": "feed",
        "events": "created,updated",
        "jurisdiction_id": "toronto.ca",
        "service_code": "POTHOLE,GRAFFITI",
        "ward": None,
        "bbox": "-79.6,43.6,-79.2,43.8",
    },
]
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
            "of the app's requests (or, with events or a filter, per matching event of any "
            "request). It must be a public address (not loopback, link-local, private or "
            "otherwise special) unless the operator allows private targets.",
            "examples": [_URL],
        },
        "events": {
            "type": "string",
            "description": "A feed subscription: created, updated or created,updated (the "
            "default when a filter is given): new requests and updates of any request that "
            "match the filters, public fields only, in order.",
            "examples": ["created,updated"],
        },
        "jurisdiction_id": {
            "type": "string",
            "description": "A feed's jurisdiction (a restricted key's feed is always of its own).",
        },
        "service_code": {"type": "string", "description": "A feed's service codes (comma list)."},
        "ward": {
            "type": "string",
            "description": "A feed's ward codes (comma list; needs jurisdiction_id).",
        },
        "bbox": {
            "type": "string",
            "description": "A feed's box: min_long,min_lat,max_long,max_lat (WGS84).",
            "examples": ["-79.6,43.6,-79.2,43.8"],
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
    """Subscribe a URL to signed POSTs about updates of the requests this app submitted, or
    (with events or a filter) about new requests and updates of any request that match."""
    refuse_uploads(params)
    key, _ = await check_key_and_limit(
        state.engine, state.limiter, state.settings, params.one("api_key")
    )
    app_id = _app_of(key)
    # Checked before the transaction: it may resolve the host name.
    url = await checked_url(
        params.one("url"), allow_private=state.settings.webhooks.allow_private_targets
    )
    spec = await feed_spec(params, key, state.jurisdictions)
    async with write_transaction(state.engine) as conn:
        if spec is None:
            subscription_id, secret = await create_subscription(conn, app_id=app_id, url=url)
        else:
            subscription_id, secret = await create_feed(conn, app_id=app_id, url=url, spec=spec)
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
        examples={
            "webhooks": ("A webhook and a feed", EXAMPLE_LIST),
            "none": ("No webhook", []),
        },
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
    codes = {j.pk: j.code for j in await state.jurisdictions.all()}
    items = [
        {
            **{k: v for k, v in row.items() if k != "jurisdiction_pk"},
            "created_at": format_w3c(row["created_at"], UTC),
            "jurisdiction_id": codes.get(row["jurisdiction_pk"]),
        }
        for row in rows
    ]
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


SubscriptionId = Annotated[int, Path(description="The webhook's id.", ge=1, le=2**31 - 1)]
EXAMPLE_LOG = [
    {
        "delivery_id": 42,
        "event": "service_request.created",
        "service_request_id": "638344",
        "state": "delivered",
        "attempts": 1,
        "last_status": 204,
        "last_error": None,
        "created_at": "2024-03-01T09:30:00+00:00",
        "delivered_at": "2024-03-01T09:30:01+00:00",
    }
]
LOG_PARAMETERS = (
    WEBHOOK_API_KEY,
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": LOG_MAX},
        "description": f"Deliveries a page, newest first (default and most: {LOG_MAX}).",
    },
    {
        "name": "before",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Only deliveries older than this delivery_id (the next page).",
    },
)


def _whole(text: str | None, name: str, top: int) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:19]) <= top:
        raise BadRequest(f"{name} must be a whole number from 1 to {top}.")
    return int(text)


@router.get(
    "/webhooks/{subscription_id}/deliveries.{format}",
    operation_id="webhooks-deliveries",
    response_class=Response,
    responses=responses(
        Delivery,
        root="deliveries",
        many=True,
        errors=(400, 403),
        description="The webhook's deliveries, newest first: event, request, state, attempts "
        "and the receiver's last answer.",
        examples={"log": ("One delivery", EXAMPLE_LOG), "none": ("No delivery yet", [])},
    ),
    openapi_extra=documented(*LOG_PARAMETERS),
)
async def get_deliveries(
    subscription_id: SubscriptionId,
    fmt: FormatDep,
    state: StateDep,
    query: QueryDep,
    viewer: ViewerDep,
) -> Response:
    """The delivery log of one of the app's webhooks (404 for another app's)."""
    if viewer is None:
        raise InvalidApiKey("A valid api_key of the app is required.")
    problems: list[str] = []
    limit = _whole(query.one("limit", problems), "limit", LOG_MAX) or LOG_MAX
    before = _whole(query.one("before", problems), "before", 2**62)
    if problems:
        raise BadRequest(*problems)
    async with read_connection(state.engine) as conn:
        items = await delivery_log(
            conn,
            app_id=_app_of(viewer),
            subscription_id=subscription_id,
            limit=limit,
            before=before,
        )
    return render("deliveries", items, fmt)


REPLAY_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "since"],
    "properties": {
        "api_key": {"type": "string", "description": "Any valid key of the app."},
        "since": {
            "type": "string",
            "description": "W3C datetime with a zone, at most webhooks.max_replay_days ago "
            "(default 7): the events since then are sent again, in order.",
            "examples": ["2024-03-01T09:00:00-05:00"],
        },
    },
}


@router.post(
    "/webhooks/{subscription_id}/replay.{format}",
    operation_id="webhooks-replay",
    response_class=Response,
    responses=responses(
        Replayed,
        root=ROOT,
        many=True,
        errors=(400, 403, 413),
        description="The feed subscription will receive again every matching event since "
        "the given time, in order (receivers deduplicate on the event).",
        examples={"replayed": ("A replay", [{"id": 7, "replay_from": "2024-03-01T14:00:00Z"}])},
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "Form fields; also read from the query string (the body wins).",
            "content": {
                "application/x-www-form-urlencoded": {"schema": REPLAY_BODY_SCHEMA},
                "multipart/form-data": {"schema": REPLAY_BODY_SCHEMA},
            },
        }
    },
)
async def replay_webhook(
    subscription_id: SubscriptionId, fmt: FormatDep, state: StateDep, params: PostParamsDep
) -> Response:
    """Send a feed subscription's events again from a point in time."""
    key, _ = await check_key_and_limit(
        state.engine, state.limiter, state.settings, params.one("api_key")
    )
    app_id = _app_of(key)
    since = parse_since(params.one("since"), state.settings.webhooks.max_replay_days, utcnow())
    async with write_transaction(state.engine) as conn:
        await replay(conn, app_id=app_id, subscription_id=subscription_id, since=since)
    return render(ROOT, [{"id": subscription_id, "replay_from": format_w3c(since, UTC)}], fmt)
