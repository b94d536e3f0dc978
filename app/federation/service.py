"""``Federation``: mirror and sync partners, forward queued POSTs, guard every call.

Refresh (``open311 federation refresh`` and the worker every ``refresh_interval_s``):
GET services, then each definition (``metadata`` true), mirrored into our service rows; then
GET requests over the last ``sync_days`` in ``sync_slice_days`` windows of start_date/end_date
(partners may not support ``updated_after``), stored as synced copies. A window that comes back
with ``SPLIT_AT`` or more requests is halved (partners cap their results) unless the partner
evidently ignores dates. A definition the partner refuses or garbles keeps its previous mirror
(status ``degraded``); a timeout or outage fails the refresh (nothing half-written).

Forwarding (worker): submissions in state ``forward`` whose ``next_attempt_at`` is due are
claimed in a short transaction that pushes ``next_attempt_at`` out by a lease (so no database
lock or SQLite write lock is held while a partner is called; PostgreSQL claims use SKIP LOCKED
so several workers never take the same one). Each is POSTed form-encoded with the partner's
key and ``Idempotency-Key: <our token>`` (a partner that honours it never stores a retry
twice; delivery is at least once otherwise). A 2xx with an id is stored as a synced copy (the
partner's own GET requests/{id} when it answers, else our validated answers) and our token
then resolves to our id; a 2xx with a token is polled on later passes until it yields an id; a
4xx with an errors document fails the submission with the partner's description; anything else
is retried with exponential backoff, forever (nothing acknowledged is lost). A crash at any
point leaves the submission queued: the lease expires and it is tried again.

Isolation: partners are processed concurrently, one call at a time each; a partner's first
transient failure in a pass reschedules the rest of its batch, so a slow partner costs a pass
at most ``timeout_s`` and never delays the others. After ``breaker_failures`` consecutive
failures its circuit opens (calls fail at once with 503 + Retry-After) for ``breaker_reset_s``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from app.domain.catalog import read_services
from app.federation import partners
from app.federation.client import RemoteBackend, submission_fields
from app.federation.errors import (
    PartnerRejected,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnavailable,
)
from app.settings import Settings
from app.store import federation as sql
from app.store.engine import write_transaction
from app.store.federation import ClaimedForward
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("open311.federation")
T = TypeVar("T")

SPLIT_AT = 500
MIN_SLICE = timedelta(hours=1)

PRIVATE = ("email", "device_id", "account_id", "first_name", "last_name", "phone")


@dataclass(slots=True)
class RefreshReport:
    """What one refresh of one jurisdiction did."""

    code: str
    services: int = 0
    added: int = 0
    updated: int = 0
    warnings: list[str] = field(default_factory=list)
    error: UpstreamError | None = None


class Federation:
    """Federation operations over one engine and one shared HTTP client."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.cfg = settings.federation
        self._mounts = dict(mounts or {})
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared client (created on first use; ``mounts`` route partner URLs)."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                mounts=self._mounts or None,
                timeout=self.cfg.timeout_s,
                trust_env=False,
                follow_redirects=False,
                headers={"User-Agent": "open311-server federation"},
            )
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Federation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def backend(self, state: partners.PartnerState) -> RemoteBackend:
        """The ``RemoteBackend`` of a partner."""
        return RemoteBackend(
            self.http, state.config, self.cfg.timeout_s, self.cfg.max_response_bytes
        )

    async def guarded(
        self,
        state: partners.PartnerState,
        call: Callable[[RemoteBackend], Awaitable[T]],
        *,
        refreshed: bool = False,
    ) -> T:
        """One partner call through its circuit breaker; transient failures are recorded."""
        wait = partners.breaker_open(state, utcnow())
        if wait is not None:
            raise UpstreamUnavailable(
                f"{state.config.code}: the partner failed {state.consecutive_failures} times in "
                f"a row; calls are paused for {math.ceil(wait)} s (circuit open).",
                retry_after=math.ceil(wait),
            )
        try:
            return await call(self.backend(state))
        except PartnerRejected:
            raise
        except UpstreamError as exc:
            await partners.record_failure(
                self.engine, state.config.pk, str(exc), self.cfg, refreshed=refreshed
            )
            raise

    # -----------------------------------------------------------------------------------
    # Refresh: mirror services, sync requests

    async def _partners(self, code: str | None, kind: str | None = None) -> list[Any]:
        async with self.engine.connect() as conn:
            found = await partners.load_partners(conn, code, kind)
        if code is not None:
            partners.require(found, code)
        return found

    async def refresh(
        self, code: str | None = None, window: tuple[datetime, datetime] | None = None
    ) -> list[RefreshReport]:
        """Refresh one jurisdiction (a region: its partners, then its union) or all."""
        targets = await self._partners(code)
        remotes = [t for t in targets if t.kind == "remote"]
        regions = [t for t in targets if t.kind == "region"]
        if code is not None and regions:
            async with self.engine.connect() as conn:
                members = {
                    c.lower() for c in await partners.region_partners(conn, regions[0].config.pk)
                }
            remotes = [
                p for p in await self._partners(None, "remote") if p.config.code.lower() in members
            ]
        reports = list(await asyncio.gather(*(self._refresh_safe(p, window) for p in remotes)))
        for region in regions:
            reports.append(await self.mirror_region(region))
        return reports

    async def _refresh_safe(
        self, state: partners.PartnerState, window: tuple[datetime, datetime] | None
    ) -> RefreshReport:
        try:
            return await self.refresh_partner(state, window)
        except UpstreamError as exc:
            if isinstance(exc, PartnerRejected):  # a refused GET: our configuration is wrong
                await partners.record_failure(
                    self.engine, state.config.pk, str(exc), self.cfg, refreshed=True
                )
            return RefreshReport(state.config.code, error=exc)
        except Exception as exc:  # a bug must not stop the other partners' refresh
            log.exception("refresh of %s failed", state.config.code)
            error = UpstreamBadResponse(
                f"{state.config.code}: refresh failed ({type(exc).__name__})."
            )
            await partners.record_failure(
                self.engine, state.config.pk, str(error), self.cfg, refreshed=True
            )
            return RefreshReport(state.config.code, error=error)

    async def refresh_partner(
        self, state: partners.PartnerState, window: tuple[datetime, datetime] | None = None
    ) -> RefreshReport:
        """Mirror one remote partner's services and sync its requests (raises UpstreamError)."""
        report = RefreshReport(state.config.code)
        services = await self.guarded(state, lambda b: b.services(), refreshed=True)
        async with self.engine.connect() as conn:
            previous = {
                s.code: [a.entry() for a in s.attributes]
                for s in await read_services(conn, state.config.pk)
            }
        for service in services:
            if not service.pop("metadata"):
                continue
            code = service["service_code"]
            try:
                service["attributes"] = await self.guarded(
                    state, functools.partial(_definition, code=code), refreshed=True
                )
            except (PartnerRejected, UpstreamBadResponse) as exc:
                service["attributes"] = previous.get(code, [])
                report.warnings.append(f"definition of {code}: {exc}")
        for service in services:
            service.pop("metadata", None)
        async with write_transaction(self.engine) as conn:
            await partners.mirror_services(conn, state.config.pk, services)
        report.services = len(services)
        end = window[1] if window else utcnow()
        start = window[0] if window else end - timedelta(days=self.cfg.sync_days)
        step = timedelta(days=self.cfg.sync_slice_days)
        cursor = end
        while cursor > start:
            lower = max(start, cursor - step)
            await self._sync_window(state, lower, cursor, report)
            cursor = lower
        await partners.record_success(
            self.engine,
            state.config.pk,
            refreshed=True,
            synced=True,
            warning="; ".join(report.warnings)[:2000] or None,
        )
        return report

    async def _sync_window(
        self, state: partners.PartnerState, start: datetime, end: datetime, report: RefreshReport
    ) -> None:
        items = await self.guarded(state, lambda b: b.requests(start, end), refreshed=True)
        ignores_dates = any(
            i["requested_at"] is not None and not start <= i["requested_at"] <= end for i in items
        )
        if len(items) >= SPLIT_AT and end - start > MIN_SLICE and not ignores_dates:
            middle = start + (end - start) / 2
            await self._sync_window(state, middle, end, report)
            await self._sync_window(state, start, middle, report)
            return
        # A partner that ignores the dates answers the same list for every window: keep each
        # window's own requests only, so every request is stored once a pass.
        items = [i for i in items if i["requested_at"] is None or start <= i["requested_at"] <= end]
        async with write_transaction(self.engine) as conn:
            _, added, updated = await partners.upsert_requests(conn, state.config.pk, items)
        report.added += added
        report.updated += updated

    async def mirror_region(self, region: partners.PartnerState) -> RefreshReport:
        """A region offers the union of its partners' mirrored services (first code wins)."""
        report = RefreshReport(region.config.code)
        async with write_transaction(self.engine) as conn:
            union: dict[str, dict[str, Any]] = {}
            for code in await partners.region_partners(conn, region.config.pk):
                found = await partners.load_partners(conn, code, "remote")
                if found:
                    for service in await read_services(conn, found[0].config.pk):
                        union.setdefault(service.code, service.entry())
            await partners.mirror_services(conn, region.config.pk, list(union.values()))
        report.services = len(union)
        return report

    async def refresh_due(self) -> int:
        """Refresh every partner whose last refresh is older than ``refresh_interval_s``."""
        now = utcnow()
        interval = timedelta(seconds=self.cfg.refresh_interval_s)
        every = await self._partners(None)
        due = [
            p
            for p in every
            if p.kind == "remote"
            and (p.last_refresh_at is None or now - p.last_refresh_at >= interval)
            and partners.breaker_open(p, now) is None
        ]
        # Several worker loops (one per server process by default) share the partners: each
        # refresh is claimed first, so one loop refreshes a partner per interval.
        due = [
            p
            for p in due
            if await partners.claim_refresh(self.engine, p.config.pk, p.last_refresh_at)
        ]
        if not due:
            return 0
        await asyncio.gather(*(self._refresh_safe(p, None) for p in due))
        for region in (p for p in every if p.kind == "region"):
            await self.mirror_region(region)
        return len(due)

    async def check(self, code: str) -> partners.PartnerState:
        """Probe a remote partner now (GET services); raises 502/503/504 on failure."""
        state = partners.require(await self._partners(code), code)
        if state.kind == "remote":
            await self.guarded(state, lambda b: b.services())
            await partners.record_success(self.engine, state.config.pk)
        return state

    # -----------------------------------------------------------------------------------
    # Forwarding queued submissions

    async def forward_due(self, limit: int = 100) -> int:
        """Forward (or poll) every due submission once; how many were handled."""
        claimed = await self._claim(limit)
        if not claimed:
            return 0
        async with self.engine.connect() as conn:
            known = {p.config.pk: p for p in await partners.load_partners(conn, kind="remote")}
        groups: dict[int, list[ClaimedForward]] = {}
        for item in claimed:
            groups.setdefault(item.target_pk, []).append(item)
        await asyncio.gather(
            *(self._forward_group(known.get(pk), items) for pk, items in groups.items())
        )
        return len(claimed)

    async def _claim(self, limit: int) -> list[ClaimedForward]:
        now = utcnow()
        lease = now + timedelta(seconds=self.cfg.timeout_s * 4 + 30)
        async with write_transaction(self.engine) as conn:
            return await sql.claim_forwards(conn, now, lease, limit)

    def _backoff(self, attempts: int) -> timedelta:
        delay = self.cfg.retry_base_s * 2 ** max(0, min(attempts - 1, 20))
        return timedelta(seconds=min(delay, self.cfg.retry_max_s))

    async def _forward_group(
        self, state: partners.PartnerState | None, items: list[ClaimedForward]
    ) -> None:
        for index, item in enumerate(items):
            if state is None:
                await self._fail(item, None, "The partner jurisdiction no longer exists.")
                continue
            try:
                await self._forward_one(state, item)
            except PartnerRejected as exc:
                await self._fail(item, exc.partner_status, str(exc))
            except UpstreamError as exc:
                # The partner is failing: leave the rest of its batch for a later pass.
                for later in items[index:]:
                    await self._reschedule(later, str(exc))
                return
            except Exception as exc:  # never let one submission stop the worker
                log.exception("forwarding submission %s failed", item.submission_pk)
                await self._reschedule(item, f"internal error: {type(exc).__name__}")

    async def _forward_one(self, state: partners.PartnerState, item: ClaimedForward) -> None:
        partner_id = item.partner_request_id
        if partner_id is None and item.partner_token is not None:
            token = item.partner_token
            partner_id = await self.guarded(state, lambda b: b.token(token))
            if partner_id is None:
                await self._reschedule(item, None, delay=timedelta(seconds=self.cfg.retry_base_s))
                return
        elif partner_id is None:
            async with self.engine.connect() as conn:
                code = await sql.service_code(conn, item.service_pk)
            fields = submission_fields(code, item.payload["answers"])
            partner_id, partner_token = await self.guarded(
                state, lambda b: b.create(fields, item.token)
            )
            if partner_id is None and partner_token is None:
                # A blackbox service: accepted, but the partner gives no id to follow.
                await self._finish(item, None)
                return
            async with write_transaction(self.engine) as conn:
                await sql.set_partner_ids(conn, item.submission_pk, partner_id, partner_token)
            if partner_id is None:
                await self._reschedule(item, None, delay=timedelta(seconds=self.cfg.retry_base_s))
                return
        copy: dict[str, Any] | None
        try:
            pid = partner_id
            copy = await self.guarded(state, lambda b: b.request(pid))
        except UpstreamError:
            copy = None  # the answers we validated stand in until the next sync
        await self._store(state, item, partner_id, copy)
        if state.consecutive_failures or state.status != "ok":
            await partners.record_success(self.engine, state.config.pk)

    async def _store(
        self,
        state: partners.PartnerState,
        item: ClaimedForward,
        partner_id: str,
        copy: dict[str, Any] | None,
    ) -> None:
        answers = item.payload["answers"]
        async with write_transaction(self.engine) as conn:
            service = await sql.service_code_and_name(conn, item.service_pk)
            assert service is not None  # noqa: S101 - invariant, not an input check
            if copy is None:
                now = utcnow()
                media = answers.get("media_urls") or []
                copy = {
                    "partner_request_id": partner_id,
                    "service_code": service[0],
                    "service_name": service[1],
                    "status": "open",
                    "status_notes": None,
                    "description": answers.get("description"),
                    "agency_responsible": None,
                    "service_notice": None,
                    "requested_at": now,
                    "updated_at": now,
                    "expected_at": None,
                    "address": answers.get("address"),
                    "address_id": answers.get("address_id"),
                    "zipcode": None,
                    "lat": answers.get("lat"),
                    "lon": answers.get("lon"),
                    "media_url": media[0] if media else None,
                }
            copy["partner_request_id"] = partner_id
            ids, _, _ = await partners.upsert_requests(conn, state.config.pk, [copy])
            ours = ids[partner_id]
            key = item.payload.get("key") or {}
            await sql.set_submitted_fields(
                conn,
                ours,
                attributes=answers.get("attributes") or None,
                media_urls=answers.get("media_urls") or None,
                api_key_id=key.get("id"),
                app_id=key.get("app_id"),
                private={name: answers.get(name) for name in PRIVATE},
            )
            await self._finish_in(conn, item, ours)

    async def _finish(self, item: ClaimedForward, ours: int | None) -> None:
        async with write_transaction(self.engine) as conn:
            await self._finish_in(conn, item, ours)

    async def _finish_in(
        self, conn: AsyncConnection, item: ClaimedForward, ours: int | None
    ) -> None:
        await sql.finish_forward(conn, item.submission_pk, item.token, ours, utcnow())

    async def _fail(self, item: ClaimedForward, status: int | None, error: str) -> None:
        log.warning("forwarded submission %s refused: %s", item.submission_pk, error)
        async with write_transaction(self.engine) as conn:
            await sql.fail_forward(conn, item.submission_pk, status, error[:2000], utcnow())

    async def _reschedule(
        self, item: ClaimedForward, error: str | None, delay: timedelta | None = None
    ) -> None:
        next_attempt_at = utcnow() + (delay or self._backoff(item.attempts))
        async with write_transaction(self.engine) as conn:
            await sql.reschedule_forward(
                conn,
                item.submission_pk,
                next_attempt_at,
                error[:2000] if error is not None else None,
            )

    async def run_once(self) -> int:
        """One worker pass: due forwards, then due refreshes."""
        done = await self.forward_due()
        await self.refresh_due()
        return done


async def _definition(backend: RemoteBackend, *, code: str) -> list[dict[str, Any]]:
    """The partner's definition of one service."""
    return await backend.definition(code)
