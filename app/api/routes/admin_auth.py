"""The admin API's plumbing: the admin key check, its route class, shared patterns, rendering.

``app.api.routes.admin`` (apps, keys, sandbox, request updates) and
``app.api.routes.admin_promise`` (divisions, services, service levels, catalogue imports,
request facts) share it; both mount under ``/admin/v1``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Path, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.api.deps import AppState, JurisdictionDep, StateDep, bearer_token, refuse_failing_client
from app.api.responses import render
from app.api.schemas import CONTROL, WS
from app.domain import policy
from app.domain.api_keys import KeyInfo, verify_key
from app.domain.jurisdictions import JurisdictionInfo
from app.errors import InvalidApiKey
from app.georeport.formats import Format


async def authenticate(request: Request) -> KeyInfo:
    """The caller's admin key from ``Authorization: Bearer`` (403 without a usable one)."""
    state: AppState = request.app.state.open311
    refuse_failing_client(request, state)
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise InvalidApiKey("The admin API needs 'Authorization: Bearer <admin API key>'.")
    async with state.engine.connect() as conn:
        key = await verify_key(conn, token)
    policy.require_admin(key)
    return key


class AdminRoute(APIRoute):
    """An admin route checks the caller's key before FastAPI reads or parses the body, so an
    unauthenticated caller costs no parsing (the edge has already bounded the body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            request.state.admin = await authenticate(request)
            return await handler(request)

        return authenticated


async def admin_key(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="Bearer <API key with the admin scope>")
    ] = None,
) -> KeyInfo:
    """The caller's admin key, verified by :class:`AdminRoute` before anything else."""
    key: KeyInfo = request.state.admin
    return key


AdminDep = Annotated[KeyInfo, Depends(admin_key)]


@dataclass(frozen=True, slots=True)
class AdminCall:
    """An admin call about one jurisdiction (``jurisdiction_id``, documented by
    ``app.api.schemas.JURISDICTION_ID``), by an admin key allowed there."""

    state: AppState
    admin: KeyInfo
    jurisdiction: JurisdictionInfo


async def admin_call(state: StateDep, jurisdiction: JurisdictionDep, admin: AdminDep) -> AdminCall:
    """The jurisdiction of the call and the caller's admin key: 400 when the jurisdiction is
    required and missing, 404 when unknown, 403 when the key is restricted to another."""
    policy.require_jurisdiction(admin, jurisdiction.pk)
    return AdminCall(state, admin, jurisdiction)


AdminCallDep = Annotated[AdminCall, Depends(admin_call)]


# Names and labels: one line of text, not blank; contacts: no control characters.
NAME = f"^[^{CONTROL}]*[^{CONTROL}{WS}][^{CONTROL}]*$"
TEXT = f"^[^{CONTROL}]*$"
# Ids are database keys (keys: 32-bit, requests: 64-bit); larger numbers are a 400, never a
# database error.
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The id of a key.", examples=[7])]
REQUEST_ID_MAX = 2**63 - 1
# Statuses of the admin routes, besides the 404/429/500/503 every route can answer.
AUTH = (403,)
BODY = (400, 403, 413)


# The intake channels (app.georeport.models.Channel), as strict models take them.
ChannelName = Literal[
    "phone",
    "web",
    "mobile_app",
    "email",
    "counter",
    "kiosk",
    "social_media",
    "partner",
    "api",
]


def whole_number(value: Any) -> Any:
    """JSON has one number type: 60.0 is an integer too (strict models refuse floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def admin_json(value: Any, status: int = 200) -> Response:
    """An admin API answer: JSON, datetimes as ISO 8601."""
    return render("admin", _plain(value), Format.json, status_code=status)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
