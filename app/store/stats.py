"""Aggregates: the public map page's counts (``app.web.stats``) and the scrape-time gauges of
``/metrics`` (``app.observability``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.store.tables import (
    Area,
    Jurisdiction,
    ServiceRequest,
    ServiceType,
    Submission,
    WebhookDelivery,
)

REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
AREA = Area.__table__
JURISDICTION = Jurisdiction.__table__
SUBMISSION = Submission.__table__
DELIVERY = WebhookDelivery.__table__


@dataclass(frozen=True, slots=True)
class ServiceCount:
    """Matching requests of one service."""

    service_code: str
    service_name: str
    count: int


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Matching requests per ward id (None: without a ward) and per service."""

    by_ward_id: dict[int | None, int]
    by_service: list[ServiceCount]


@dataclass(frozen=True, slots=True)
class OpenCount:
    """Open public requests of a jurisdiction in one ward (None: outside every ward)."""

    jurisdiction: str
    ward: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Gauges:
    """The database gauges of one scrape."""

    queued_submissions: int
    pending_deliveries: int
    failed_deliveries: int
    open_by_ward: list[OpenCount]


async def requested_range(
    conn: AsyncConnection, jurisdiction_pk: int
) -> tuple[datetime | None, datetime | None]:
    """The first and last requested_datetime of the jurisdiction's public requests."""
    first, last = (
        await conn.execute(
            select(func.min(REQUEST.c.requested_at), func.max(REQUEST.c.requested_at)).where(
                REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.sandbox.is_(False)
            )
        )
    ).one()
    return first, last


async def window_counts(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    *,
    start: datetime,
    end: datetime,
    statuses: Sequence[str] | None,
    service_codes: Sequence[str] | None,
) -> WindowCounts:
    """Counts of the public requests of ``[start, end]`` (of these statuses and service codes
    when given) per ward and per service."""
    conditions: list[Any] = [
        REQUEST.c.jurisdiction_id == jurisdiction_pk,
        REQUEST.c.sandbox.is_(False),
        REQUEST.c.requested_at >= start,
        REQUEST.c.requested_at <= end,
    ]
    if statuses is not None:
        conditions.append(REQUEST.c.status.in_(statuses))
    if service_codes is not None:
        conditions.append(SERVICE.c.service_code.in_(service_codes))
    by_ward_id: dict[int | None, int] = {
        ward_id: int(n)
        for ward_id, n in await conn.execute(
            select(REQUEST.c.ward_id, func.count())
            .join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
            .where(*conditions)
            .group_by(REQUEST.c.ward_id)
        )
    }
    by_service = [
        ServiceCount(code, name, int(n))
        for code, name, n in await conn.execute(
            select(SERVICE.c.service_code, SERVICE.c.service_name, func.count())
            .select_from(REQUEST)
            .join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
            .where(*conditions)
            .group_by(SERVICE.c.service_code, SERVICE.c.service_name)
        )
    ]
    return WindowCounts(by_ward_id, by_service)


async def read_gauges(engine: AsyncEngine) -> Gauges:
    """Queue depths, failed deliveries and open public requests per jurisdiction and ward."""

    def count(table: Any, state: str) -> Any:
        return (
            select(func.count()).select_from(table).where(table.c.state == state)
        ).scalar_subquery()

    async with engine.connect() as conn:
        queued, pending, failed = (
            await conn.execute(
                select(
                    count(SUBMISSION, "queued"),
                    count(DELIVERY, "pending"),
                    count(DELIVERY, "failed"),
                )
            )
        ).one()
        rows = (
            await conn.execute(
                select(JURISDICTION.c.code, AREA.c.code, func.count())
                .select_from(REQUEST)
                .join(JURISDICTION, JURISDICTION.c.id == REQUEST.c.jurisdiction_id)
                .outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id)
                .where(REQUEST.c.status == "open", REQUEST.c.sandbox.is_(False))
                .group_by(JURISDICTION.c.code, AREA.c.code)
                .order_by(JURISDICTION.c.code, AREA.c.code)
            )
        ).all()
    return Gauges(
        queued_submissions=int(queued),
        pending_deliveries=int(pending),
        failed_deliveries=int(failed),
        open_by_ward=[OpenCount(j, w, int(n)) for j, w, n in rows],
    )
