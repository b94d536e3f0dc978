"""Idempotency records (table ``idempotency_record``): the statements behind
``app.domain.idempotency``.

A record's outcome is stored as an ordered list of fields (``{"fields": [[name, value], ..]}``):
JSONB does not keep object key order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import IdempotencyRecord

RECORD = IdempotencyRecord.__table__


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A claimed key: the request it was claimed for and, once stored, its outcome."""

    request_hash: str
    status_code: int | None
    item: dict[str, Any] | None


async def insert_claim(
    conn: AsyncConnection, api_key_id: int, key: str, request_hash: str, created_at: datetime
) -> bool:
    """Claim ``key`` (INSERT .. ON CONFLICT DO NOTHING); False when it is claimed already
    (a concurrent claim waits for the other transaction to end)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    claimed = (
        await conn.execute(
            insert(RECORD)
            .values(
                api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=created_at
            )
            .on_conflict_do_nothing()
            .returning(RECORD.c.key)
        )
    ).scalar()
    return claimed is not None


async def delete_claim_before(
    conn: AsyncConnection, api_key_id: int, key: str, before: datetime
) -> bool:
    """Delete the record of ``key`` if it was claimed before ``before``; True when deleted."""
    stale = (
        await conn.execute(
            delete(RECORD)
            .where(
                RECORD.c.api_key_id == api_key_id,
                RECORD.c.key == key,
                RECORD.c.created_at < before,
            )
            .returning(RECORD.c.key)
        )
    ).scalar()
    return stale is not None


async def get_record(conn: AsyncConnection, api_key_id: int, key: str) -> StoredRecord:
    """The record of a claimed key (it must exist)."""
    row = (
        await conn.execute(
            select(RECORD.c.request_hash, RECORD.c.status_code, RECORD.c.response).where(
                RECORD.c.api_key_id == api_key_id, RECORD.c.key == key
            )
        )
    ).one()
    return StoredRecord(
        request_hash=row[0],
        status_code=None if row[1] is None else int(row[1]),
        item=None if row[2] is None else dict(row[2]["fields"]),
    )


async def set_outcome(
    conn: AsyncConnection, api_key_id: int, key: str, status_code: int, item: dict[str, Any]
) -> None:
    """Store the outcome of a claimed key."""
    await conn.execute(
        update(RECORD)
        .where(RECORD.c.api_key_id == api_key_id, RECORD.c.key == key)
        .values(status_code=status_code, response={"fields": [[k, v] for k, v in item.items()]})
    )


async def delete_before(conn: AsyncConnection, before: datetime) -> int:
    """Delete every record claimed before ``before``; how many."""
    result = await conn.execute(delete(RECORD).where(RECORD.c.created_at < before))
    return int(result.rowcount or 0)
