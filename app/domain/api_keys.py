"""Client apps and API keys: random, shown once, stored as a SHA-256 hash with a short prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.boundaries import jurisdiction_pk
from app.errors import BadRequest, Forbidden, InvalidApiKey, NotFound
from app.models import ApiKey, ClientApp, Jurisdiction, ServiceRequest
from app.models.base import utcnow

API_KEY = ApiKey.__table__
APP = ClientApp.__table__
JURISDICTION = Jurisdiction.__table__
REQUEST = ServiceRequest.__table__
PREFIX_LENGTH = 8
SCOPES = ("submit", "update", "read_private", "admin")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_text() -> str:
    """A fresh key: an 8-character prefix, a dot and 192 random bits."""
    return f"{secrets.token_hex(PREFIX_LENGTH // 2)}.{secrets.token_urlsafe(24)}"


def parse_scopes(scopes: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated scopes, in canonical order."""
    items = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = [s for s in items if s not in SCOPES]
    if unknown:
        raise BadRequest(f"Unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}.")
    if not items:
        raise BadRequest("A key needs at least one scope.")
    return tuple(s for s in SCOPES if s in items)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A verified key and what it may do."""

    id: int
    app_id: int | None
    app_name: str | None
    scopes: frozenset[str]
    jurisdiction_pk: int | None
    sandbox: bool
    rate_limit_per_minute: int | None

    def can(self, scope: str) -> bool:
        """True when the key has the scope."""
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class ApiKeyListing:
    """A key as listed to operators (never the key itself)."""

    id: int
    name: str
    prefix: str
    app: str | None
    scopes: str
    jurisdiction: str | None
    sandbox: bool
    rate_limit_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None


async def get_or_create_app(conn: AsyncConnection, name: str, contact: str | None = None) -> int:
    """The id of the app with this name, created when missing."""
    found = (await conn.execute(select(APP.c.id).where(APP.c.name == name))).scalar()
    if found is not None:
        if contact:
            await conn.execute(update(APP).where(APP.c.id == found).values(contact=contact))
        return int(found)
    return int(
        (
            await conn.execute(
                insert(APP)
                .values(name=name, contact=contact, created_at=utcnow())
                .returning(APP.c.id)
            )
        ).scalar_one()
    )


async def list_apps(conn: AsyncConnection) -> list[dict[str, object]]:
    """Every app with its number of active keys."""
    active = (
        select(func.count(API_KEY.c.id))
        .where(API_KEY.c.app_id == APP.c.id, API_KEY.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(APP.c.id, APP.c.name, APP.c.contact, APP.c.created_at, active).order_by(APP.c.id)
    )
    return [
        {"id": r[0], "name": r[1], "contact": r[2], "created_at": r[3], "active_keys": r[4]}
        for r in rows
    ]


async def _jurisdiction_pk(conn: AsyncConnection, code: str | None) -> int | None:
    return await jurisdiction_pk(conn, code) if code else None


async def create_key(
    conn: AsyncConnection,
    name: str,
    key: str | None = None,
    *,
    app: str | None = None,
    contact: str | None = None,
    scopes: str | list[str] | tuple[str, ...] = "submit",
    jurisdiction: str | None = None,
    sandbox: bool = False,
    rate_limit_per_minute: int | None = None,
) -> tuple[str, int]:
    """Store a new key (random unless given) for an app (created when missing); (key, id)."""
    key = key or new_key_text()
    if len(key) < 8:
        raise BadRequest("An API key must be at least 8 characters long.")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise BadRequest("rate_limit_per_minute must be a positive number.")
    app_id = await get_or_create_app(conn, app or name, contact)
    key_id = (
        await conn.execute(
            insert(API_KEY)
            .values(
                name=name,
                prefix=key[:PREFIX_LENGTH],
                key_hash=hash_key(key),
                app_id=app_id,
                scopes=" ".join(parse_scopes(scopes)),
                jurisdiction_id=await _jurisdiction_pk(conn, jurisdiction),
                sandbox=sandbox,
                rate_limit_per_minute=rate_limit_per_minute,
                created_at=utcnow(),
            )
            .returning(API_KEY.c.id)
        )
    ).scalar_one()
    return key, int(key_id)


async def rotate_key(conn: AsyncConnection, key_id: int) -> tuple[str, int]:
    """Replace an active key by a new one with the same app and rights; (new key, new id)."""
    row = (
        (
            await conn.execute(
                select(API_KEY).where(API_KEY.c.id == key_id, API_KEY.c.revoked_at.is_(None))
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No active key {key_id}.")
    key = new_key_text()
    new_id = (
        await conn.execute(
            insert(API_KEY)
            .values(
                name=row["name"],
                prefix=key[:PREFIX_LENGTH],
                key_hash=hash_key(key),
                app_id=row["app_id"],
                scopes=row["scopes"],
                jurisdiction_id=row["jurisdiction_id"],
                sandbox=row["sandbox"],
                rate_limit_per_minute=row["rate_limit_per_minute"],
                created_at=utcnow(),
            )
            .returning(API_KEY.c.id)
        )
    ).scalar_one()
    await revoke_key(conn, key_id)
    return key, int(new_id)


async def list_keys(conn: AsyncConnection) -> list[ApiKeyListing]:
    """Every key, oldest first."""
    rows = await conn.execute(
        select(
            API_KEY.c.id,
            API_KEY.c.name,
            API_KEY.c.prefix,
            APP.c.name,
            API_KEY.c.scopes,
            JURISDICTION.c.code,
            API_KEY.c.sandbox,
            API_KEY.c.rate_limit_per_minute,
            API_KEY.c.created_at,
            API_KEY.c.revoked_at,
        )
        .outerjoin(APP, APP.c.id == API_KEY.c.app_id)
        .outerjoin(JURISDICTION, JURISDICTION.c.id == API_KEY.c.jurisdiction_id)
        .order_by(API_KEY.c.id)
    )
    return [ApiKeyListing(*row) for row in rows]


async def revoke_key(conn: AsyncConnection, key_id: int) -> bool:
    """Revoke a key; False when there is no such active key."""
    result = await conn.execute(
        update(API_KEY)
        .where(API_KEY.c.id == key_id, API_KEY.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


async def verify_key(conn: AsyncConnection, key: str | None) -> KeyInfo:
    """The verified, unrevoked key, or 403 (compared in constant time)."""
    # No stored key holds a NUL (PostgreSQL text cannot), and one must not reach the query.
    if not key or len(key) < PREFIX_LENGTH or len(key) > 256 or "\x00" in key:
        raise InvalidApiKey()
    digest = hash_key(key)
    rows = await conn.execute(
        select(
            API_KEY.c.id,
            API_KEY.c.key_hash,
            API_KEY.c.app_id,
            APP.c.name,
            API_KEY.c.scopes,
            API_KEY.c.jurisdiction_id,
            API_KEY.c.sandbox,
            API_KEY.c.rate_limit_per_minute,
        )
        .outerjoin(APP, APP.c.id == API_KEY.c.app_id)
        .where(API_KEY.c.prefix == key[:PREFIX_LENGTH], API_KEY.c.revoked_at.is_(None))
    )
    found: KeyInfo | None = None
    for row in rows:
        # Every candidate is compared, so the time taken does not depend on which matched.
        if hmac.compare_digest(row[1], digest):
            found = KeyInfo(
                id=int(row[0]),
                app_id=row[2],
                app_name=row[3],
                scopes=frozenset(row[4].split()),
                jurisdiction_pk=row[5],
                sandbox=bool(row[6]),
                rate_limit_per_minute=row[7],
            )
    if found is None:
        raise InvalidApiKey("The api_key is not valid (unknown or revoked).")
    return found


def require_scope(key: KeyInfo, scope: str) -> None:
    """403 unless the key has the scope."""
    if not key.can(scope):
        raise Forbidden(f"This api_key lacks the {scope!r} scope.")


async def reset_sandbox(conn: AsyncConnection, app: str | None = None) -> int:
    """Delete sandbox requests (of one app, or all); how many."""
    condition = REQUEST.c.sandbox.is_(True)
    if app is not None:
        app_id = (await conn.execute(select(APP.c.id).where(APP.c.name == app))).scalar()
        if app_id is None:
            raise NotFound(f"No app {app!r}.")
        condition = condition & (REQUEST.c.app_id == app_id)
    result = await conn.execute(delete(REQUEST).where(condition))
    return int(result.rowcount or 0)


class KeyCache:
    """Verified keys, remembered in process for ``ttl`` seconds (saves a query per call).

    Only successful verifications are cached, by the key's hash. Revocation still takes
    effect at once: the per-key rate-limit statement checks the key is active.
    """

    def __init__(self, engine: Any, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._engine = engine
        # Only on PostgreSQL, where every keyed call's rate-limit statement re-checks that the
        # key is active (revocation takes effect at once); SQLite verifies every call.
        self._ttl = ttl if engine.dialect.name == "postgresql" else 0.0
        self._max = max_entries
        self._entries: dict[str, tuple[float, KeyInfo]] = {}

    def invalidate(self) -> None:
        """Forget every cached key."""
        self._entries.clear()

    async def verify(self, key: str | None) -> KeyInfo:
        """The verified key (403 when invalid), from the cache when fresh."""
        if key and PREFIX_LENGTH <= len(key) <= 256:
            digest = hash_key(key)
            entry = self._entries.get(digest)
            if entry is not None and time.monotonic() < entry[0]:
                return entry[1]
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            info = await verify_key(conn, key)
        if len(self._entries) >= self._max:
            self._entries.clear()
        assert key is not None
        self._entries[hash_key(key)] = (time.monotonic() + self._ttl, info)
        return info
