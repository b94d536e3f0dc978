"""Client apps and API keys: the statements behind ``app.domain.api_keys``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import ApiKey, ClientApp, Jurisdiction, ServiceRequest
from app.store.tables.base import utcnow

API_KEY = ApiKey.__table__
APP = ClientApp.__table__
JURISDICTION = Jurisdiction.__table__
REQUEST = ServiceRequest.__table__


@dataclass(frozen=True, slots=True)
class AppListing:
    """An app as listed to operators."""

    id: int
    name: str
    contact: str | None
    channel: str
    created_at: datetime
    active_keys: int


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
    channel: str  # the key's own, else its app's
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyRights:
    """What a stored key is and may do (its app, scopes and restrictions)."""

    name: str
    app_id: int | None
    scopes: str  # space-separated, canonical order
    jurisdiction_id: int | None
    sandbox: bool
    rate_limit_per_minute: int | None
    channel: str | None = None  # the key's own channel (None: its app's)


@dataclass(frozen=True, slots=True)
class KeyCandidate:
    """An active key whose prefix matches the one presented (its hash still to compare)."""

    id: int
    key_hash: str
    app_id: int | None
    app_name: str | None
    scopes: str
    jurisdiction_id: int | None
    sandbox: bool
    rate_limit_per_minute: int | None
    channel: str  # the key's own, else its app's


def _channel() -> Any:
    """A key's channel: its own, else its app's, else api."""
    return func.coalesce(API_KEY.c.channel, APP.c.channel, "api")


async def find_app(conn: AsyncConnection, name: str) -> int | None:
    """The id of the app with this name, or None."""
    found = (await conn.execute(select(APP.c.id).where(APP.c.name == name))).scalar()
    return None if found is None else int(found)


async def set_app_contact(conn: AsyncConnection, app_id: int, contact: str) -> None:
    """Change an app's contact."""
    await conn.execute(update(APP).where(APP.c.id == app_id).values(contact=contact))


async def app_channel(conn: AsyncConnection, app_id: int) -> str:
    """An app's intake channel."""
    found = (await conn.execute(select(APP.c.channel).where(APP.c.id == app_id))).scalar()
    return str(found or "api")


async def set_app_channel(conn: AsyncConnection, app_id: int, channel: str) -> None:
    """Change an app's intake channel."""
    await conn.execute(update(APP).where(APP.c.id == app_id).values(channel=channel))


async def insert_app(
    conn: AsyncConnection, name: str, contact: str | None, channel: str = "api"
) -> int:
    """Store a new app; its id."""
    return int(
        (
            await conn.execute(
                insert(APP)
                .values(name=name, contact=contact, channel=channel, created_at=utcnow())
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


async def app_has_keys_outside(conn: AsyncConnection, name: str, jurisdiction: int) -> bool:
    """True when the app ``name`` exists and has a key not restricted to ``jurisdiction``."""
    row = (
        await conn.execute(select(APP.c.id, _outside(jurisdiction)).where(APP.c.name == name))
    ).first()
    return row is not None and bool(row[1])


async def list_apps(conn: AsyncConnection, within: int | None = None) -> list[AppListing]:
    """Every app with its number of active keys, by id (``within``: only apps with a key
    restricted to that jurisdiction and none outside it)."""
    active = (
        select(func.count(API_KEY.c.id))
        .where(API_KEY.c.app_id == APP.c.id, API_KEY.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    query = select(APP.c.id, APP.c.name, APP.c.contact, APP.c.created_at, active, APP.c.channel)
    if within is not None:
        has_key = (
            select(API_KEY.c.id)
            .where(API_KEY.c.app_id == APP.c.id, API_KEY.c.jurisdiction_id == within)
            .exists()
        )
        query = query.where(has_key, ~_outside(within))
    rows = await conn.execute(query.order_by(APP.c.id))
    return [
        AppListing(
            id=r[0], name=r[1], contact=r[2], channel=r[5], created_at=r[3], active_keys=r[4]
        )
        for r in rows
    ]


async def insert_key(
    conn: AsyncConnection, *, prefix: str, key_hash: str, rights: KeyRights
) -> int:
    """Store a new key (its prefix and hash, never the key); its id."""
    key_id = (
        await conn.execute(
            insert(API_KEY)
            .values(
                name=rights.name,
                prefix=prefix,
                key_hash=key_hash,
                app_id=rights.app_id,
                scopes=rights.scopes,
                jurisdiction_id=rights.jurisdiction_id,
                sandbox=rights.sandbox,
                rate_limit_per_minute=rights.rate_limit_per_minute,
                channel=rights.channel,
                created_at=utcnow(),
            )
            .returning(API_KEY.c.id)
        )
    ).scalar_one()
    return int(key_id)


async def key_hash_exists(conn: AsyncConnection, key_hash: str) -> bool:
    """True when a key (active or revoked) with this hash is stored."""
    found = (await conn.execute(select(API_KEY.c.id).where(API_KEY.c.key_hash == key_hash))).first()
    return found is not None


def _active(key_id: int, within: int | None) -> Any:
    condition = (API_KEY.c.id == key_id) & API_KEY.c.revoked_at.is_(None)
    if within is not None:
        condition = condition & (API_KEY.c.jurisdiction_id == within)
    return condition


async def active_key_rights(
    conn: AsyncConnection, key_id: int, within: int | None = None
) -> KeyRights | None:
    """The rights of an active key (``within``: restricted to that jurisdiction), or None."""
    row = (await conn.execute(select(API_KEY).where(_active(key_id, within)))).mappings().first()
    if row is None:
        return None
    return KeyRights(
        name=row["name"],
        app_id=row["app_id"],
        scopes=row["scopes"],
        jurisdiction_id=row["jurisdiction_id"],
        sandbox=row["sandbox"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
        channel=row["channel"],
    )


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
            _channel(),
        )
        .outerjoin(APP, APP.c.id == API_KEY.c.app_id)
        .outerjoin(JURISDICTION, JURISDICTION.c.id == API_KEY.c.jurisdiction_id)
        .order_by(API_KEY.c.id)
    )
    if within is not None:
        query = query.where(API_KEY.c.jurisdiction_id == within)
    return [
        ApiKeyListing(
            id=r[0],
            name=r[1],
            prefix=r[2],
            app=r[3],
            scopes=r[4],
            jurisdiction=r[5],
            sandbox=r[6],
            rate_limit_per_minute=r[7],
            channel=r[10],
            created_at=r[8],
            revoked_at=r[9],
        )
        for r in await conn.execute(query)
    ]


async def revoke_key(conn: AsyncConnection, key_id: int, within: int | None = None) -> bool:
    """Mark an active key revoked now; False when there is no such active key (``within``:
    restricted to that jurisdiction)."""
    result = await conn.execute(
        update(API_KEY).where(_active(key_id, within)).values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


# Every active key with a given prefix (the ``prefix`` parameter): a long-lived statement, so
# the stores can keep its compiled form.
CANDIDATES = (
    select(
        API_KEY.c.id,
        API_KEY.c.key_hash,
        API_KEY.c.app_id,
        APP.c.name,
        API_KEY.c.scopes,
        API_KEY.c.jurisdiction_id,
        API_KEY.c.sandbox,
        API_KEY.c.rate_limit_per_minute,
        _channel(),
    )
    .outerjoin(APP, APP.c.id == API_KEY.c.app_id)
    .where(API_KEY.c.prefix == bindparam("prefix"), API_KEY.c.revoked_at.is_(None))
)


# One row when the key (the ``key_id`` parameter) is active: what a write that relies on a
# cached verification checks inside its own transaction (the embedded store's realtime POST).
ACTIVE = select(API_KEY.c.id).where(
    API_KEY.c.id == bindparam("key_id"), API_KEY.c.revoked_at.is_(None)
)


def candidates(rows: Iterable[Sequence[Any]]) -> list[KeyCandidate]:
    """Rows of ``CANDIDATES`` as typed values."""
    return [
        KeyCandidate(
            id=int(r[0]),
            key_hash=r[1],
            app_id=r[2],
            app_name=r[3],
            scopes=r[4],
            jurisdiction_id=r[5],
            sandbox=bool(r[6]),
            rate_limit_per_minute=r[7],
            channel=r[8],
        )
        for r in rows
    ]


async def key_candidates(conn: AsyncConnection, prefix: str) -> list[KeyCandidate]:
    """Every active key with this prefix."""
    return candidates(await conn.execute(CANDIDATES, {"prefix": prefix}))


async def delete_sandbox_requests(
    conn: AsyncConnection, *, app_id: int | None = None, within: int | None = None
) -> int:
    """Delete sandbox requests (of one app, or all; ``within``: of that jurisdiction only);
    how many."""
    condition: ColumnElement[bool] = REQUEST.c.sandbox.is_(True)
    if within is not None:
        condition = condition & (REQUEST.c.jurisdiction_id == within)
    if app_id is not None:
        condition = condition & (REQUEST.c.app_id == app_id)
    result = await conn.execute(delete(REQUEST).where(condition))
    return int(result.rowcount or 0)


async def sandbox_owners(
    conn: AsyncConnection, *, app_id: int | None = None, within: int | None = None
) -> list[tuple[int, int]]:
    """Every (jurisdiction, app) pair a sandbox reset of one app and/or one jurisdiction
    reaches: the owners of the sandbox photos it removes (a row per pair, however few
    requests they filed)."""
    query = select(JURISDICTION.c.id, APP.c.id).select_from(JURISDICTION.join(APP, true()))
    if within is not None:
        query = query.where(JURISDICTION.c.id == within)
    if app_id is not None:
        query = query.where(APP.c.id == app_id)
    return [
        (row[0], row[1]) for row in await conn.execute(query.order_by(JURISDICTION.c.id, APP.c.id))
    ]
