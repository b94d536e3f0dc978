"""Idempotency-Key support for POST requests (per API key, kept >= 24 hours).

The first POST with a key claims a record (INSERT .. ON CONFLICT DO NOTHING) in the same
transaction that stores the request, so concurrent duplicates wait on the record's primary key
and then replay the stored outcome: exactly one request is created. A failed POST rolls back
its claim, so a retry runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import BadRequest, Open311Error
from app.store.tables import IdempotencyRecord
from app.store.tables.base import utcnow

RECORD = IdempotencyRecord.__table__
RETENTION = timedelta(hours=48)
MAX_KEY_LENGTH = 255


class IdempotencyMismatch(Open311Error):
    """422: the Idempotency-Key was used before with a different request."""

    status_code = 422
    title = (
        "This Idempotency-Key was already used with a different request; use a new key for a "
        "new request."
    )


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored outcome of an earlier POST with the same key."""

    status_code: int
    item: dict[str, Any]


def fingerprint(path: str, params: Sequence[tuple[str, str]]) -> str:
    """A hash of what a POST asks for (the format suffix and the api_key left out)."""
    resource = path.rsplit(".", 1)[0]
    items = sorted((k, v) for k, v in params if k != "api_key")
    digest = hashlib.sha256(resource.encode("utf-8"))
    for key, value in items:
        digest.update(b"\x00" + key.encode("utf-8") + b"\x01" + value.encode("utf-8"))
    return digest.hexdigest()


def check_key(key: str) -> str:
    """A usable Idempotency-Key header value, or 400."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.")
    return key


async def claim(
    conn: AsyncConnection, api_key_id: int, key: str, request_hash: str
) -> Replay | None:
    """Claim ``key`` for this request, or the earlier outcome to replay (422 on mismatch)."""
    now = utcnow()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    claimed = (
        await conn.execute(
            insert(RECORD)
            .values(api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=now)
            .on_conflict_do_nothing()
            .returning(RECORD.c.key)
        )
    ).scalar()
    if claimed is not None:
        return None
    stale = (
        await conn.execute(
            delete(RECORD)
            .where(
                RECORD.c.api_key_id == api_key_id,
                RECORD.c.key == key,
                RECORD.c.created_at < now - RETENTION,
            )
            .returning(RECORD.c.key)
        )
    ).scalar()
    if stale is not None:
        # The key's earlier use has expired: this is a new request.
        return await claim(conn, api_key_id, key, request_hash)
    row = (
        await conn.execute(
            select(RECORD.c.request_hash, RECORD.c.status_code, RECORD.c.response).where(
                RECORD.c.api_key_id == api_key_id, RECORD.c.key == key
            )
        )
    ).one()
    if row[0] != request_hash:
        raise IdempotencyMismatch()
    if row[1] is None or row[2] is None:  # pragma: no cover - a committed claim has an outcome
        raise IdempotencyMismatch("The request with this Idempotency-Key did not complete.")
    # Stored as an ordered list of fields: JSONB does not keep object key order.
    return Replay(int(row[1]), dict(row[2]["fields"]))


async def record(
    conn: AsyncConnection, api_key_id: int, key: str, status_code: int, item: dict[str, Any]
) -> None:
    """Store the outcome of a claimed key (same transaction as the request)."""
    await conn.execute(
        update(RECORD)
        .where(RECORD.c.api_key_id == api_key_id, RECORD.c.key == key)
        .values(status_code=status_code, response={"fields": [[k, v] for k, v in item.items()]})
    )


async def purge_expired(conn: AsyncConnection) -> int:
    """Delete records past the retention period (run by the worker); how many."""
    result = await conn.execute(delete(RECORD).where(RECORD.c.created_at < utcnow() - RETENTION))
    return int(result.rowcount or 0)
