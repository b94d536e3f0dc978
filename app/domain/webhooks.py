"""Signed webhooks: apps subscribe a URL and get a signed POST for each update of their requests.

Flow (at-least-once delivery; receivers deduplicate on ``X-Open311-Delivery``):

1. ``enqueue_update`` runs inside the transaction that stores a request update and only
   inserts one ``webhook_delivery`` row per active subscription of the submitting app. No
   network I/O, so a slow receiver never blocks the API request that caused the update, and a
   rolled-back update sends nothing.
2. The worker's ``Deliverer`` claims due rows in a short transaction (locked so that several
   workers never claim the same row, see ``app.store.webhooks``), only as many as it has
   free slots: at most
   ``webhooks.concurrency`` in flight, and ``webhooks.per_app_concurrency`` per app. The
   claim counts the attempt and moves ``next_attempt_at`` past the time the send may take
   (the lease), then commits.
3. Each claimed delivery is POSTed outside any transaction as a background task (the worker
   loop does not wait for it; each send has a total deadline), then its outcome is recorded
   in its own short transaction, fenced on the attempt number so a worker whose lease ran
   out cannot overwrite a newer attempt. A worker that dies mid-send leaves the row
   ``pending`` with a lease that runs out: the delivery is retried, never lost.

Feed subscriptions (``app.domain.subscriptions``) are delivered in order: a delivery waits
while an earlier one of its subscription is pending. A claim of a feed's first pending
delivery takes up to ``webhooks.feed_batch`` of its pending deliveries as one chain, leased
together for the time they may take one after the other; the chain holds one slot and is sent
in order, each outcome recorded as it comes. The first failure ends the chain: that delivery
is retried as any other (the same backoff), the ones behind it are given back unsent (their
attempt uncounted) and wait for it. So a busy subscription gets up to ``feed_batch`` events
per pass of the worker, not one.

Targets: URLs must be public http(s) addresses, checked when registered (``checked_url``)
and again on every connection by the ``delivery_client``, which connects only to the
addresses it checked (``app.outbound``); ``webhooks.allow_private_targets`` lifts this.

Failures (non-2xx, including redirects, which are not followed; timeouts; connection errors)
are retried after ``retry_delay`` (10 s doubling per attempt, at most 1 h) until
``MAX_ATTEMPTS``, then the delivery is ``failed``. States: pending -> delivered | failed.

Signatures: ``X-Open311-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``f"{t}."`` + the exact body bytes, keyed with the subscription's secret. The timestamp is the
real time of sending (receivers check it against their clock), also when ``deliver_due`` is
given another ``now`` for scheduling.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from app import outbound
from app.errors import BadRequest
from app.settings import Settings
from app.store import webhooks as store
from app.store.engine import write_transaction
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("open311.webhooks")

EVENT = "service_request.updated"
USER_AGENT = "open311-server"
SIGNATURE_HEADER = "X-Open311-Signature"
SIGNATURE_TOLERANCE_S = 300

MAX_ATTEMPTS = 8
BASE_DELAY_S = 10
MAX_DELAY_S = 3600
# A delivery's HTTP timeouts come from the client (the worker sets worker.webhook_timeout_s);
# when the client sets none, this one applies. The whole send (slow-drip responses included)
# gets at most twice the longest of them.
DEFAULT_TIMEOUT_S = 5.0
MAX_DEADLINE_S = 120.0
# Defaults of settings.webhooks: POSTs in flight at once, in all and per app; and at most
# this many claimed per call.
CONCURRENCY = 10
PER_APP_CONCURRENCY = 2
MAX_BATCH = 100
# Default of settings.webhooks.feed_batch: deliveries of one feed subscription sent in order
# from one claim.
FEED_BATCH = 20
# Added to the time a send may take, so a lease never runs out mid-send.
LEASE_MARGIN_S = 60

MAX_URL_LENGTH = 2048
MAX_SUBSCRIPTIONS_PER_APP = 10
MAX_ERROR_LENGTH = 2000
_MAX_SIGNATURE_HEADER = 1024
_HEX = frozenset("0123456789abcdef")


# ---------------------------------------------------------------------------------------
# Signatures


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Open311-Signature`` value of a body sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within tolerance.

    For receivers (and tests): malformed headers, timestamps further than ``tolerance``
    seconds from ``now`` in either direction (replays) and wrong digests are all False.
    Several ``v1`` entries are allowed (one of them must match); digests are compared in
    constant time.
    """
    if not header or len(header) > _MAX_SIGNATURE_HEADER:
        return False
    timestamps: list[str] = []
    digests: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            digests.append(value)
    if len(timestamps) != 1 or not digests:
        return False
    (stamp,) = timestamps
    # isdigit() alone accepts non-ASCII digits that int() would read.
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    matched = False
    for digest in digests:
        # compare_digest only takes ASCII text: anything else is malformed, not compared.
        if len(digest) == len(expected) and set(digest) <= _HEX:
            matched |= hmac.compare_digest(digest, expected)
    return matched


# ---------------------------------------------------------------------------------------
# Subscriptions


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, URL-safe text."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def validate_url(url: str | None) -> str:
    """The callback URL, or 400: absolute http(s) with a host, at most 2048 characters."""
    url = (url or "").strip()
    if not url:
        raise BadRequest("url is required: the absolute http(s) URL to POST updates to.")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"url may be at most {MAX_URL_LENGTH} characters long.")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise BadRequest("url must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise BadRequest("url is not a valid URL.") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest("url must be an http:// or https:// URL.")
    if not parts.hostname:
        raise BadRequest("url must name a host.")
    return url


async def checked_url(url: str | None, *, allow_private: bool) -> str:
    """The callback URL, or 400: ``validate_url`` and a public target (``app.outbound``).

    May resolve the host name (a few seconds at most): call it before any transaction.
    """
    url = validate_url(url)
    why = await outbound.check_target(url, allow_private=allow_private)
    if why is not None:
        raise BadRequest(f"url must point to a public address: {why}")
    return url


async def create_subscription(conn: AsyncConnection, *, app_id: int, url: str) -> tuple[int, str]:
    """Subscribe an app's URL to updates of its requests; (id, secret), shown only once.

    Only the URL's form is checked here; callers taking URLs from apps run ``checked_url``
    first, and every delivery checks the address it connects to again.
    """
    url = validate_url(url)
    urls = await store.subscription_urls(conn, app_id)
    if url in urls:
        raise BadRequest("This app already has a webhook for this url.")
    if len(urls) >= MAX_SUBSCRIPTIONS_PER_APP:
        raise BadRequest(
            f"An app may have at most {MAX_SUBSCRIPTIONS_PER_APP} webhooks; delete one first."
        )
    secret = new_secret()
    subscription_id = await store.insert_subscription(
        conn, app_id=app_id, url=url, secret=secret, created_at=utcnow()
    )
    return subscription_id, secret


async def list_subscriptions(conn: AsyncConnection, *, app_id: int) -> list[dict[str, Any]]:
    """The app's subscriptions, oldest first (never the secret)."""
    rows = await store.subscriptions(conn, app_id)
    return [
        {
            "id": r.id,
            "url": r.url,
            "active": r.active,
            "created_at": r.created_at,
            "kind": r.kind,
            "events": r.events,
            "jurisdiction_pk": r.jurisdiction_pk,
            "service_code": ",".join(r.service_codes) if r.service_codes else None,
            "ward": ",".join(r.wards) if r.wards else None,
            "bbox": ",".join(f"{v:g}" for v in r.bbox) if r.bbox else None,
        }
        for r in rows
    ]


async def delete_subscription(conn: AsyncConnection, *, app_id: int, subscription_id: int) -> bool:
    """Delete one of the app's subscriptions and its deliveries; False when it has none such."""
    return await store.delete_subscription(conn, app_id=app_id, subscription_id=subscription_id)


# ---------------------------------------------------------------------------------------
# Queue


async def enqueue_update(
    conn: AsyncConnection, *, app_id: int | None, update_pk: int, payload: dict[str, Any]
) -> int:
    """Queue one delivery of ``payload`` per active subscription of the app; how many.

    Runs inside the caller's transaction (no network I/O). The payload is stored as JSON, so
    values such as datetimes become text now, and a value JSON cannot carry fails here.
    """
    if app_id is None:
        return 0
    subscription_ids = await store.active_subscription_ids(conn, app_id)
    if not subscription_ids:
        return 0
    document = orjson.loads(orjson.dumps(payload))
    await store.insert_deliveries(
        conn, subscription_ids, update_pk=update_pk, payload=document, now=utcnow()
    )
    return len(subscription_ids)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts: 10 s, 20 s, 40 s … at most 1 h."""
    return timedelta(seconds=min(BASE_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S))


def send_deadline(client: httpx.AsyncClient) -> float:
    """Seconds one delivery may take in all with this client."""
    timeout = client.timeout
    limits = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return min(2 * max(limits, default=DEFAULT_TIMEOUT_S), MAX_DEADLINE_S)


def lease_for(client: httpx.AsyncClient, sends: int = 1) -> timedelta:
    """How long claimed deliveries stay reserved for the worker that claimed them.

    Every claim starts at once (claims never exceed the free slots), and a chain of ``sends``
    deliveries (a feed subscription's) sends them one after the other, so that many
    deadlines plus a margin cover it.
    """
    return timedelta(seconds=LEASE_MARGIN_S + sends * send_deadline(client))


def delivery_client(settings: Settings, *, timeout: float | None = None) -> httpx.AsyncClient:
    """The HTTP client deliveries go through: public targets only (unless the operator allows
    private ones), checked on the very address connected to; no proxies, no redirects."""
    return httpx.AsyncClient(
        transport=outbound.GuardedTransport(allow_private=settings.webhooks.allow_private_targets),
        timeout=settings.worker.webhook_timeout_s if timeout is None else timeout,
        trust_env=False,
        follow_redirects=False,
    )


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    attempt: int  # this attempt's number (1-based); also the fence of its record
    payload: dict[str, Any]
    url: str
    secret: str
    app_id: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Deliverer:
    """Sends due deliveries as background tasks, at most ``concurrency`` at once in all and
    ``per_app`` at once for any one app (a feed subscription's chain, up to ``feed_batch``
    deliveries sent in order, counts as one).

    ``start_due`` claims only what fits in the free slots and returns without waiting for
    the sends, so an app whose endpoint hangs holds its own ``per_app`` slots until the
    deadline (``send_deadline``) and nothing else: the worker loop and the other apps'
    deliveries go on. Limits are per worker process.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        client: httpx.AsyncClient,
        *,
        concurrency: int = CONCURRENCY,
        per_app: int = PER_APP_CONCURRENCY,
        feed_batch: int = FEED_BATCH,
    ) -> None:
        self.engine = engine
        self.client = client
        self.concurrency = max(1, concurrency)
        self.per_app = max(1, per_app)
        self.feed_batch = max(1, feed_batch)
        self.sent = 0  # deliveries sent (an outcome, good or bad, reached)
        self.deadline = send_deadline(client)
        self._busy: dict[int, int] = {}  # app id -> its deliveries in flight
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_settings(
        cls, engine: AsyncEngine, client: httpx.AsyncClient, settings: Settings
    ) -> Deliverer:
        """A deliverer with the concurrency limits of ``settings.webhooks``."""
        cfg = settings.webhooks
        return cls(
            engine,
            client,
            concurrency=cfg.concurrency,
            per_app=cfg.per_app_concurrency,
            feed_batch=cfg.feed_batch,
        )

    @property
    def in_flight(self) -> int:
        """Deliveries being sent now."""
        return len(self._tasks)

    async def start_due(self, *, limit: int = MAX_BATCH, now: datetime | None = None) -> int:
        """Claim due deliveries that fit in the free slots and start sending them; how many
        deliveries were claimed."""
        free = min(limit, MAX_BATCH, self.concurrency - len(self._tasks))
        if free <= 0:
            return 0
        clock = now or utcnow()
        chains = await _claim(
            self.engine,
            self.client,
            free,
            clock,
            per_app=self.per_app,
            busy=self._busy,
            feed_batch=self.feed_batch,
        )
        for chain in chains:
            app_id = chain[0].app_id
            self._busy[app_id] = self._busy.get(app_id, 0) + 1
            task = asyncio.create_task(self._one(chain, now), name=f"webhook-{chain[0].id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return sum(len(chain) for chain in chains)

    async def _one(self, chain: list[_Claimed], now: datetime | None) -> None:
        item = chain[0]
        try:
            for index, item in enumerate(chain):
                outcome = await _send(self.client, item, self.deadline)
                self.sent += 1
                await _record(self.engine, item, outcome, now)
                if not outcome.ok:
                    # The rest waits for this one's retry, unsent (their attempt uncounted).
                    if rest := chain[index + 1 :]:
                        await _give_back(self.engine, rest, now)
                    break
        except Exception:  # the leases run out and the deliveries are tried again
            log.exception("webhook delivery %s: recording the outcome failed", item.id)
        finally:
            app_id = chain[0].app_id
            left = self._busy.get(app_id, 1) - 1
            if left > 0:
                self._busy[app_id] = left
            else:
                self._busy.pop(app_id, None)

    async def wait(self) -> None:
        """Wait until every started delivery is sent and recorded (cancelled with the caller)."""
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def aclose(self, grace: float = 0.0) -> None:
        """Let sends in flight finish for up to ``grace`` seconds, then cancel the rest
        (their leases run out and they are sent again)."""
        pending = set(self._tasks)
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def deliver_due(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    *,
    limit: int = 50,
    now: datetime | None = None,
    concurrency: int = CONCURRENCY,
    per_app: int = PER_APP_CONCURRENCY,
    feed_batch: int = FEED_BATCH,
) -> int:
    """Send the deliveries due at ``now`` (default: the current time) that fit in one round of
    ``concurrency`` slots (at most ``per_app`` per app; a feed subscription's chain of up to
    ``feed_batch`` takes one) and wait for them; how many were sent.

    ``now`` drives scheduling (what is due, the lease, the next attempt); signatures always
    carry the real time of sending. The worker loop uses a long-lived ``Deliverer`` instead,
    which does not wait. Use a ``delivery_client`` (it enforces the address policy).
    """
    deliverer = Deliverer(
        engine, client, concurrency=concurrency, per_app=per_app, feed_batch=feed_batch
    )
    await deliverer.start_due(limit=limit, now=now)
    await deliverer.wait()
    return deliverer.sent


async def _claim(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    limit: int,
    clock: datetime,
    *,
    per_app: int,
    busy: dict[int, int],
    feed_batch: int = 1,
) -> list[list[_Claimed]]:
    """Claim chains of due deliveries (one delivery each, or up to ``feed_batch`` of a feed
    subscription, in order), at most ``limit`` chains, leased together."""
    if limit <= 0:
        return []
    full = [app_id for app_id, count in busy.items() if count >= per_app]
    claimed: list[list[_Claimed]] = []
    taken: dict[int, int] = {}
    async with write_transaction(engine) as conn:
        rows = await store.lock_due(conn, clock, per_app=per_app, limit=limit, skip_apps=full)
        for row in rows:
            if not row.active:
                reason = "The subscription is inactive."
            elif row.attempts >= MAX_ATTEMPTS:
                # Every attempt was claimed but none recorded (workers stopped mid-send).
                reason = "No outcome was recorded for the last attempt."
            else:
                app_id = row.app_id
                if busy.get(app_id, 0) + taken.get(app_id, 0) >= per_app:
                    continue  # the app's slots are full: left due for a later pass
                taken[app_id] = taken.get(app_id, 0) + 1
                chain = [
                    _Claimed(row.id, row.attempts + 1, row.payload, row.url, row.secret, app_id)
                ]
                if row.kind == "feed" and feed_batch > 1:
                    for more in await store.lock_next(
                        conn, row.subscription_id, row.id, feed_batch - 1
                    ):
                        if more.attempts >= MAX_ATTEMPTS:
                            break  # given up when it is the first pending one
                        chain.append(
                            _Claimed(
                                more.id,
                                more.attempts + 1,
                                more.payload,
                                row.url,
                                row.secret,
                                app_id,
                            )
                        )
                claimed.append(chain)
                continue
            await store.fail_delivery(conn, row.id, reason)
        singles = [chain[0].id for chain in claimed if len(chain) == 1]
        if singles:
            await store.lease(conn, singles, clock + lease_for(client))
        for chain in claimed:
            if len(chain) > 1:
                until = clock + lease_for(client, len(chain))
                await store.lease(conn, [item.id for item in chain], until)
    return claimed


async def _give_back(engine: AsyncEngine, items: list[_Claimed], now: datetime | None) -> None:
    async with write_transaction(engine) as conn:
        await store.give_back(conn, [(item.id, item.attempt) for item in items], now or utcnow())


def _body(item: _Claimed) -> bytes:
    return orjson.dumps({**item.payload, "delivery_id": item.id, "attempt": item.attempt})


async def _send(client: httpx.AsyncClient, item: _Claimed, deadline: float) -> _Outcome:
    body = _body(item)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(item.secret, int(time.time()), body),
        "X-Open311-Delivery": str(item.id),
        "X-Open311-Event": EVENT,
        "User-Agent": USER_AGENT,
    }
    try:
        async with (
            asyncio.timeout(deadline),
            # Streamed and closed unread: the receiver's answer body is never downloaded.
            client.stream(
                "POST", item.url, content=body, headers=headers, follow_redirects=False
            ) as response,
        ):
            status = response.status_code
    except (TimeoutError, httpx.TimeoutException) as exc:
        return _Outcome(None, f"Timed out ({type(exc).__name__}).")
    except httpx.HTTPError as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    except Exception as exc:  # recorded and retried like any failure, never a crashed batch
        log.exception("webhook delivery %s failed unexpectedly", item.id)
        return _Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    if 200 <= status < 300:
        return _Outcome(status, None)
    return _Outcome(status, f"HTTP {status}")


async def _record(
    engine: AsyncEngine, item: _Claimed, outcome: _Outcome, now: datetime | None
) -> None:
    at = now or utcnow()
    state = delivered_at = next_attempt_at = None
    if outcome.ok:
        state, delivered_at = "delivered", at
    elif item.attempt >= MAX_ATTEMPTS:
        state = "failed"
    else:
        next_attempt_at = at + retry_delay(item.attempt)
    async with write_transaction(engine) as conn:
        recorded = await store.record_attempt(
            conn,
            item.id,
            item.attempt,
            last_status=outcome.status,
            last_error=outcome.error,
            state=state,
            delivered_at=delivered_at,
            next_attempt_at=next_attempt_at,
        )
    if not recorded:
        log.warning("webhook delivery %s: attempt %s was superseded", item.id, item.attempt)
