"""Subscriptions: webhooks for new requests and updates of any request, for any app.

A *feed* subscription (``kind = "feed"``) receives the public events that match its filters
— ``service_request.created`` (a new request) and ``service_request.updated`` (an update) —
of requests whoever submitted them, public fields only (never the reporter's). Its filters:
a jurisdiction, service codes, ward codes (of that jurisdiction), a bounding box
(``min_long,min_lat,max_long,max_lat``). The app's other webhooks (``kind = "own"``) keep
telling it about updates of its own requests (``app.domain.webhooks``).

Feed: each subscription has a position (the last request and the last update it was fed).
The worker's ``Feeder`` reads the requests and updates after it, in id order, a bounded batch
a pass, queues a delivery per matching event (signed, retried, at least once, as every
webhook: ``app.domain.webhooks``) and moves the position on, in one transaction fenced on
the old position (several workers never feed the same events twice). Rows younger than
``SETTLE_S`` wait for the next pass, so a PostgreSQL insert that committed late behind a
larger id is not stepped over. A subscription with ``MAX_PENDING`` deliveries waiting is not
fed until its receiver catches up (its position waits, nothing is lost).

Order: a feed subscription's deliveries are sent one at a time, in the order of its events
(``app.store.webhooks.lock_due``): a delivery waits while an earlier one is pending.

Replay: the app moves a subscription's position back to a point in time (at most
``webhooks.max_replay_days`` ago): the events since then are fed again (receivers
deduplicate on the event: ``event`` + ``service_request_id`` / ``update_id``).

Log: the app reads each subscription's deliveries, newest first, with their state, attempts
and last answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from app.domain.webhooks import MAX_SUBSCRIPTIONS_PER_APP, new_secret, validate_url
from app.errors import BadRequest, Forbidden, NotFound
from app.georeport.datetimes import format_w3c, parse_w3c
from app.georeport.params import Parameters
from app.models.requests import RequestRead
from app.store import subscriptions as store
from app.store import webhooks as webhook_store
from app.store.engine import read_connection, write_transaction
from app.store.requests import read_with_sqlalchemy
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from app.domain.api_keys import KeyInfo
    from app.domain.jurisdictions import JurisdictionInfo, JurisdictionRegistry

CREATED = "service_request.created"
UPDATED = "service_request.updated"
EVENTS = {"created": CREATED, "updated": UPDATED}
MAX_FILTER_VALUES = 50
# The feed: subscriptions fed a pass, rows scanned per subscription and stream a pass, how
# young a row may be to be fed, how many deliveries may wait before a subscription pauses.
FEED_SUBSCRIPTIONS = 50
SCAN = 200
SETTLE_S = 2.0
MAX_PENDING = 1000
LOG_MAX = 100


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a feed subscription asks for (validated)."""

    events: tuple[str, ...]  # "created", "updated"
    jurisdiction_pk: int | None
    service_codes: list[str] | None
    wards: list[str] | None
    bbox: list[float] | None


def _values(params: Parameters, name: str, problems: list[str]) -> list[str] | None:
    values = [v.strip() for raw in params.every(name) for v in raw.split(",") if v.strip()]
    if not values:
        return None
    distinct = list(dict.fromkeys(values))
    if len(distinct) > MAX_FILTER_VALUES or any(len(v) > 100 for v in distinct):
        problems.append(f"{name} may list at most {MAX_FILTER_VALUES} values of 100 characters.")
    return distinct


def _bbox(text: str | None, problems: list[str]) -> list[float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        problems.append("bbox must be min_long,min_lat,max_long,max_lat (decimal degrees).")
        return None
    west, south, east, north = numbers
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        problems.append("bbox must be min_long,min_lat,max_long,max_lat within WGS84 bounds.")
        return None
    return numbers


async def feed_spec(
    params: Parameters, key: KeyInfo, registry: JurisdictionRegistry
) -> FeedSpec | None:
    """The feed a POST webhooks asks for, or None for a webhook of the app's own requests
    (no ``events``, service_code, ward or bbox). 400 for a bad filter; 403 for a jurisdiction
    the key may not use (a restricted key's feed is always of its own jurisdiction)."""
    problems: list[str] = []
    # jurisdiction_id alone names no feed: a webhook of the app's own requests ignores it.
    if not any(params.every(name) for name in ("events", "service_code", "ward", "bbox")):
        return None
    events = _values(params, "events", problems) or list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        problems.append("events must be created, updated or both (comma-separated).")
    codes = _values(params, "service_code", problems)
    wards = _values(params, "ward", problems)
    box = _bbox(params.one("bbox", problems), problems)
    code = params.one("jurisdiction_id", problems)
    if wards and not code and key.jurisdiction_pk is None:
        problems.append("ward needs jurisdiction_id (ward codes are a jurisdiction's).")
    if problems:
        raise BadRequest(*problems)
    jurisdiction_pk = None
    if code:
        jurisdiction_pk = (await registry.resolve(code)).pk
    if key.jurisdiction_pk is not None:
        if jurisdiction_pk is not None and jurisdiction_pk != key.jurisdiction_pk:
            raise Forbidden("This api_key is not valid for this jurisdiction.")
        jurisdiction_pk = key.jurisdiction_pk
    return FeedSpec(tuple(dict.fromkeys(events)), jurisdiction_pk, codes, wards, box)


async def create_feed(
    conn: AsyncConnection, *, app_id: int, url: str, spec: FeedSpec
) -> tuple[int, str]:
    """Store a feed subscription, positioned at now; (id, secret), the secret shown once."""
    url = validate_url(url)
    urls = await webhook_store.subscription_urls(conn, app_id)
    if url in urls:
        raise BadRequest("This app already has a webhook for this url.")
    if len(urls) >= MAX_SUBSCRIPTIONS_PER_APP:
        raise BadRequest(
            f"An app may have at most {MAX_SUBSCRIPTIONS_PER_APP} webhooks; delete one first."
        )
    secret = new_secret()
    subscription_id = await store.insert_feed_subscription(
        conn,
        app_id=app_id,
        url=url,
        secret=secret,
        created_at=utcnow(),
        events=",".join(spec.events),
        jurisdiction_pk=spec.jurisdiction_pk,
        service_codes=spec.service_codes,
        wards=spec.wards,
        bbox=spec.bbox,
    )
    return subscription_id, secret


def parse_since(text: str | None, max_days: int, now: datetime) -> datetime:
    """The ``since`` of a replay: a W3C datetime with a zone, at most ``max_days`` ago."""
    if not text:
        raise BadRequest("since is required: the W3C datetime to replay events from.")
    try:
        since = parse_w3c(text)
    except ValueError as exc:
        raise BadRequest("since must be a W3C datetime with a time zone.") from exc
    since = since.astimezone(UTC)
    if since < now - timedelta(days=max_days):
        raise BadRequest(f"since may be at most {max_days} days ago.")
    return since


async def replay(
    conn: AsyncConnection, *, app_id: int, subscription_id: int, since: datetime
) -> None:
    """Feed a subscription again from ``since`` (404 for another app's, 400 for a webhook
    of the app's own requests)."""
    kind = await store.subscription_kind(conn, app_id=app_id, subscription_id=subscription_id)
    if kind is None:
        raise NotFound(f"This app has no webhook {subscription_id}.")
    if kind != "feed":
        raise BadRequest("Only a subscription with events (a feed) can be replayed.")
    request_cursor, update_cursor = await store.cursors_since(conn, since)
    await store.set_cursors(conn, subscription_id, request_cursor, update_cursor)


async def delivery_log(
    conn: AsyncConnection,
    *,
    app_id: int,
    subscription_id: int,
    limit: int,
    before: int | None,
) -> list[dict[str, Any]]:
    """The newest deliveries of one of the app's subscriptions (404 for another app's)."""
    rows = await store.delivery_log(
        conn, app_id=app_id, subscription_id=subscription_id, limit=limit, before=before
    )
    if rows is None:
        raise NotFound(f"This app has no webhook {subscription_id}.")
    return [
        {
            "delivery_id": r.id,
            "event": r.event,
            "service_request_id": None if r.request_id is None else str(r.request_id),
            "state": r.state,
            "attempts": r.attempts,
            "last_status": r.last_status,
            "last_error": r.last_error,
            "created_at": format_w3c(r.created_at, UTC),
            "delivered_at": None if r.delivered_at is None else format_w3c(r.delivered_at, UTC),
        }
        for r in rows
    ]


# ---------------------------------------------------------------------------------------
# The feed


def matches(sub: store.FeedSubscription, row: store.ScannedRequest) -> bool:
    """Does a (public) request pass a subscription's filters?"""
    if row.sandbox:
        return False
    if sub.jurisdiction_pk is not None and row.jurisdiction_pk != sub.jurisdiction_pk:
        return False
    if sub.service_codes is not None and row.service_code not in sub.service_codes:
        return False
    if sub.wards is not None and row.ward_code not in sub.wards:
        return False
    if sub.bbox is not None:
        if row.lat is None or row.lon is None:
            return False
        west, south, east, north = sub.bbox
        if not (west <= row.lon <= east and south <= row.lat <= north):
            return False
    return True


def _settled(rows: list[Any], cutoff: datetime) -> list[Any]:
    """The rows before the first one younger than ``cutoff`` (it and those after it wait)."""
    for index, row in enumerate(rows):
        if row.created_at > cutoff:
            return rows[:index]
    return rows


class Feeder:
    """Queues the deliveries of feed subscriptions (a pass of the worker)."""

    def __init__(self, engine: AsyncEngine, registry: JurisdictionRegistry) -> None:
        self.engine = engine
        self.registry = registry
        self.postgres = engine.dialect.name == "postgresql"

    async def run_once(self, now: datetime | None = None) -> int:
        """Feed every subscription a batch; how many deliveries were queued."""
        clock = now or utcnow()
        async with read_connection(self.engine) as conn:
            subs = await store.feed_subscriptions(
                conn, limit=FEED_SUBSCRIPTIONS, max_pending=MAX_PENDING
            )
        queued = 0
        for sub in subs:
            queued += await self._feed(sub, clock)
        return queued

    async def _feed(self, sub: store.FeedSubscription, clock: datetime) -> int:
        cutoff = clock - timedelta(seconds=SETTLE_S)
        async with read_connection(self.engine) as conn:
            requests = _settled(await store.requests_after(conn, sub.request_cursor, SCAN), cutoff)
            updates = _settled(await store.updates_after(conn, sub.update_cursor, SCAN), cutoff)
        if not requests and not updates:
            return 0
        events: list[tuple[datetime, str, int, int | None, dict[str, Any]]] = []
        if "created" in sub.events:
            fresh = [r for r in requests if matches(sub, r)]
            items = await self._items(fresh)
            for row in fresh:
                item = items.get(row.id)
                if item is not None:
                    payload = {"event": CREATED, **item}
                    events.append((row.created_at, CREATED, row.id, None, payload))
        if "updated" in sub.events:
            for update in updates:
                if update.sandbox or not matches(sub, update.request):
                    continue
                payload = await self._update_payload(update)
                events.append((update.created_at, UPDATED, update.request.id, update.id, payload))
        # One stream in the order things happened (a request's creation before its updates).
        events.sort(key=lambda e: (e[0], e[1] != CREATED, e[2]))
        request_cursor = requests[-1].id if requests else sub.request_cursor
        update_cursor = updates[-1].id if updates else sub.update_cursor
        documents = [
            (event, request_pk, update_pk, orjson.loads(orjson.dumps(payload)))
            for _, event, request_pk, update_pk, payload in events
        ]
        async with write_transaction(self.engine) as conn:
            moved = await store.advance(
                conn,
                sub.id,
                (sub.request_cursor, sub.update_cursor),
                (request_cursor, update_cursor),
            )
            if not moved:
                return 0  # another worker fed these (or the app replayed meanwhile)
            await store.insert_events(conn, sub.id, documents, utcnow())
        return len(documents)

    async def _items(self, rows: list[store.ScannedRequest]) -> dict[int, dict[str, Any]]:
        """The public wire items of new requests, by id (with the ward: extensions)."""
        from app.domain.requests import public_wire

        found: dict[int, dict[str, Any]] = {}
        by_place: dict[int, list[int]] = {}
        for row in rows:
            by_place.setdefault(row.jurisdiction_pk, []).append(row.id)
        for place_pk, ids in by_place.items():
            place = await self._place(place_pk)
            if place is None:
                continue
            wire, read = public_wire(place)
            page = await read_with_sqlalchemy(
                self.engine,
                RequestRead(**read, ids=tuple(ids), limit=len(ids)),
                postgres=self.postgres,
            )
            for request_row in page.rows:
                item = wire.item(request_row)
                found[int(request_row.id)] = {
                    "jurisdiction_id": place.code,
                    "service_request": item,
                }
        return found

    async def _update_payload(self, update: store.ScannedUpdate) -> dict[str, Any]:
        place = await self._place(update.request.jurisdiction_pk)
        tz = place.tz if place is not None else UTC
        return {
            "event": UPDATED,
            "jurisdiction_id": place.code if place is not None else None,
            "update": {
                "update_id": str(update.id),
                "service_request_id": str(update.request.id),
                "status": update.detailed_status or update.status,
                "updated_datetime": format_w3c(update.updated_at, tz),
                "description": update.description,
                "media_url": update.media_url,
                "external_status_code": update.external_status_code,
            },
        }

    async def _place(self, pk: int) -> JurisdictionInfo | None:
        for place in await self.registry.all():
            if place.pk == pk:
                return place
        return None
