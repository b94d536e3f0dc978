"""Tokens of batch submissions."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.jurisdictions import JurisdictionInfo
from app.errors import TokenNotFound
from app.store.tables import RequestToken

TOKEN = RequestToken.__table__
TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]+")


async def resolve_token(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, token: str
) -> dict[str, Any]:
    """GET tokens/{token}: the id once it exists (null while pending), or 404."""
    if len(token) > 64 or not TOKEN_TEXT.fullmatch(token):
        # Tokens are URL-safe base64: anything else cannot exist (and a NUL must not reach
        # PostgreSQL, which refuses it as a query parameter).
        raise TokenNotFound(f"No token {token[:64]!r}.")
    row = (
        await conn.execute(
            select(TOKEN.c.token, TOKEN.c.service_request_id).where(
                TOKEN.c.token == token, TOKEN.c.jurisdiction_id == jurisdiction.pk
            )
        )
    ).first()
    if row is None:
        raise TokenNotFound(f"No token {token!r}.")
    return {
        "service_request_id": str(row[1]) if row[1] is not None else None,
        "token": row[0],
    }
