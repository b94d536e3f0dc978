"""Subscriptions (filtered webhooks): the statements behind ``app.domain.subscriptions``.

The feed of a subscription is read by position: the requests and the updates whose id is
above its cursors, scanned in id order a bounded batch at a time. Filters are applied to the
scanned rows by the domain (a few hundred rows a pass), so the cursor moves past rows that do
not match too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import (
    Area,
    RequestUpdate,
    ServiceRequest,
    ServiceType,
    WebhookDelivery,
    WebhookSubscription,
)

SUBSCRIPTION = WebhookSubscription.__table__
DELIVERY = WebhookDelivery.__table__
REQUEST = ServiceRequest.__table__
UPDATE = RequestUpdate.__table__
SERVICE = ServiceType.__table__
AREA = Area.__table__


@dataclass(frozen=True, slots=True)
class FeedSubscription:
    """An active feed subscription: its filters and position."""

    id: int
    app_id: int
    events: frozenset[str]
    jurisdiction_pk: int | None
    service_codes: frozenset[str] | None
    wards: frozenset[str] | None
    bbox: tuple[float, float, float, float] | None
    request_cursor: int
    update_cursor: int


@dataclass(frozen=True, slots=True)
class ScannedRequest:
    """A request (or the request of an update) as the filters see it."""

    id: int
    jurisdiction_pk: int
    service_code: str
    ward_code: str | None
    lat: float | None
    lon: float | None
    sandbox: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScannedUpdate:
    """An update, with its request as the filters see it, and its public fields."""

    id: int
    request: ScannedRequest
    status: str
    detailed_status: str | None
    description: str | None
    media_url: str | None
    external_status_code: str | None
    updated_at: datetime
    sandbox: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedDelivery:
    """One delivery of a subscription, for its log."""

    id: int
    event: str | None
    request_id: int | None
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


async def insert_feed_subscription(
    conn: AsyncConnection,
    *,
    app_id: int,
    url: str,
    secret: str,
    created_at: datetime,
    events: str,
    jurisdiction_pk: int | None,
    service_codes: list[str] | None,
    wards: list[str] | None,
    bbox: list[float] | None,
) -> int:
    """Store an active feed subscription positioned at the newest request and update (it
    gets what happens from now on); its id."""
    request_cursor, update_cursor = await heads(conn)
    subscription_id = (
        await conn.execute(
            insert(SUBSCRIPTION)
            .values(
                app_id=app_id,
                url=url,
                secret=secret,
                active=True,
                created_at=created_at,
                kind="feed",
                events=events,
                filter_jurisdiction_id=jurisdiction_pk,
                service_codes=service_codes,
                wards=wards,
                bbox=bbox,
                request_cursor=request_cursor,
                update_cursor=update_cursor,
            )
            .returning(SUBSCRIPTION.c.id)
        )
    ).scalar_one()
    return int(subscription_id)


async def heads(conn: AsyncConnection) -> tuple[int, int]:
    """The ids of the newest request and the newest update (0 when there is none)."""
    row = (
        await conn.execute(
            select(
                select(func.coalesce(func.max(REQUEST.c.id), 0)).scalar_subquery(),
                select(func.coalesce(func.max(UPDATE.c.id), 0)).scalar_subquery(),
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def cursors_since(conn: AsyncConnection, since: datetime) -> tuple[int, int]:
    """The positions just before the first request and the first update made at or after
    ``since`` (a replay starts there)."""

    async def before(table: Any) -> int:
        first = (
            await conn.execute(select(func.min(table.c.id)).where(table.c.created_at >= since))
        ).scalar()
        if first is None:  # nothing since: the newest position
            return int(
                (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
            )
        return int(first) - 1

    return await before(REQUEST), await before(UPDATE)


async def subscription_kind(
    conn: AsyncConnection, *, app_id: int, subscription_id: int
) -> str | None:
    """The kind of one of the app's subscriptions (None: the app has none such)."""
    kind = (
        await conn.execute(
            select(SUBSCRIPTION.c.kind).where(
                SUBSCRIPTION.c.id == subscription_id, SUBSCRIPTION.c.app_id == app_id
            )
        )
    ).scalar()
    return None if kind is None else str(kind)


async def set_cursors(
    conn: AsyncConnection, subscription_id: int, request_cursor: int, update_cursor: int
) -> None:
    """Move a subscription's feed position."""
    await conn.execute(
        update(SUBSCRIPTION)
        .where(SUBSCRIPTION.c.id == subscription_id)
        .values(request_cursor=request_cursor, update_cursor=update_cursor)
    )


async def advance(
    conn: AsyncConnection,
    subscription_id: int,
    old: tuple[int, int],
    new: tuple[int, int],
) -> bool:
    """Move a subscription's position from ``old`` to ``new``; False when it was no longer
    at ``old`` (another worker fed it, or the app replayed it)."""
    result = await conn.execute(
        update(SUBSCRIPTION)
        .where(
            SUBSCRIPTION.c.id == subscription_id,
            SUBSCRIPTION.c.request_cursor == old[0],
            SUBSCRIPTION.c.update_cursor == old[1],
        )
        .values(request_cursor=new[0], update_cursor=new[1])
    )
    return bool(result.rowcount)


async def feed_subscriptions(
    conn: AsyncConnection, *, limit: int, max_pending: int
) -> list[FeedSubscription]:
    """Active feed subscriptions with fewer than ``max_pending`` deliveries waiting (one whose
    receiver lags keeps its position until it catches up), at most ``limit``, the least
    advanced first."""
    pending = (
        select(func.count())
        .select_from(DELIVERY)
        .where(DELIVERY.c.subscription_id == SUBSCRIPTION.c.id, DELIVERY.c.state == "pending")
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(
            SUBSCRIPTION.c.id,
            SUBSCRIPTION.c.app_id,
            SUBSCRIPTION.c.events,
            SUBSCRIPTION.c.filter_jurisdiction_id,
            SUBSCRIPTION.c.service_codes,
            SUBSCRIPTION.c.wards,
            SUBSCRIPTION.c.bbox,
            SUBSCRIPTION.c.request_cursor,
            SUBSCRIPTION.c.update_cursor,
        )
        .where(
            SUBSCRIPTION.c.kind == "feed",
            SUBSCRIPTION.c.active.is_(True),
            pending < max_pending,
        )
        .order_by(SUBSCRIPTION.c.id)
        .limit(limit)
    )
    return [
        FeedSubscription(
            id=int(r.id),
            app_id=int(r.app_id),
            events=frozenset((r.events or "").split(",")) - {""},
            jurisdiction_pk=r.filter_jurisdiction_id,
            service_codes=frozenset(r.service_codes) if r.service_codes else None,
            wards=frozenset(r.wards) if r.wards else None,
            bbox=tuple(r.bbox) if r.bbox else None,
            request_cursor=int(r.request_cursor),
            update_cursor=int(r.update_cursor),
        )
        for r in rows
    ]


def _request_columns() -> list[Any]:
    return [
        REQUEST.c.id,
        REQUEST.c.jurisdiction_id,
        SERVICE.c.service_code,
        AREA.c.code.label("ward_code"),
        REQUEST.c.lat,
        REQUEST.c.lon,
        REQUEST.c.sandbox,
        REQUEST.c.created_at,
    ]


def _scanned(row: Any) -> ScannedRequest:
    return ScannedRequest(
        id=int(row.id),
        jurisdiction_pk=int(row.jurisdiction_id),
        service_code=row.service_code,
        ward_code=row.ward_code,
        lat=row.lat,
        lon=row.lon,
        sandbox=bool(row.sandbox),
        created_at=row.created_at,
    )


async def requests_after(conn: AsyncConnection, cursor: int, limit: int) -> list[ScannedRequest]:
    """The requests after ``cursor``, in id order, at most ``limit``."""
    rows = await conn.execute(
        select(*_request_columns())
        .join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
        .outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id)
        .where(REQUEST.c.id > cursor)
        .order_by(REQUEST.c.id)
        .limit(limit)
    )
    return [_scanned(row) for row in rows]


async def updates_after(conn: AsyncConnection, cursor: int, limit: int) -> list[ScannedUpdate]:
    """The updates after ``cursor``, in id order, at most ``limit``, with their requests."""
    rows = await conn.execute(
        select(
            UPDATE.c.id.label("update_id"),
            UPDATE.c.status.label("update_status"),
            UPDATE.c.detailed_status,
            UPDATE.c.description.label("update_description"),
            UPDATE.c.media_url.label("update_media_url"),
            UPDATE.c.external_status_code,
            UPDATE.c.updated_at.label("update_updated_at"),
            UPDATE.c.sandbox.label("update_sandbox"),
            UPDATE.c.created_at.label("update_created_at"),
            *_request_columns(),
        )
        .join(REQUEST, REQUEST.c.id == UPDATE.c.service_request_id)
        .join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
        .outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id)
        .where(UPDATE.c.id > cursor)
        .order_by(UPDATE.c.id)
        .limit(limit)
    )
    return [
        ScannedUpdate(
            id=int(row.update_id),
            request=_scanned(row),
            status=row.update_status,
            detailed_status=row.detailed_status,
            description=row.update_description,
            media_url=row.update_media_url,
            external_status_code=row.external_status_code,
            updated_at=row.update_updated_at,
            sandbox=bool(row.update_sandbox),
            created_at=row.update_created_at,
        )
        for row in rows
    ]


async def insert_events(
    conn: AsyncConnection,
    subscription_id: int,
    events: Sequence[tuple[str, int, int | None, dict[str, Any]]],
    now: datetime,
) -> None:
    """Queue a pending delivery per event ``(event, request id, update id, payload)``, in
    order (their ids keep it)."""
    if not events:
        return
    await conn.execute(
        insert(DELIVERY),
        [
            {
                "subscription_id": subscription_id,
                "update_id": update_pk,
                "payload": payload,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "event": event,
                "request_id": request_pk,
            }
            for event, request_pk, update_pk, payload in events
        ],
    )


async def delivery_log(
    conn: AsyncConnection,
    *,
    app_id: int,
    subscription_id: int,
    limit: int,
    before: int | None,
) -> list[LoggedDelivery] | None:
    """The newest deliveries of one of the app's subscriptions (below id ``before``), at most
    ``limit``; None when the app has no such subscription."""
    if await subscription_kind(conn, app_id=app_id, subscription_id=subscription_id) is None:
        return None
    query = select(
        DELIVERY.c.id,
        DELIVERY.c.event,
        DELIVERY.c.request_id,
        DELIVERY.c.state,
        DELIVERY.c.attempts,
        DELIVERY.c.last_status,
        DELIVERY.c.last_error,
        DELIVERY.c.created_at,
        DELIVERY.c.delivered_at,
    ).where(DELIVERY.c.subscription_id == subscription_id)
    if before is not None:
        query = query.where(DELIVERY.c.id < before)
    rows = await conn.execute(query.order_by(DELIVERY.c.id.desc()).limit(limit))
    return [
        LoggedDelivery(
            id=int(r.id),
            event=r.event,
            request_id=None if r.request_id is None else int(r.request_id),
            state=r.state,
            attempts=int(r.attempts),
            last_status=r.last_status,
            last_error=r.last_error,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
        )
        for r in rows
    ]
