"""Queued batch submissions: the statements behind ``app.domain.queue``.

Claiming uses ``SELECT .. FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never
process the same submission; on SQLite the claiming write transaction (``BEGIN IMMEDIATE``)
already serialises workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import FederationForward, RequestToken, Submission

QUEUE = Submission.__table__
TOKEN = RequestToken.__table__
FORWARD = FederationForward.__table__
# State of a queued submission that goes to a partner instead of becoming a local request.
FORWARD_STATE = "forward"
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class QueuedSubmission:
    """A claimed submission waiting to become a request."""

    id: int
    token: str
    jurisdiction_pk: int
    service_type_pk: int
    payload: dict[str, Any]


async def enqueue(
    conn: AsyncConnection,
    *,
    token: str,
    token_jurisdiction_pk: int,
    jurisdiction_pk: int,
    service_type_pk: int,
    api_key_pk: int | None,
    payload: dict[str, Any],
    forward_to: int | None,
    now: datetime,
) -> int:
    """Store a pending token (of ``token_jurisdiction_pk``) and its queued submission (stored
    in ``jurisdiction_pk``); with ``forward_to``, the submission waits in ``FORWARD_STATE``
    for the worker to forward it to that remote jurisdiction. The submission's id."""
    await conn.execute(
        insert(TOKEN).values(
            token=token,
            jurisdiction_id=token_jurisdiction_pk,
            service_request_id=None,
            created_at=now,
        )
    )
    submission_pk = (
        await conn.execute(
            insert(QUEUE)
            .values(
                token=token,
                jurisdiction_id=jurisdiction_pk,
                service_type_id=service_type_pk,
                api_key_id=api_key_pk,
                payload=payload,
                state="queued" if forward_to is None else FORWARD_STATE,
                attempts=0,
                created_at=now,
            )
            .returning(QUEUE.c.id)
        )
    ).scalar_one()
    if forward_to is not None:
        await conn.execute(
            insert(FORWARD).values(
                submission_id=submission_pk, target_jurisdiction_id=forward_to, next_attempt_at=now
            )
        )
    return int(submission_pk)


async def claim_queued(conn: AsyncConnection, limit: int) -> list[QueuedSubmission]:
    """Up to ``limit`` queued submissions, oldest first, locked for this transaction (rows
    other workers hold are skipped on PostgreSQL)."""
    query = (
        select(
            QUEUE.c.id,
            QUEUE.c.token,
            QUEUE.c.jurisdiction_id,
            QUEUE.c.service_type_id,
            QUEUE.c.payload,
        )
        .where(QUEUE.c.state == "queued")
        .order_by(QUEUE.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).all()
    return [
        QueuedSubmission(
            id=int(row.id),
            token=row.token,
            jurisdiction_pk=int(row.jurisdiction_id),
            service_type_pk=int(row.service_type_id),
            payload=row.payload,
        )
        for row in rows
    ]


@asynccontextmanager
async def savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """A savepoint: what runs inside is rolled back alone when it raises."""
    async with conn.begin_nested():
        yield


async def mark_done(conn: AsyncConnection, submission_pk: int, at: datetime) -> None:
    """The submission became a request: ``done`` at ``at``, one more attempt counted."""
    await conn.execute(
        update(QUEUE)
        .where(QUEUE.c.id == submission_pk)
        .values(state="done", done_at=at, attempts=QUEUE.c.attempts + 1)
    )


async def mark_failed(conn: AsyncConnection, submission_pk: int, error: str) -> None:
    """The submission cannot become a request: ``failed`` with ``error`` (cut to 2000
    characters), one more attempt counted."""
    await conn.execute(
        update(QUEUE)
        .where(QUEUE.c.id == submission_pk)
        .values(state="failed", error=error[:MAX_ERROR_LENGTH], attempts=QUEUE.c.attempts + 1)
    )
