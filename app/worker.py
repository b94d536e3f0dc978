"""The background worker: queued batch submissions, feed subscriptions' events, webhook
deliveries, federation, the reports' rollups (every ``REPORTS_REFRESH_S``, for jurisdictions
reported on, a bounded number of pieces each; rebuilds after an invalidation too) and the daily
dump files of the exports (``exports.dumps_enabled``,
``app.domain.exports``).

Federation (``app.federation``): forwarding queued POSTs to partners and refreshing partner
mirrors every ``federation.refresh_interval_s``.

Every server process runs the same loop in process by default (``worker.in_process``), on both
backends; ``open311 worker`` runs it as a process of its own (docker compose does, with the
in-process loop turned off). Several loops may run against PostgreSQL: claims use SKIP LOCKED,
and a partner refresh is claimed by a conditional UPDATE of its ``last_refresh_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import httpx

from app.domain import idempotency, reports, webhooks
from app.domain.catalog import CatalogCache
from app.domain.exports import DailyDumps
from app.domain.jurisdictions import JurisdictionRegistry
from app.domain.queue import QueueProcessor
from app.domain.subscriptions import Feeder
from app.federation.service import Federation
from app.media.runtime import object_store
from app.settings import Settings
from app.store import open_store
from app.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.store.base import Store

log = logging.getLogger("open311.worker")
# While every pass fails, the failure is logged again this often (the first one in full).
REPEAT_REPORT_S = 60.0

# The reports' rollups are brought up to date this often (app.domain.reports), at most
# REPORTS_PIECES pieces (short write transactions of a bounded number of requests) per
# jurisdiction each time; a pass with work left goes on REPORTS_AGAIN_S later.
REPORTS_REFRESH_S = 300.0
REPORTS_PIECES = 8
REPORTS_AGAIN_S = 1.0

# On stop, deliveries in flight get this long to finish; the rest are sent again later.
SHUTDOWN_GRACE_S = 5.0


class Worker:
    """One worker loop over a shared engine."""

    def __init__(self, engine: AsyncEngine, settings: Settings, store: Store | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.queue = QueueProcessor(engine, settings)
        self.federation = Federation(engine, settings)
        # Feed subscriptions: their events queued as deliveries (app.domain.subscriptions).
        self.feeder = Feeder(engine, JurisdictionRegistry(engine, settings))
        # The daily dumps (exports.dumps_enabled) read through a store: the server's own
        # (``store``), else one of the worker's, closed when it stops.
        self.dumps: DailyDumps | None = None
        self._own_store: Store | None = None
        if settings.exports.dumps_enabled:
            if store is None:
                store = self._own_store = open_store(settings)
            self.dumps = DailyDumps(
                store,
                settings,
                JurisdictionRegistry(engine, settings),
                CatalogCache(engine),
                object_store(settings.media),
            )
        self._purged_at = -1e9
        self._reports_at = time.monotonic()  # the first report builds; the worker follows
        self._failing_since: float | None = None
        self._reported_at = 0.0

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One pass that waits for its webhook deliveries; how much was done.

        ``client`` should be a ``webhooks.delivery_client`` (it enforces the address policy).
        """
        deliverer = webhooks.Deliverer.for_settings(self.engine, client, self.settings)
        try:
            done = await self._pass(deliverer)
            await deliverer.wait()
            if self.dumps is not None:
                await self.dumps.wait()
        finally:
            await deliverer.aclose()
        return done

    async def aclose(self) -> None:
        """Stop a running dump and close the worker's own store (if it made one)."""
        if self.dumps is not None:
            await self.dumps.aclose()
        if self._own_store is not None:
            await self._own_store.close()

    async def _pass(self, deliverer: webhooks.Deliverer) -> int:
        """Queued submissions, due webhook deliveries (started, not awaited), federation."""
        done = await self.queue.run_once()
        done += await self.feeder.run_once()
        done += await deliverer.start_due()
        done += await self.federation.run_once()
        if self.dumps is not None:
            done += self.dumps.start_due()  # runs in a task of its own
        now = time.monotonic()
        if now - self._purged_at > 3600:
            self._purged_at = now
            async with write_transaction(self.engine) as conn:
                await idempotency.purge_expired(conn)
        if now - self._reports_at > REPORTS_REFRESH_S:
            self._reports_at = now
            refreshed = await reports.refresh_reported(self.engine, budget=REPORTS_PIECES)
            if refreshed.pending:  # the next piece soon, not in five minutes
                self._reports_at = now - REPORTS_REFRESH_S + REPORTS_AGAIN_S
        return done

    def _failed(self, exc: Exception) -> None:
        """Log a failed pass: the first with its traceback; while passes keep failing (say,
        the database is down) one line a minute, not a traceback every poll."""
        now = time.monotonic()
        if self._failing_since is None:
            log.exception("worker pass failed")
            self._failing_since = self._reported_at = now
        elif now - self._reported_at >= REPEAT_REPORT_S:
            self._reported_at = now
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warning(
                "worker passes failing for %.0f s: %s: %s",
                now - self._failing_since,
                type(exc).__name__,
                first_line,
            )

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.info("worker passes succeed again")
            self._failing_since = None

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set; sleeps ``worker.poll_seconds`` when idle."""
        async with webhooks.delivery_client(self.settings) as client, self.federation:
            # Deliveries run in the background across passes, within their per-app limits,
            # so a slow receiver never holds this loop.
            deliverer = webhooks.Deliverer.for_settings(self.engine, client, self.settings)
            try:
                while not stop.is_set():
                    try:
                        done = await self._pass(deliverer)
                    except Exception as exc:  # keep the loop alive; the failure is logged
                        self._failed(exc)
                        done = 0
                    else:
                        self._succeeded()
                    if not done:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self.settings.worker.poll_seconds)
            finally:
                await deliverer.aclose(grace=SHUTDOWN_GRACE_S)
                await self.aclose()
