"""Tokens of batch submissions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.domain.jurisdictions import JurisdictionInfo
from app.errors import TokenNotFound
from app.store.tokens import find_token

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]+")


async def resolve_token(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, token: str
) -> dict[str, Any]:
    """GET tokens/{token}: the id once it exists (null while pending), or 404."""
    if len(token) > 64 or not TOKEN_TEXT.fullmatch(token):
        # Tokens are URL-safe base64: anything else cannot exist (and a NUL must not reach
        # PostgreSQL, which refuses it as a query parameter).
        raise TokenNotFound(f"No token {token[:64]!r}.")
    found = await find_token(conn, jurisdiction.pk, token)
    if found is None:
        raise TokenNotFound(f"No token {token!r}.")
    request_id = found.service_request_id
    return {
        "service_request_id": str(request_id) if request_id is not None else None,
        "token": found.token,
    }
