"""Captured requests (the demo's real Toronto requests) in the database, kept with their ids.

``app.demo.loader`` decides what to insert and which dates to give; this module writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.geo.points import point_expression
from app.store.tables import ServiceRequest

REQUEST = ServiceRequest.__table__
# Ids per lookup statement (bound parameters stay well under every backend's limit).
LOOKUP_STEP = 500


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """A captured request to insert under its original id."""

    id: int
    jurisdiction_id: int
    service_type_id: int
    status: str
    status_notes: str | None
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    lon: float | None
    media_url: str | None
    created_at: datetime
    channel: str | None = None
    first_contact_resolved: bool = False


@dataclass(frozen=True, slots=True)
class StoredDates:
    """A stored request's owner and dates."""

    id: int
    jurisdiction_pk: int
    requested_at: datetime
    updated_at: datetime


async def stored_dates(conn: AsyncConnection, ids: Sequence[int]) -> list[StoredDates]:
    """The stored requests among ``ids`` (of any jurisdiction), with their dates."""
    found: list[StoredDates] = []
    for start in range(0, len(ids), LOOKUP_STEP):
        chunk = ids[start : start + LOOKUP_STEP]
        rows = await conn.execute(
            select(
                REQUEST.c.id,
                REQUEST.c.jurisdiction_id,
                REQUEST.c.requested_at,
                REQUEST.c.updated_at,
            ).where(REQUEST.c.id.in_(chunk))
        )
        found.extend(StoredDates(*row) for row in rows)
    return found


async def set_dates(
    conn: AsyncConnection,
    pk: int,
    *,
    requested_at: datetime | None,
    updated_at: datetime | None,
    expected_at: datetime | None,
) -> None:
    """Give a stored request new dates."""
    await conn.execute(
        update(REQUEST)
        .where(REQUEST.c.id == pk)
        .values(requested_at=requested_at, updated_at=updated_at, expected_at=expected_at)
    )


async def fill_channels(conn: AsyncConnection, channels: dict[int, str]) -> None:
    """Give stored requests a channel where they have none (loaded before channels were)."""
    for channel in sorted(set(channels.values())):
        ids = [pk for pk, value in channels.items() if value == channel]
        for start in range(0, len(ids), LOOKUP_STEP):
            await conn.execute(
                update(REQUEST)
                .where(REQUEST.c.id.in_(ids[start : start + LOOKUP_STEP]))
                .where(REQUEST.c.channel.is_(None))
                .values(channel=channel)
            )


async def mark_first_contact(conn: AsyncConnection, channels: dict[int, str]) -> int:
    """Record stored closed requests as resolved at first contact, through these channels,
    where they are not yet (loaded before first contact was); how many changed."""
    changed = 0
    for channel in sorted(set(channels.values())):
        ids = [pk for pk, value in channels.items() if value == channel]
        for start in range(0, len(ids), LOOKUP_STEP):
            result = await conn.execute(
                update(REQUEST)
                .where(REQUEST.c.id.in_(ids[start : start + LOOKUP_STEP]))
                .where(REQUEST.c.status == "closed")
                .where(REQUEST.c.first_contact_resolved.is_(False))
                .values(first_contact_resolved=True, channel=channel)
            )
            changed += result.rowcount
    return changed


async def insert_captured(
    conn: AsyncConnection, jurisdiction_pk: int, requests: Sequence[CapturedRequest]
) -> None:
    """Insert requests of a jurisdiction under their own ids; PostGIS also gets their points,
    and its id sequence is moved past them so new ids stay clear of the imported ones."""
    if not requests:
        return
    await conn.execute(insert(REQUEST), [asdict(r) for r in requests])
    if conn.dialect.name != "postgresql":
        return
    # One set-based statement gives every imported request its PostGIS point.
    await conn.execute(
        update(REQUEST)
        .where(
            REQUEST.c.location.is_(None),
            REQUEST.c.lat.is_not(None),
            REQUEST.c.jurisdiction_id == jurisdiction_pk,
        )
        .values(location=point_expression(REQUEST.c.lat, REQUEST.c.lon))
    )
    await conn.execute(
        select(
            func.setval(
                func.pg_get_serial_sequence("service_request", "id"),
                func.greatest(select(func.max(REQUEST.c.id)).scalar_subquery(), 1),
            )
        )
    )
