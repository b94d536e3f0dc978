"""API keys: random, shown once, stored as a SHA-256 hash with a short visible prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidApiKey
from app.models import ApiKey
from app.models.base import utcnow

API_KEY = ApiKey.__table__
PREFIX_LENGTH = 8


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_text() -> str:
    """A fresh key: an 8-character prefix, a dot and 192 random bits."""
    return f"{secrets.token_hex(PREFIX_LENGTH // 2)}.{secrets.token_urlsafe(24)}"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as listed to operators (never the key itself)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


async def create_key(conn: AsyncConnection, name: str, key: str | None = None) -> tuple[str, int]:
    """Store a new key (random unless given) and return it with its id."""
    key = key or new_key_text()
    if len(key) < 8:
        raise ValueError("an API key must be at least 8 characters long")
    key_id = (
        await conn.execute(
            insert(API_KEY)
            .values(
                name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key), created_at=utcnow()
            )
            .returning(API_KEY.c.id)
        )
    ).scalar_one()
    return key, key_id


async def list_keys(conn: AsyncConnection) -> list[ApiKeyInfo]:
    """Every key, oldest first."""
    rows = await conn.execute(
        select(
            API_KEY.c.id,
            API_KEY.c.name,
            API_KEY.c.prefix,
            API_KEY.c.created_at,
            API_KEY.c.revoked_at,
        ).order_by(API_KEY.c.id)
    )
    return [ApiKeyInfo(*row) for row in rows]


async def revoke_key(conn: AsyncConnection, key_id: int) -> bool:
    """Revoke a key; False when there is no such active key."""
    result = await conn.execute(
        update(API_KEY)
        .where(API_KEY.c.id == key_id, API_KEY.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


async def verify_key(conn: AsyncConnection, key: str | None) -> int:
    """The id of a valid, unrevoked key, or 403."""
    if not key or len(key) < PREFIX_LENGTH or len(key) > 256:
        raise InvalidApiKey()
    digest = hash_key(key)
    rows = await conn.execute(
        select(API_KEY.c.id, API_KEY.c.key_hash).where(
            API_KEY.c.prefix == key[:PREFIX_LENGTH], API_KEY.c.revoked_at.is_(None)
        )
    )
    for key_id, stored in rows:
        if hmac.compare_digest(stored, digest):
            return int(key_id)
    raise InvalidApiKey("The api_key is not valid (unknown or revoked).")
