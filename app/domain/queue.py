"""Queued batch submissions: POST answers a token at once, a worker creates the request.

Claiming locks the rows (``app.store.queue``), so several workers never process the same
submission; creating the request, pointing the token at it and marking the submission done
happen in the claim's transaction, so a worker that dies between claim and commit loses
nothing (the lock goes with the connection and the row is claimed again).

Partner-targeted submissions (POSTs to a remote or region jurisdiction, see ``app.federation``)
are queued here too, in state ``forward`` with a ``federation_forward`` row naming the partner;
this processor leaves them alone and ``app.federation.service.Federation.forward_due`` sends
them.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import TYPE_CHECKING, Any

from app.domain.api_keys import KeyInfo
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache
from app.domain.jurisdictions import JurisdictionInfo, JurisdictionRegistry
from app.domain.requests import Submission as Answers
from app.domain.requests import create_request
from app.errors import Open311Error
from app.observability import record_created
from app.settings import Settings
from app.store import queue as store
from app.store.engine import write_transaction
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# State of a queued submission that goes to a partner instead of becoming a local request.
FORWARD_STATE = store.FORWARD_STATE
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
    payload = {
        "answers": dataclasses.asdict(answers),
        "key": {"id": key.id, "app_id": key.app_id, "sandbox": key.sandbox},
    }
    await store.enqueue(
        conn,
        token=token,
        token_jurisdiction_pk=jurisdiction.pk,
        jurisdiction_pk=stored_in,
        service_type_pk=service_type_pk,
        api_key_pk=key.id,
        payload=payload,
        forward_to=forward_to,
        now=utcnow(),
    )
    return token


class QueueProcessor:
    """Turns queued submissions into requests (used by ``open311 worker`` and in process)."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.jurisdictions = JurisdictionRegistry(engine, settings, ttl=5.0)
        self.catalogs = CatalogCache(engine, ttl=5.0)
        self.wards = WardIndexCache(engine)

    async def run_once(self, limit: int = 50) -> int:
        """Process up to ``limit`` queued submissions in one transaction; how many."""
        by_pk = {j.pk: j for j in await self.jurisdictions.all()}
        async with write_transaction(self.engine) as conn:
            rows = await store.claim_queued(conn, limit)
            for row in rows:
                await self._process(conn, row, by_pk)
        return len(rows)

    async def _process(
        self,
        conn: AsyncConnection,
        row: store.QueuedSubmission,
        by_pk: dict[int, JurisdictionInfo],
    ) -> None:
        submission_pk, token, payload = row.id, row.token, row.payload
        jurisdiction_pk, service_pk = row.jurisdiction_pk, row.service_type_pk
        try:
            async with store.savepoint(conn):
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
                    channel=key_data.get("channel", "api"),
                )
                await create_request(
                    conn,
                    jurisdiction=jurisdiction,
                    service=service,
                    sub=Answers(**payload["answers"]),
                    key=key,
                    wards=self.wards,
                    tolerance_m=self.settings.wards.tolerance_m,
                    token=token,
                )
                record_created(jurisdiction.code, service.code)
                await store.mark_done(conn, submission_pk, utcnow())
        except Open311Error as exc:
            log.warning("submission %s failed: %s", submission_pk, exc)
            await store.mark_failed(conn, submission_pk, str(exc))
