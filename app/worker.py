"""The background worker: queued batch submissions, webhook deliveries and federation.

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

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import write_transaction
from app.domain import idempotency, webhooks
from app.domain.queue import QueueProcessor
from app.federation.service import Federation
from app.settings import Settings

log = logging.getLogger("open311.worker")
# While every pass fails, the failure is logged again this often (the first one in full).
REPEAT_REPORT_S = 60.0


class Worker:
    """One worker loop over a shared engine."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.queue = QueueProcessor(engine, settings)
        self.federation = Federation(engine, settings)
        self._purged_at = -1e9

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One pass: queued submissions, then due webhook deliveries; how much was done."""
        done = await self.queue.run_once()
        done += await webhooks.deliver_due(self.engine, client)
        done += await self.federation.run_once()
        now = time.monotonic()
        if now - self._purged_at > 3600:
            self._purged_at = now
            async with write_transaction(self.engine) as conn:
                await idempotency.purge_expired(conn)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set; sleeps ``worker.poll_seconds`` when idle."""
        async with (
            httpx.AsyncClient(
                timeout=self.settings.worker.webhook_timeout_s, trust_env=False
            ) as client,
            self.federation,
        ):
            failing_since: float | None = None
            reported_at = 0.0
            while not stop.is_set():
                try:
                    done = await self.run_once(client)
                except Exception as exc:  # keep the loop alive; the failure is logged
                    # The first failure with its traceback; while passes keep failing (say,
                    # the database is down) one line a minute, not a traceback every poll.
                    now = time.monotonic()
                    if failing_since is None:
                        log.exception("worker pass failed")
                        failing_since = reported_at = now
                    elif now - reported_at >= REPEAT_REPORT_S:
                        reported_at = now
                        log.warning(
                            "worker passes failing for %.0f s: %s: %s",
                            now - failing_since,
                            type(exc).__name__,
                            str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
                        )
                    done = 0
                else:
                    if failing_since is not None:
                        log.info("worker passes succeed again")
                        failing_since = None
                if not done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.worker.poll_seconds)
