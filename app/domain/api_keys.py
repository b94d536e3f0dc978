"""Client apps and API keys: random, shown once, stored as a SHA-256 hash with a short prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.boundaries import jurisdiction_pk
from app.errors import BadRequest, Forbidden, InvalidApiKey, NotFound
from app.store.tables import ApiKey, ClientApp, Jurisdiction, ServiceRequest
from app.store.tables.base import utcnow

API_KEY = ApiKey.__table__
APP = ClientApp.__table__
JURISDICTION = Jurisdiction.__table__
REQUEST = ServiceRequest.__table__
PREFIX_LENGTH = 8
SCOPES = ("submit", "update", "staff", "read_private", "admin")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_text() -> str:
    """A fresh key: an 8-character prefix, a dot and 192 random bits."""
    return f"{secrets.token_hex(PREFIX_LENGTH // 2)}.{secrets.token_urlsafe(24)}"


def parse_scopes(scopes: str | Sequence[str]) -> tuple[str, ...]:
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


def _outside(jurisdiction: int) -> Any:
    """Keys of an app that are not restricted to ``jurisdiction``."""
    return (
        select(API_KEY.c.id)
        .where(
            API_KEY.c.app_id == APP.c.id,
            (API_KEY.c.jurisdiction_id.is_(None)) | (API_KEY.c.jurisdiction_id != jurisdiction),
        )
        .exists()
    )


async def app_within(conn: AsyncConnection, name: str, jurisdiction: int) -> bool:
    """True when the app ``name`` is new or every key of it is restricted to
    ``jurisdiction`` (what an admin restricted to that jurisdiction may change)."""
    row = (
        await conn.execute(select(APP.c.id, _outside(jurisdiction)).where(APP.c.name == name))
    ).first()
    return row is None or not row[1]


async def list_apps(conn: AsyncConnection, within: int | None = None) -> list[dict[str, object]]:
    """Every app with its number of active keys (``within``: only apps with a key restricted
    to that jurisdiction and none outside it)."""
    active = (
        select(func.count(API_KEY.c.id))
        .where(API_KEY.c.app_id == APP.c.id, API_KEY.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    query = select(APP.c.id, APP.c.name, APP.c.contact, APP.c.created_at, active)
    if within is not None:
        has_key = (
            select(API_KEY.c.id)
            .where(API_KEY.c.app_id == APP.c.id, API_KEY.c.jurisdiction_id == within)
            .exists()
        )
        query = query.where(has_key, ~_outside(within))
    rows = await conn.execute(query.order_by(APP.c.id))
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
    scopes: str | Sequence[str] = "submit",
    jurisdiction: str | None = None,
    jurisdiction_pk: int | None = None,
    sandbox: bool = False,
    rate_limit_per_minute: int | None = None,
) -> tuple[str, int]:
    """Store a new key (random unless given) for an app (created when missing); (key, id).

    The key is restricted to the jurisdiction named by code (``jurisdiction``) or primary key
    (``jurisdiction_pk``), if any."""
    key = key or new_key_text()
    if len(key) < 8:
        raise BadRequest("An API key must be at least 8 characters long.")
    scope_list = parse_scopes(scopes)
    if sandbox and "admin" in scope_list:
        # A policy refusal (see app.domain.policy: sandbox keys never use the admin API).
        raise Forbidden("A sandbox key cannot have the admin scope.")
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
                scopes=" ".join(scope_list),
                jurisdiction_id=(
                    jurisdiction_pk
                    if jurisdiction_pk is not None
                    else await _jurisdiction_pk(conn, jurisdiction)
                ),
                sandbox=sandbox,
                rate_limit_per_minute=rate_limit_per_minute,
                created_at=utcnow(),
            )
            .returning(API_KEY.c.id)
        )
    ).scalar_one()
    return key, int(key_id)


async def ensure_key(conn: AsyncConnection, name: str, key: str) -> bool:
    """Store this key (app ``name``, default scope) unless it is stored already; True when
    created."""
    found = (
        await conn.execute(select(API_KEY.c.id).where(API_KEY.c.key_hash == hash_key(key)))
    ).first()
    if found is not None:
        return False
    await create_key(conn, name, key)
    return True


def _active(key_id: int, within: int | None) -> Any:
    condition = (API_KEY.c.id == key_id) & API_KEY.c.revoked_at.is_(None)
    if within is not None:
        condition = condition & (API_KEY.c.jurisdiction_id == within)
    return condition


async def rotate_key(
    conn: AsyncConnection, key_id: int, within: int | None = None
) -> tuple[str, int]:
    """Replace an active key by a new one with the same app and rights; (new key, new id).

    ``within``: only a key restricted to that jurisdiction (404 otherwise)."""
    row = (await conn.execute(select(API_KEY).where(_active(key_id, within)))).mappings().first()
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


async def list_keys(conn: AsyncConnection, within: int | None = None) -> list[ApiKeyListing]:
    """Every key, oldest first (``within``: only keys restricted to that jurisdiction)."""
    query = (
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
    if within is not None:
        query = query.where(API_KEY.c.jurisdiction_id == within)
    return [ApiKeyListing(*tuple(row)) for row in await conn.execute(query)]


async def revoke_key(conn: AsyncConnection, key_id: int, within: int | None = None) -> bool:
    """Revoke a key; False when there is no such active key (``within``: restricted to that
    jurisdiction)."""
    result = await conn.execute(
        update(API_KEY).where(_active(key_id, within)).values(revoked_at=utcnow())
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


async def reset_sandbox(
    conn: AsyncConnection, app: str | None = None, within: int | None = None
) -> int:
    """Delete sandbox requests (of one app, or all; ``within``: of that jurisdiction only);
    how many."""
    condition: ColumnElement[bool] = REQUEST.c.sandbox.is_(True)
    if within is not None:
        condition = condition & (REQUEST.c.jurisdiction_id == within)
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
        assert key is not None  # noqa: S101 - invariant, not an input check
        self._entries[hash_key(key)] = (time.monotonic() + self._ttl, info)
        return info
