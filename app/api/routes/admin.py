"""Admin JSON API (operators): apps, API keys, sandbox reset.

Authenticated with an API key that has the ``admin`` scope, sent as
``Authorization: Bearer <key>``. Paths end in ``.json`` so errors come back as JSON
GeoReport error lists like everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response

from app.api.deps import StateDep
from app.api.docs import documented, json_responses
from app.api.routes import admin_promise
from app.api.routes.admin_auth import (
    AUTH,
    BODY,
    NAME,
    REQUEST_ID_MAX,
    TEXT,
    AdminCallDep,
    AdminDep,
    AdminRoute,
    ChannelName,
    KeyId,
    admin_json,
    whole_number,
)
from app.api.routes.updates import UPDATE_EXAMPLE, RequestUpdateItem
from app.api.schemas import CONTROL_MULTILINE, JURISDICTION_ID, MEDIA_URL, WS
from app.domain import policy
from app.domain.api_keys import (
    KeyInfo,
    app_channel,
    app_within,
    create_key,
    get_or_create_app,
    list_apps,
    list_keys,
    reset_sandbox,
    revoke_key,
    rotate_key,
)
from app.domain.boundaries import jurisdiction_pk
from app.domain.updates import DETAILED_STATUSES, Change, apply_change, history
from app.errors import Forbidden, NotFound
from app.media.runtime import sandbox_photos
from app.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


router = APIRouter(prefix="/admin/v1", tags=["admin"], route_class=AdminRoute)


class AppIn(BaseModel):
    """A new (or updated) app."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=255, pattern=NAME)
    contact: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    channel: ChannelName | None = Field(
        default=None,
        description="Intake channel of the requests its keys file (default api; unchanged "
        "when omitted).",
    )


Scope = Literal["submit", "update", "staff", "read_private", "admin", "reports"]  # api_keys.SCOPES


def _default_scopes() -> list[Scope]:
    return ["submit"]


class KeyIn(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid", strict=True)

    app: str = Field(
        min_length=1, max_length=255, pattern=NAME, description="App name (created if new)."
    )
    name: str | None = Field(
        default=None, max_length=255, pattern=NAME, description="Label of the key."
    )
    contact: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    scopes: list[Scope] = Field(default_factory=_default_scopes, min_length=1, max_length=5)
    jurisdiction_id: str | None = Field(
        default=None, max_length=255, pattern=NAME, description="Restrict the key to one."
    )
    sandbox: bool = False
    rate_limit_per_minute: (
        Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(whole_number)] | None
    ) = None
    channel: ChannelName | None = Field(
        default=None, description="The key's own intake channel (default: its app's)."
    )


class SandboxReset(BaseModel):
    """Which sandbox to empty (all apps when no app is named)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    app: str | None = Field(default=None, max_length=255, pattern=NAME)


class AdminApp(BaseModel):
    """An app as listed."""

    id: int
    name: str
    contact: str | None
    channel: ChannelName
    created_at: str = Field(description="ISO 8601 datetime (UTC).")
    active_keys: int


class AdminAppCreated(BaseModel):
    """The app created or updated."""

    id: int
    name: str
    contact: str | None
    channel: ChannelName


class AdminKey(BaseModel):
    """A key as listed: its prefix, never the key."""

    id: int
    name: str
    prefix: str
    app: str | None
    scopes: list[str]
    jurisdiction_id: str | None
    sandbox: bool
    rate_limit_per_minute: int | None
    channel: ChannelName = Field(description="Its intake channel: its own, else its app's.")
    created_at: str = Field(description="ISO 8601 datetime (UTC).")
    revoked_at: str | None = Field(description="ISO 8601 datetime (UTC); null while active.")


class AdminKeyCreated(BaseModel):
    """A new key: the only time the key itself is shown."""

    id: int
    key: str
    prefix: str
    app: str


class AdminKeyRotated(BaseModel):
    """The key that replaces a revoked one (same rights)."""

    id: int
    key: str
    prefix: str
    replaces: int


class AdminKeyRevoked(BaseModel):
    """A revoked key."""

    id: int
    revoked: bool


class AdminSandboxReset(BaseModel):
    """How many sandbox requests were deleted."""

    deleted: int
    app: str | None


class AdminUpdate(BaseModel):
    """One update of a request's history."""

    update_id: str
    status: str
    updated_datetime: str
    description: str | None
    external_status_code: str | None
    expected_datetime: str | None = Field(
        description="The expected_datetime this update set (a staff override), if any."
    )
    by: str = Field(description="staff, or 'app N' for an update sent by app N.")
    key_id: int | None = Field(description="The API key that made it (null: the CLI).")


KEY_EXAMPLE = {"id": 7, "key": "o311_3kq9V0x7Yp2mB1", "prefix": "o311_3kq"}


async def _require_app_within(conn: AsyncConnection, admin: KeyInfo, app: str) -> None:
    """A restricted admin changes only new apps and apps whose keys are all its own
    jurisdiction's."""
    if admin.jurisdiction_pk is not None and not await app_within(conn, app, admin.jurisdiction_pk):
        raise Forbidden(f"The app {app!r} has keys outside this admin key's jurisdiction.")


@router.get(
    "/apps.json",
    operation_id="admin-apps-list",
    response_class=Response,
    responses=json_responses(
        AdminApp,
        many=True,
        errors=AUTH,
        description="Every app.",
        example=[
            {
                "id": 1,
                "name": "FixMyStreet",
                "contact": "ops@example.org",
                "channel": "api",
                "created_at": "2026-11-02T14:05:11+00:00",
                "active_keys": 2,
            }
        ],
    ),
)
async def get_apps(state: StateDep, admin: AdminDep) -> Response:
    """Every client app with its number of active keys (an admin restricted to a jurisdiction
    sees the apps whose keys are all restricted to it)."""
    async with state.engine.connect() as conn:
        return admin_json(await list_apps(conn, admin.jurisdiction_pk))


@router.post(
    "/apps.json",
    operation_id="admin-apps-create",
    response_class=Response,
    status_code=201,
    responses=json_responses(
        AdminAppCreated,
        many=False,
        errors=BODY,
        status=201,
        description="The app.",
        example={
            "id": 1,
            "name": "FixMyStreet",
            "contact": "ops@example.org",
            "channel": "mobile_app",
        },
    ),
)
async def post_app(body: AppIn, state: StateDep, admin: AdminDep) -> Response:
    """Create an app (or update its contact and intake channel)."""
    async with write_transaction(state.engine) as conn:
        await _require_app_within(conn, admin, body.name)
        app_id = await get_or_create_app(conn, body.name, body.contact, body.channel)
        channel = await app_channel(conn, app_id)
    state.keys.invalidate()
    return admin_json(
        {"id": app_id, "name": body.name, "contact": body.contact, "channel": channel}, 201
    )


@router.get(
    "/keys.json",
    operation_id="admin-keys-list",
    response_class=Response,
    responses=json_responses(
        AdminKey,
        many=True,
        errors=AUTH,
        description="Every key, active or revoked.",
        example=[
            {
                "id": 7,
                "name": "FixMyStreet production",
                "prefix": "o311_3kq",
                "app": "FixMyStreet",
                "scopes": ["submit", "update"],
                "jurisdiction_id": None,
                "sandbox": False,
                "rate_limit_per_minute": None,
                "channel": "api",
                "created_at": "2026-11-02T14:05:11+00:00",
                "revoked_at": None,
            }
        ],
    ),
)
async def get_keys(state: StateDep, admin: AdminDep) -> Response:
    """Every key (prefix only, never the key); an admin restricted to a jurisdiction sees the
    keys restricted to it."""
    async with state.engine.connect() as conn:
        keys = await list_keys(conn, admin.jurisdiction_pk)
    return admin_json(
        [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "app": k.app,
                "scopes": k.scopes.split(),
                "jurisdiction_id": k.jurisdiction,
                "sandbox": k.sandbox,
                "rate_limit_per_minute": k.rate_limit_per_minute,
                "channel": k.channel,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in keys
        ]
    )


@router.post(
    "/keys.json",
    operation_id="admin-keys-create",
    response_class=Response,
    status_code=201,
    responses=json_responses(
        AdminKeyCreated,
        many=False,
        errors=BODY,
        status=201,
        description="The new key (shown this once).",
        example={**KEY_EXAMPLE, "app": "FixMyStreet"},
    ),
)
async def post_key(body: KeyIn, state: StateDep, admin: AdminDep) -> Response:
    """Create a key; the response is the only time the key is shown. A restricted admin's
    keys carry its restriction."""
    async with write_transaction(state.engine) as conn:
        requested = (
            await jurisdiction_pk(conn, body.jurisdiction_id) if body.jurisdiction_id else None
        )
        restriction = policy.admin_jurisdiction(admin, requested)
        await _require_app_within(conn, admin, body.app)
        key, key_id = await create_key(
            conn,
            body.name or body.app,
            app=body.app,
            contact=body.contact,
            scopes=body.scopes,
            jurisdiction_pk=restriction,
            sandbox=body.sandbox,
            rate_limit_per_minute=body.rate_limit_per_minute,
            channel=body.channel,
        )
    return admin_json({"id": key_id, "key": key, "prefix": key[:8], "app": body.app}, 201)


@router.post(
    "/keys/{key_id}/rotate.json",
    operation_id="admin-keys-rotate",
    response_class=Response,
    status_code=201,
    responses=json_responses(
        AdminKeyRotated,
        many=False,
        errors=(400, 403),
        status=201,
        description="The new key (shown this once); the old one is revoked.",
        example={**KEY_EXAMPLE, "id": 8, "replaces": 7},
    ),
)
async def post_rotate(key_id: KeyId, state: StateDep, admin: AdminDep) -> Response:
    """Replace a key by a new one with the same rights; the old one is revoked."""
    async with write_transaction(state.engine) as conn:
        key, new_id = await rotate_key(conn, key_id, admin.jurisdiction_pk)
    state.keys.invalidate()
    return admin_json({"id": new_id, "key": key, "prefix": key[:8], "replaces": key_id}, 201)


@router.post(
    "/keys/{key_id}/revoke.json",
    operation_id="admin-keys-revoke",
    response_class=Response,
    responses=json_responses(
        AdminKeyRevoked,
        many=False,
        errors=(400, 403),
        description="The key is revoked (404: no active key with this id).",
        example={"id": 7, "revoked": True},
    ),
)
async def post_revoke(key_id: KeyId, state: StateDep, admin: AdminDep) -> Response:
    """Revoke a key at once."""
    async with write_transaction(state.engine) as conn:
        if not await revoke_key(conn, key_id, admin.jurisdiction_pk):
            raise NotFound(f"No active key {key_id}.")
    state.keys.invalidate()
    return admin_json({"id": key_id, "revoked": True})


@router.post(
    "/sandbox/reset.json",
    operation_id="admin-sandbox-reset",
    response_class=Response,
    responses=json_responses(
        AdminSandboxReset,
        many=False,
        errors=BODY,
        description="The sandbox requests and their photos are deleted.",
        example={"deleted": 12, "app": "FixMyStreet"},
    ),
)
async def post_sandbox_reset(body: SandboxReset, state: StateDep, admin: AdminDep) -> Response:
    """Delete the sandbox requests of one app (or of every app); a restricted admin's reset
    reaches only its jurisdiction's."""
    async with write_transaction(state.engine) as conn:
        deleted = await reset_sandbox(
            conn, body.app, admin.jurisdiction_pk, photos=sandbox_photos(state.settings.media)
        )
    return admin_json({"deleted": deleted, "app": body.app})


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else "[_ ]" for c in word)


# A status in any case, blanks around, "_" or " " between words; "" leaves it unchanged.
STATUS = f"^(?:[{WS}]*(?:{'|'.join(_any_case(s) for s in sorted(DETAILED_STATUSES))})[{WS}]*)?$"
UPDATE_TEXT = f"^[^{CONTROL_MULTILINE}]*$"  # what staff may write: tabs and newlines too


def _text_field(max_length: int, description: str | None = None) -> Any:
    return Field(default=None, max_length=max_length, pattern=UPDATE_TEXT, description=description)


def _expected_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(
        description="W3C datetime with a zone; empty leaves it unchanged.",
        anyOf=[{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}],
    )


class UpdateIn(BaseModel):
    """A staff update of a request; omitted (or empty) fields stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: str | None = Field(
        default=None,
        pattern=STATUS,
        description="open, closed, or a detailed status such as IN_PROGRESS, "
        "ACTION_SCHEDULED, FIXED, DUPLICATE, NOT_COUNCILS_RESPONSIBILITY (any case).",
    )
    status_notes: str | None = _text_field(4000)
    agency_responsible: str | None = _text_field(255)
    service_notice: str | None = _text_field(1000)
    expected_datetime: str | None = Field(default=None, json_schema_extra=_expected_schema)
    description: str | None = _text_field(4000, "Public text of the update.")
    media_url: str | None = Field(
        default=None, max_length=2048, pattern=MEDIA_URL, description="An http(s) URL."
    )
    external_status_code: str | None = _text_field(255)


@router.post(
    "/requests/{service_request_id}/updates.json",
    operation_id="admin-requests-update",
    response_class=Response,
    status_code=201,
    responses=json_responses(
        RequestUpdateItem,
        many=False,
        errors=BODY,
        status=201,
        description="The update, as GET servicerequestupdates lists it.",
        example=UPDATE_EXAMPLE,
    ),
    openapi_extra=documented(JURISDICTION_ID),
)
async def post_request_update(
    service_request_id: str,
    body: UpdateIn,
    call: AdminCallDep,
) -> Response:
    """Change a request's status and details; every change is kept as an update."""
    async with write_transaction(call.state.engine) as conn:
        item = await apply_change(
            conn,
            call.jurisdiction,
            service_request_id,
            Change(**body.model_dump()),
            actor=call.admin,
            first_contact_window=call.state.settings.service_promise.first_contact_window,
        )
    return admin_json(item, 201)


@router.get(
    "/requests/{service_request_id}/updates.json",
    operation_id="admin-requests-history",
    response_class=Response,
    responses=json_responses(
        AdminUpdate,
        many=True,
        errors=(*AUTH, 400),
        description="Every update of the request, oldest first.",
        example=[
            {
                "update_id": "41",
                "status": "IN_PROGRESS",
                "updated_datetime": "2026-11-03T09:12:00-05:00",
                "description": "Crew assigned.",
                "external_status_code": None,
                "expected_datetime": None,
                "by": "staff",
                "key_id": 3,
            }
        ],
    ),
    openapi_extra=documented(JURISDICTION_ID),
)
async def get_request_history(
    service_request_id: Annotated[int, Path(ge=1, le=REQUEST_ID_MAX, examples=[638344])],
    call: AdminCallDep,
) -> Response:
    """The update history of a request."""
    async with call.state.engine.connect() as conn:
        return admin_json(await history(conn, call.jurisdiction, service_request_id))


# Divisions, services, service levels, catalogue imports, request facts: same prefix, same key
# check (app.api.routes.admin_promise). Their routes join this router's own list, so the app
# (which mounts this router) serves them and every check that walks these routes sees them.
router.routes.extend(admin_promise.router.routes)
