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
from typing import TYPE_CHECKING, Any

from app.errors import BadRequest, Open311Error
from app.store import idempotency as store

# The records' table (app.domain.one_trip claims keys in its one statement).
from app.store.idempotency import RECORD as RECORD
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

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
    if await store.insert_claim(conn, api_key_id, key, request_hash, now):
        return None
    if await store.delete_claim_before(conn, api_key_id, key, now - RETENTION):
        # The key's earlier use has expired: this is a new request.
        return await claim(conn, api_key_id, key, request_hash)
    stored = await store.get_record(conn, api_key_id, key)
    if stored.request_hash != request_hash:
        raise IdempotencyMismatch()
    # A committed claim has an outcome (the claim and its outcome share one transaction).
    if stored.status_code is None or stored.item is None:  # pragma: no cover
        raise IdempotencyMismatch("The request with this Idempotency-Key did not complete.")
    return Replay(stored.status_code, stored.item)


async def record(
    conn: AsyncConnection, api_key_id: int, key: str, status_code: int, item: dict[str, Any]
) -> None:
    """Store the outcome of a claimed key (same transaction as the request)."""
    await store.set_outcome(conn, api_key_id, key, status_code, item)


async def purge_expired(conn: AsyncConnection) -> int:
    """Delete records past the retention period (run by the worker); how many."""
    return await store.delete_before(conn, utcnow() - RETENTION)
