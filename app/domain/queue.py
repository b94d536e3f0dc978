"""Queued batch submissions: POST answers a token at once, a worker creates the request.

Claiming uses ``SELECT .. FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never
process the same submission; creating the request, pointing the token at it and marking the
submission done happen in the claim's transaction, so a worker that dies between claim and
commit loses nothing (the lock goes with the connection and the row is claimed again).

Partner-targeted submissions (POSTs to a remote or region jurisdiction, see ``app.federation``)
are queued here too, in state ``forward`` with a ``federation_forward`` row naming the partner;
this processor leaves them alone and ``app.federation.service.Federation.forward_due`` sends
them.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.api_keys import KeyInfo
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache
from app.domain.jurisdictions import JurisdictionRegistry
from app.domain.requests import Submission as Answers
from app.domain.requests import create_request
from app.errors import Open311Error
from app.observability import record_created
from app.settings import Settings
from app.store.engine import write_transaction
from app.store.tables import FederationForward, RequestToken, Submission
from app.store.tables.base import utcnow

QUEUE = Submission.__table__
TOKEN = RequestToken.__table__
FORWARD = FederationForward.__table__
# State of a queued submission that goes to a partner instead of becoming a local request.
FORWARD_STATE = "forward"
log = logging.getLogger("open311.worker")


async def enqueue(
    conn: AsyncConnection,
    jurisdiction: Any,
    service_type_pk: int,
    answers: Answers,
    key: KeyInfo,
    forward_to: int | None = None,
) -> str:
    """Queue a validated batch submission; its token (pending until the worker runs).

    ``forward_to``: the remote jurisdiction (pk) the submission is forwarded to. A sandbox
    key's submission is never forwarded: the worker stores it as a sandbox request of that
    jurisdiction instead (only the app's sandbox sees it; the partner never hears of it).
    """
    stored_in = jurisdiction.pk
    if forward_to is not None and key.sandbox:
        stored_in, forward_to = forward_to, None
    token = secrets.token_urlsafe(18)
    now = utcnow()
    await conn.execute(
        insert(TOKEN).values(
            token=token, jurisdiction_id=jurisdiction.pk, service_request_id=None, created_at=now
        )
    )
    payload = {
        "answers": dataclasses.asdict(answers),
        "key": {"id": key.id, "app_id": key.app_id, "sandbox": key.sandbox},
    }
    submission_pk = (
        await conn.execute(
            insert(QUEUE)
            .values(
                token=token,
                jurisdiction_id=stored_in,
                service_type_id=service_type_pk,
                api_key_id=key.id,
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
    return token


class QueueProcessor:
    """Turns queued submissions into requests (used by ``open311 worker`` and in process)."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.postgis = engine.dialect.name == "postgresql"
        self.jurisdictions = JurisdictionRegistry(engine, settings, ttl=5.0)
        self.catalogs = CatalogCache(engine, ttl=5.0)
        self.wards = WardIndexCache(engine)

    async def run_once(self, limit: int = 50) -> int:
        """Process up to ``limit`` queued submissions in one transaction; how many."""
        by_pk = {j.pk: j for j in await self.jurisdictions.all()}
        async with write_transaction(self.engine) as conn:
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
            if self.postgis:
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            for row in rows:
                await self._process(conn, row, by_pk)
        return len(rows)

    async def _process(self, conn: AsyncConnection, row: Any, by_pk: dict[int, Any]) -> None:
        submission_pk, token, jurisdiction_pk, service_pk, payload = row
        try:
            async with conn.begin_nested():
                jurisdiction = by_pk.get(jurisdiction_pk)
                if jurisdiction is None:
                    self.jurisdictions.invalidate()
                    raise Open311Error("The jurisdiction no longer exists.")
                catalog = await self.catalogs.get(jurisdiction_pk)
                service = next((s for s in catalog.services if s.pk == service_pk), None)
                if service is None:
                    raise Open311Error("The service no longer exists.")
                key_data = payload["key"]
                key = KeyInfo(
                    id=key_data["id"],
                    app_id=key_data["app_id"],
                    app_name=None,
                    scopes=frozenset(),
                    jurisdiction_pk=None,
                    sandbox=key_data["sandbox"],
                    rate_limit_per_minute=None,
                )
                ward_index = None
                if not self.postgis and jurisdiction.ward_set_id is not None:
                    ward_index = await self.wards.get(jurisdiction.ward_set_id)
                await create_request(
                    conn,
                    jurisdiction=jurisdiction,
                    service=service,
                    sub=Answers(**payload["answers"]),
                    key=key,
                    postgis=self.postgis,
                    ward_index=ward_index,
                    tolerance_m=self.settings.wards.tolerance_m,
                    token=token,
                )
                record_created(jurisdiction.code, service.code)
                await conn.execute(
                    update(QUEUE)
                    .where(QUEUE.c.id == submission_pk)
                    .values(state="done", done_at=utcnow(), attempts=QUEUE.c.attempts + 1)
                )
        except Open311Error as exc:
            log.warning("submission %s failed: %s", submission_pk, exc)
            await conn.execute(
                update(QUEUE)
                .where(QUEUE.c.id == submission_pk)
                .values(state="failed", error=str(exc)[:2000], attempts=QUEUE.c.attempts + 1)
            )
