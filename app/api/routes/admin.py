"""Admin JSON API (operators): apps, API keys, sandbox reset.

Authenticated with an API key that has the ``admin`` scope, sent as
``Authorization: Bearer <key>``. Paths end in ``.json`` so errors come back as JSON
GeoReport error lists like everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.api.deps import JurisdictionDep, StateDep
from app.api.responses import render
from app.db import write_transaction
from app.domain.api_keys import (
    KeyInfo,
    create_key,
    get_or_create_app,
    list_apps,
    list_keys,
    require_scope,
    reset_sandbox,
    revoke_key,
    rotate_key,
    verify_key,
)
from app.domain.updates import Change, apply_change, history
from app.errors import Forbidden, NotFound
from app.georeport.formats import Format

router = APIRouter(prefix="/admin/v1", tags=["admin"])


async def admin_key(
    state: StateDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <API key with the admin scope>")
    ] = None,
) -> KeyInfo:
    """The caller's admin key (403 without one)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Forbidden("The admin API needs 'Authorization: Bearer <admin API key>'.")
    async with state.engine.connect() as conn:
        key = await verify_key(conn, token.strip())
    require_scope(key, "admin")
    return key


AdminDep = Annotated[KeyInfo, Depends(admin_key)]


class AppIn(BaseModel):
    """A new (or updated) app."""

    name: str = Field(min_length=1, max_length=255)
    contact: str | None = Field(default=None, max_length=1000)


class KeyIn(BaseModel):
    """A new API key."""

    app: str = Field(min_length=1, max_length=255, description="App name (created if new).")
    name: str | None = Field(default=None, max_length=255, description="Label of the key.")
    contact: str | None = Field(default=None, max_length=1000)
    scopes: list[str] = Field(default_factory=lambda: ["submit"])
    jurisdiction_id: str | None = Field(default=None, max_length=255)
    sandbox: bool = False
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


class SandboxReset(BaseModel):
    """Which sandbox to empty (all apps when no app is named)."""

    app: str | None = None


def _json(value: Any, status: int = 200) -> Response:
    return render("admin", _plain(value), Format.json, status_code=status)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@router.get("/apps.json", operation_id="admin-apps-list", response_class=Response)
async def get_apps(state: StateDep, _: AdminDep) -> Response:
    """Every client app with its number of active keys."""
    async with state.engine.connect() as conn:
        return _json(await list_apps(conn))


@router.post("/apps.json", operation_id="admin-apps-create", response_class=Response)
async def post_app(body: AppIn, state: StateDep, _: AdminDep) -> Response:
    """Create an app (or update its contact)."""
    async with write_transaction(state.engine) as conn:
        app_id = await get_or_create_app(conn, body.name, body.contact)
    return _json({"id": app_id, "name": body.name, "contact": body.contact}, 201)


@router.get("/keys.json", operation_id="admin-keys-list", response_class=Response)
async def get_keys(state: StateDep, _: AdminDep) -> Response:
    """Every key (prefix only, never the key)."""
    async with state.engine.connect() as conn:
        keys = await list_keys(conn)
    return _json(
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
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in keys
        ]
    )


@router.post("/keys.json", operation_id="admin-keys-create", response_class=Response)
async def post_key(body: KeyIn, state: StateDep, _: AdminDep) -> Response:
    """Create a key; the response is the only time the key is shown."""
    async with write_transaction(state.engine) as conn:
        key, key_id = await create_key(
            conn,
            body.name or body.app,
            app=body.app,
            contact=body.contact,
            scopes=body.scopes,
            jurisdiction=body.jurisdiction_id,
            sandbox=body.sandbox,
            rate_limit_per_minute=body.rate_limit_per_minute,
        )
    return _json({"id": key_id, "key": key, "prefix": key[:8], "app": body.app}, 201)


@router.post(
    "/keys/{key_id}/rotate.json", operation_id="admin-keys-rotate", response_class=Response
)
async def post_rotate(key_id: int, state: StateDep, _: AdminDep) -> Response:
    """Replace a key by a new one with the same rights; the old one is revoked."""
    async with write_transaction(state.engine) as conn:
        key, new_id = await rotate_key(conn, key_id)
    state.keys.invalidate()
    return _json({"id": new_id, "key": key, "prefix": key[:8], "replaces": key_id}, 201)


@router.post(
    "/keys/{key_id}/revoke.json", operation_id="admin-keys-revoke", response_class=Response
)
async def post_revoke(key_id: int, state: StateDep, _: AdminDep) -> Response:
    """Revoke a key at once."""
    async with write_transaction(state.engine) as conn:
        if not await revoke_key(conn, key_id):
            raise NotFound(f"No active key {key_id}.")
    state.keys.invalidate()
    return _json({"id": key_id, "revoked": True})


@router.post("/sandbox/reset.json", operation_id="admin-sandbox-reset", response_class=Response)
async def post_sandbox_reset(body: SandboxReset, state: StateDep, _: AdminDep) -> Response:
    """Delete the sandbox requests of one app (or of every app)."""
    async with write_transaction(state.engine) as conn:
        deleted = await reset_sandbox(conn, body.app)
    return _json({"deleted": deleted, "app": body.app})


class UpdateIn(BaseModel):
    """A staff update of a request; omitted fields stay as they are."""

    status: str | None = Field(
        default=None,
        description="open, closed, or a detailed status such as IN_PROGRESS, "
        "ACTION_SCHEDULED, FIXED, DUPLICATE, NOT_COUNCILS_RESPONSIBILITY (any case).",
    )
    status_notes: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    expected_datetime: str | None = Field(default=None, description="W3C datetime with zone.")
    description: str | None = Field(default=None, description="Public text of the update.")
    media_url: str | None = None
    external_status_code: str | None = None


@router.post(
    "/requests/{service_request_id}/updates.json",
    operation_id="admin-requests-update",
    response_class=Response,
)
async def post_request_update(
    service_request_id: str,
    body: UpdateIn,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    _: AdminDep,
) -> Response:
    """Change a request's status and details; every change is kept as an update."""
    async with write_transaction(state.engine) as conn:
        item = await apply_change(
            conn, jurisdiction, service_request_id, Change(**body.model_dump())
        )
    return _json(item, 201)


@router.get(
    "/requests/{service_request_id}/updates.json",
    operation_id="admin-requests-history",
    response_class=Response,
)
async def get_request_history(
    service_request_id: int, state: StateDep, jurisdiction: JurisdictionDep, _: AdminDep
) -> Response:
    """The update history of a request."""
    async with state.engine.connect() as conn:
        return _json(await history(conn, jurisdiction, service_request_id))
