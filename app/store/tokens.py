"""Tokens of batch submissions: the statements behind ``app.domain.tokens``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import RequestToken

TOKEN = RequestToken.__table__


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token and the request it resolved to (None while pending)."""

    token: str
    service_request_id: int | None


async def find_token(conn: AsyncConnection, jurisdiction_pk: int, token: str) -> StoredToken | None:
    """The token of this jurisdiction, or None."""
    row = (
        await conn.execute(
            select(TOKEN.c.token, TOKEN.c.service_request_id).where(
                TOKEN.c.token == token, TOKEN.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).first()
    if row is None:
        return None
    return StoredToken(token=row[0], service_request_id=row[1])
