"""Webhooks: the statements behind ``app.domain.webhooks`` (subscriptions, the delivery queue).

Claims lock their rows with ``SELECT … FOR UPDATE OF webhook_delivery SKIP LOCKED`` on
PostgreSQL, so several workers never claim the same row; SQLAlchemy renders no locking clause
on SQLite, whose ``BEGIN IMMEDIATE`` write transaction already serialises claims.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import WebhookDelivery, WebhookSubscription

SUBSCRIPTION = WebhookSubscription.__table__
DELIVERY = WebhookDelivery.__table__


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A subscription as its app sees it (never the secret)."""

    id: int
    url: str
    active: bool
    created_at: datetime
    kind: str = "own"
    events: str | None = None
    jurisdiction_pk: int | None = None
    service_codes: list[str] | None = None
    wards: list[str] | None = None
    bbox: list[float] | None = None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A pending delivery that is due, locked for the claiming transaction, with its target."""

    id: int
    attempts: int  # attempts claimed so far
    payload: dict[str, Any]
    url: str
    secret: str
    active: bool  # the subscription's
    app_id: int
    subscription_id: int = 0
    kind: str = "own"  # the subscription's: "own" (its app's requests) or "feed"


@dataclass(frozen=True, slots=True)
class NextDelivery:
    """A pending delivery of a feed subscription behind the one claimed (in order)."""

    id: int
    attempts: int
    payload: dict[str, Any]


# ---------------------------------------------------------------------------------------
# Subscriptions


async def subscription_urls(conn: AsyncConnection, app_id: int) -> list[str]:
    """The URLs the app subscribed."""
    rows = await conn.execute(select(SUBSCRIPTION.c.url).where(SUBSCRIPTION.c.app_id == app_id))
    return list(rows.scalars())


async def insert_subscription(
    conn: AsyncConnection, *, app_id: int, url: str, secret: str, created_at: datetime
) -> int:
    """Store an active subscription; its id."""
    subscription_id = (
        await conn.execute(
            insert(SUBSCRIPTION)
            .values(app_id=app_id, url=url, secret=secret, active=True, created_at=created_at)
            .returning(SUBSCRIPTION.c.id)
        )
    ).scalar_one()
    return int(subscription_id)


async def subscriptions(conn: AsyncConnection, app_id: int) -> list[StoredSubscription]:
    """The app's subscriptions, oldest first."""
    rows = await conn.execute(
        select(
            SUBSCRIPTION.c.id,
            SUBSCRIPTION.c.url,
            SUBSCRIPTION.c.active,
            SUBSCRIPTION.c.created_at,
            SUBSCRIPTION.c.kind,
            SUBSCRIPTION.c.events,
            SUBSCRIPTION.c.filter_jurisdiction_id,
            SUBSCRIPTION.c.service_codes,
            SUBSCRIPTION.c.wards,
            SUBSCRIPTION.c.bbox,
        )
        .where(SUBSCRIPTION.c.app_id == app_id)
        .order_by(SUBSCRIPTION.c.id)
    )
    return [
        StoredSubscription(
            r.id,
            r.url,
            bool(r.active),
            r.created_at,
            r.kind,
            r.events,
            r.filter_jurisdiction_id,
            r.service_codes,
            r.wards,
            r.bbox,
        )
        for r in rows
    ]


async def delete_subscription(conn: AsyncConnection, *, app_id: int, subscription_id: int) -> bool:
    """Delete one of the app's subscriptions (its deliveries go with it); False: none such."""
    result = await conn.execute(
        delete(SUBSCRIPTION).where(
            SUBSCRIPTION.c.id == subscription_id, SUBSCRIPTION.c.app_id == app_id
        )
    )
    return bool(result.rowcount)


async def active_subscription_ids(conn: AsyncConnection, app_id: int) -> list[int]:
    """The ids of the app's active subscriptions to updates of its own requests, in order
    (feed subscriptions get theirs from ``app.store.subscriptions``)."""
    rows = await conn.execute(
        select(SUBSCRIPTION.c.id)
        .where(
            SUBSCRIPTION.c.app_id == app_id,
            SUBSCRIPTION.c.active.is_(True),
            SUBSCRIPTION.c.kind == "own",
        )
        .order_by(SUBSCRIPTION.c.id)
    )
    return list(rows.scalars())


# ---------------------------------------------------------------------------------------
# Deliveries


async def insert_deliveries(
    conn: AsyncConnection,
    subscription_ids: Sequence[int],
    *,
    update_pk: int,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue one pending delivery of ``payload`` (JSON) per subscription, due at ``now``."""
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
                "event": payload.get("event"),
            }
            for subscription_id in subscription_ids
        ],
    )


async def lock_due(
    conn: AsyncConnection,
    clock: datetime,
    *,
    per_app: int,
    limit: int,
    skip_apps: Collection[int] = (),
) -> list[DueDelivery]:
    """Lock and read the deliveries due at ``clock``, oldest first: at most ``per_app`` of each
    app (so one app's backlog never fills the batch), at most ``limit`` in all, none of the
    apps in ``skip_apps``. Rows another transaction holds are skipped (PostgreSQL)."""
    # A window function cannot sit next to FOR UPDATE: the candidates are chosen first,
    # then locked (SKIP LOCKED) and re-checked.
    rank = (
        func.row_number()
        .over(
            partition_by=SUBSCRIPTION.c.app_id,
            order_by=(DELIVERY.c.next_attempt_at, DELIVERY.c.id),
        )
        .label("rank")
    )
    # A feed subscription's deliveries go in order: one waits while an earlier one of its
    # subscription is pending (in flight, or waiting for its retry). Those of an app's own
    # requests' updates ("own") go in parallel, up to the app's slots.
    earlier = DELIVERY.alias("earlier")
    first_pending = or_(
        SUBSCRIPTION.c.kind != "feed",
        ~(
            select(earlier.c.id)
            .where(
                earlier.c.subscription_id == DELIVERY.c.subscription_id,
                earlier.c.state == "pending",
                earlier.c.id < DELIVERY.c.id,
            )
            .exists()
        ),
    )
    due = (
        select(DELIVERY.c.id, DELIVERY.c.next_attempt_at, rank)
        .join(SUBSCRIPTION, SUBSCRIPTION.c.id == DELIVERY.c.subscription_id)
        .where(DELIVERY.c.state == "pending", DELIVERY.c.next_attempt_at <= clock, first_pending)
    )
    if skip_apps:
        due = due.where(SUBSCRIPTION.c.app_id.not_in(list(skip_apps)))
    ranked = due.subquery()
    candidates = (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_app)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    rows = (
        await conn.execute(
            select(
                DELIVERY.c.id,
                DELIVERY.c.attempts,
                DELIVERY.c.payload,
                SUBSCRIPTION.c.url,
                SUBSCRIPTION.c.secret,
                SUBSCRIPTION.c.active,
                SUBSCRIPTION.c.app_id,
                DELIVERY.c.subscription_id,
                SUBSCRIPTION.c.kind,
            )
            .join(SUBSCRIPTION, SUBSCRIPTION.c.id == DELIVERY.c.subscription_id)
            .where(
                DELIVERY.c.id.in_(candidates),
                DELIVERY.c.state == "pending",
                DELIVERY.c.next_attempt_at <= clock,
            )
            .order_by(DELIVERY.c.next_attempt_at, DELIVERY.c.id)
            # PostgreSQL: FOR UPDATE OF webhook_delivery SKIP LOCKED; nothing on SQLite.
            .with_for_update(skip_locked=True, of=DELIVERY)
        )
    ).all()
    return [
        DueDelivery(
            id=int(row.id),
            attempts=int(row.attempts),
            payload=row.payload,
            url=row.url,
            secret=row.secret,
            active=bool(row.active),
            app_id=int(row.app_id),
            subscription_id=int(row.subscription_id),
            kind=row.kind,
        )
        for row in rows
    ]


async def lock_next(
    conn: AsyncConnection, subscription_id: int, after: int, limit: int
) -> list[NextDelivery]:
    """Lock and read the pending deliveries of a subscription after delivery ``after``, in
    order, at most ``limit``: those a feed subscription sends behind the one claimed. (They
    are nobody else's to claim: a feed's delivery waits while an earlier one is pending.)"""
    rows = (
        await conn.execute(
            select(DELIVERY.c.id, DELIVERY.c.attempts, DELIVERY.c.payload)
            .where(
                DELIVERY.c.subscription_id == subscription_id,
                DELIVERY.c.state == "pending",
                DELIVERY.c.id > after,
            )
            .order_by(DELIVERY.c.id)
            .limit(limit)
            .with_for_update(of=DELIVERY)
        )
    ).all()
    return [NextDelivery(int(r.id), int(r.attempts), r.payload) for r in rows]


async def give_back(
    conn: AsyncConnection, deliveries: Sequence[tuple[int, int]], at: datetime
) -> None:
    """Un-claim deliveries (id, the attempt they were claimed for) that were not sent: the
    attempt uncounted, due at ``at`` (fenced on the attempt, like ``record_attempt``)."""
    for delivery_id, attempt in deliveries:
        await conn.execute(
            update(DELIVERY)
            .where(
                DELIVERY.c.id == delivery_id,
                DELIVERY.c.state == "pending",
                DELIVERY.c.attempts == attempt,
            )
            .values(attempts=attempt - 1, next_attempt_at=at)
        )


async def fail_delivery(conn: AsyncConnection, delivery_id: int, reason: str) -> None:
    """Give a delivery up: ``failed`` with ``reason`` as its last error."""
    await conn.execute(
        update(DELIVERY)
        .where(DELIVERY.c.id == delivery_id)
        .values(state="failed", last_error=reason)
    )


async def lease(conn: AsyncConnection, delivery_ids: Sequence[int], until: datetime) -> None:
    """Count one more attempt of each delivery and reserve it until ``until``."""
    await conn.execute(
        update(DELIVERY)
        .where(DELIVERY.c.id.in_(list(delivery_ids)))
        .values(attempts=DELIVERY.c.attempts + 1, next_attempt_at=until)
    )


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: int,
    attempt: int,
    *,
    last_status: int | None,
    last_error: str | None,
    state: str | None = None,
    delivered_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record the outcome of attempt ``attempt`` of a pending delivery (None: unchanged);
    False when that attempt was superseded (the delivery moved on or is no longer pending)."""
    values: dict[str, Any] = {"last_status": last_status, "last_error": last_error}
    if state is not None:
        values["state"] = state
    if delivered_at is not None:
        values["delivered_at"] = delivered_at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = await conn.execute(
        update(DELIVERY)
        .where(
            DELIVERY.c.id == delivery_id,
            DELIVERY.c.state == "pending",
            DELIVERY.c.attempts == attempt,
        )
        .values(**values)
    )
    return bool(result.rowcount)
