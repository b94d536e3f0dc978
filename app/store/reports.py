"""The statements behind the service-promise reports (``app.domain.reports``).

The reports read the daily rollups (``report_day``); a refresh recomputes the rollups of the
local days whose requests changed since the last one, from the requests themselves. The
direct computation (``direct_facts``, ``close_percentiles``) reads the requests of a period:
the reference the rollups are tested against (PostgreSQL: ``percentile_cont``; SQLite: the
durations sorted in the store, bounded by the caller's row limit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import (
    Area,
    Division,
    Jurisdiction,
    ReportDay,
    ReportRefresh,
    RequestUpdate,
    ServiceRequest,
    ServiceType,
)

AREA = Area.__table__
DAY = ReportDay.__table__
DIVISION = Division.__table__
JURISDICTION = Jurisdiction.__table__
REFRESH = ReportRefresh.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
UPDATE = RequestUpdate.__table__

# Requests read per round trip while a refresh streams a range of days.
FETCH_ROWS = 5000


@dataclass(frozen=True, slots=True)
class RequestFact:
    """What the rollups count of one request."""

    requested_at: datetime
    status: str
    expected_at: datetime | None
    closed_at: datetime | None  # the last update that closed it, else its updated_at
    channel: str | None
    first_contact_resolved: bool
    service_type_id: int
    ward_id: int | None


@dataclass(frozen=True, slots=True)
class DayRow:
    """One ``report_day`` row."""

    day: date
    dimension: str
    key: str
    received: int
    closed: int
    with_target: int
    met: int
    late: int
    first_contact: int
    close_buckets: dict[str, int]


@dataclass(frozen=True, slots=True)
class ServiceLabel:
    """A service type as the reports name it, with its division (if any)."""

    id: int
    code: str
    name: str
    division_code: str | None
    division_name: str | None


def _public(jurisdiction_pk: int) -> list[ColumnElement[bool]]:
    return [REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.sandbox.is_(False)]


# --- refresh ----------------------------------------------------------------------------------


async def lock_refresh(conn: AsyncConnection, jurisdiction_pk: int) -> tuple[bool, datetime | None]:
    """Take the jurisdiction's refresh lock for this transaction (its ``report_refresh`` row,
    FOR UPDATE on PostgreSQL; SQLite's write transaction holds the lock already):
    (whether rollups were ever built, when the last refresh started)."""
    found = (
        await conn.execute(
            select(REFRESH.c.refreshed_at)
            .where(REFRESH.c.jurisdiction_id == jurisdiction_pk)
            .with_for_update()
        )
    ).first()
    if found is not None:
        return True, found[0]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await conn.execute(
            pg_insert(REFRESH)
            .values(jurisdiction_id=jurisdiction_pk, refreshed_at=None)
            .on_conflict_do_nothing()
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        await conn.execute(
            lite_insert(REFRESH)
            .values(jurisdiction_id=jurisdiction_pk, refreshed_at=None)
            .on_conflict_do_nothing()
        )
    again = (
        await conn.execute(
            select(REFRESH.c.refreshed_at)
            .where(REFRESH.c.jurisdiction_id == jurisdiction_pk)
            .with_for_update()
        )
    ).one()
    return again[0] is not None, again[0]


async def set_refreshed(conn: AsyncConnection, jurisdiction_pk: int, at: datetime) -> None:
    """Record that the rollups are up to date with every change made before ``at``."""
    await conn.execute(
        update(REFRESH).where(REFRESH.c.jurisdiction_id == jurisdiction_pk).values(refreshed_at=at)
    )


async def invalidate(conn: AsyncConnection, jurisdiction_pk: int) -> None:
    """Forget the rollups' refresh time: the next refresh rebuilds them all (after a change
    that moves no ``updated_at``: a demo load, a ward reassignment)."""
    await conn.execute(
        update(REFRESH)
        .where(REFRESH.c.jurisdiction_id == jurisdiction_pk)
        .values(refreshed_at=None)
    )


async def built_jurisdictions(conn: AsyncConnection) -> list[tuple[int, str]]:
    """(pk, time zone) of every jurisdiction whose rollups have been built."""
    rows = await conn.execute(
        select(JURISDICTION.c.id, JURISDICTION.c.timezone)
        .join(REFRESH, REFRESH.c.jurisdiction_id == JURISDICTION.c.id)
        .where(REFRESH.c.refreshed_at.is_not(None))
        .order_by(JURISDICTION.c.id)
    )
    return [(int(r[0]), str(r[1])) for r in rows]


async def requested_bounds(
    conn: AsyncConnection, jurisdiction_pk: int
) -> tuple[datetime | None, datetime | None]:
    """The first and last requested_at of the jurisdiction's public requests."""
    row = (
        await conn.execute(
            select(func.min(REQUEST.c.requested_at), func.max(REQUEST.c.requested_at)).where(
                *_public(jurisdiction_pk)
            )
        )
    ).one()
    return row[0], row[1]


async def changed_since(
    conn: AsyncConnection, jurisdiction_pk: int, since: datetime
) -> AsyncIterator[datetime]:
    """The requested_at of every request (sandbox ones too: cheap, harmless) changed at or
    after ``since`` (index on jurisdiction, updated_at)."""
    result = await conn.stream(
        select(REQUEST.c.requested_at).where(
            REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.updated_at >= since
        )
    )
    async for partition in result.partitions(FETCH_ROWS):
        for row in partition:
            yield row[0]


def _closed_at() -> Any:
    last_close = (
        select(func.max(UPDATE.c.updated_at))
        .where(UPDATE.c.service_request_id == REQUEST.c.id, UPDATE.c.status == "closed")
        .scalar_subquery()
    )
    return func.coalesce(last_close, REQUEST.c.updated_at)


async def request_facts(
    conn: AsyncConnection, jurisdiction_pk: int, start: datetime, end: datetime
) -> AsyncIterator[RequestFact]:
    """The facts of the public requests made in [start, end), streamed."""
    result = await conn.stream(
        select(
            REQUEST.c.requested_at,
            REQUEST.c.status,
            REQUEST.c.expected_at,
            _closed_at(),
            REQUEST.c.channel,
            REQUEST.c.first_contact_resolved,
            REQUEST.c.service_type_id,
            REQUEST.c.ward_id,
        ).where(
            *_public(jurisdiction_pk),
            REQUEST.c.requested_at >= start,
            REQUEST.c.requested_at < end,
        )
    )
    async for partition in result.partitions(FETCH_ROWS):
        for row in partition:
            closed_at = row[3]
            if isinstance(closed_at, str):  # SQLite: coalesce() loses the column type
                closed_at = datetime.fromisoformat(closed_at).replace(tzinfo=UTC)
            yield RequestFact(
                requested_at=row[0],
                status=row[1],
                expected_at=row[2],
                closed_at=closed_at if row[1] == "closed" else None,
                channel=row[4],
                first_contact_resolved=bool(row[5]),
                service_type_id=int(row[6]),
                ward_id=row[7],
            )


async def replace_days(
    conn: AsyncConnection, jurisdiction_pk: int, first: date, last: date, rows: Sequence[DayRow]
) -> None:
    """Replace the rollups of the local days [first, last] with ``rows``."""
    await conn.execute(
        delete(DAY).where(
            DAY.c.jurisdiction_id == jurisdiction_pk, DAY.c.day >= first, DAY.c.day <= last
        )
    )
    if rows:
        await conn.execute(
            insert(DAY),
            [
                {
                    "jurisdiction_id": jurisdiction_pk,
                    "day": r.day,
                    "dimension": r.dimension,
                    "key": r.key,
                    "received": r.received,
                    "closed": r.closed,
                    "with_target": r.with_target,
                    "met": r.met,
                    "late": r.late,
                    "first_contact": r.first_contact,
                    "close_buckets": r.close_buckets or None,
                }
                for r in rows
            ],
        )


async def clear_days(conn: AsyncConnection, jurisdiction_pk: int) -> None:
    """Every rollup of the jurisdiction removed (before a full rebuild)."""
    await conn.execute(delete(DAY).where(DAY.c.jurisdiction_id == jurisdiction_pk))


# --- reads ------------------------------------------------------------------------------------


async def read_days(
    conn: AsyncConnection, jurisdiction_pk: int, dimension: str, first: date, last: date
) -> list[DayRow]:
    """The rollups of one dimension for the local days [first, last]."""
    rows = await conn.execute(
        select(
            DAY.c.day,
            DAY.c.key,
            DAY.c.received,
            DAY.c.closed,
            DAY.c.with_target,
            DAY.c.met,
            DAY.c.late,
            DAY.c.first_contact,
            DAY.c.close_buckets,
        ).where(
            DAY.c.jurisdiction_id == jurisdiction_pk,
            DAY.c.dimension == dimension,
            DAY.c.day >= first,
            DAY.c.day <= last,
        )
    )
    return [
        DayRow(
            day=r.day,
            dimension=dimension,
            key=r.key,
            received=r.received,
            closed=r.closed,
            with_target=r.with_target,
            met=r.met,
            late=r.late,
            first_contact=r.first_contact,
            close_buckets=dict(r.close_buckets or {}),
        )
        for r in rows
    ]


def _key_column(dimension: str) -> Any:
    if dimension == "service":
        return REQUEST.c.service_type_id
    if dimension == "ward":
        return REQUEST.c.ward_id
    if dimension == "channel":
        return REQUEST.c.channel
    return literal("")


async def overdue_counts(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    dimension: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[str, int]:
    """Open public requests made in [start, end) and past their expected datetime at ``now``,
    counted by key of ``dimension`` (``all``, ``service``, ``ward``, ``channel``); index on
    jurisdiction, status, expected_at."""
    key = _key_column(dimension)
    rows = await conn.execute(
        select(key, func.count())
        .where(
            *_public(jurisdiction_pk),
            REQUEST.c.status == "open",
            REQUEST.c.expected_at < now,
            REQUEST.c.requested_at >= start,
            REQUEST.c.requested_at < end,
        )
        .group_by(key)
    )
    return {("" if k is None else str(k)): int(n) for k, n in rows}


async def service_labels(conn: AsyncConnection, jurisdiction_pk: int) -> list[ServiceLabel]:
    """Every service type of the jurisdiction with its division."""
    rows = await conn.execute(
        select(
            SERVICE.c.id,
            SERVICE.c.service_code,
            SERVICE.c.service_name,
            DIVISION.c.code,
            DIVISION.c.name,
        )
        .outerjoin(DIVISION, DIVISION.c.id == SERVICE.c.division_id)
        .where(SERVICE.c.jurisdiction_id == jurisdiction_pk)
    )
    return [ServiceLabel(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


async def ward_labels(conn: AsyncConnection, area_ids: Sequence[int]) -> dict[int, str]:
    """The names of these areas (wards)."""
    if not area_ids:
        return {}
    rows = await conn.execute(
        select(AREA.c.id, AREA.c.name).where(AREA.c.id.in_(sorted(set(area_ids))))
    )
    return {int(r[0]): r[1] for r in rows}


# --- the direct computation (the reference the rollups are tested against) --------------------


@dataclass(frozen=True, slots=True)
class DirectCounts:
    """A period's counts computed from the requests themselves."""

    received: int
    closed: int
    with_target: int
    met: int
    late: int
    first_contact: int
    median_hours: float | None
    p90_hours: float | None


async def direct_counts(
    conn: AsyncConnection, jurisdiction_pk: int, start: datetime, end: datetime, *, limit: int
) -> DirectCounts:
    """Counts and exact time-to-close percentiles (hours) of the public requests made in
    [start, end), from the requests: ``percentile_cont`` on PostgreSQL; on SQLite at most
    ``limit`` durations sorted here (ValueError beyond)."""
    closed_at = _closed_at()
    is_closed = REQUEST.c.status == "closed"
    targeted = REQUEST.c.expected_at.is_not(None)
    where = [
        *_public(jurisdiction_pk),
        REQUEST.c.requested_at >= start,
        REQUEST.c.requested_at < end,
    ]

    counts = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(is_closed),
                func.count().filter(targeted),
                func.count().filter(and_(is_closed, targeted, closed_at <= REQUEST.c.expected_at)),
                func.count().filter(and_(is_closed, targeted, closed_at > REQUEST.c.expected_at)),
                func.count().filter(REQUEST.c.first_contact_resolved.is_(True)),
            ).where(*where)
        )
    ).one()
    median = p90 = None
    if conn.dialect.name == "postgresql":
        seconds = func.extract("epoch", closed_at - REQUEST.c.requested_at)
        row = (
            await conn.execute(
                select(
                    func.percentile_cont(0.5).within_group(seconds),
                    func.percentile_cont(0.9).within_group(seconds),
                ).where(*where, is_closed)
            )
        ).one()
        median = None if row[0] is None else float(row[0]) / 3600
        p90 = None if row[1] is None else float(row[1]) / 3600
    else:
        durations: list[float] = []
        async for fact in request_facts(conn, jurisdiction_pk, start, end):
            if fact.closed_at is not None:
                durations.append((fact.closed_at - fact.requested_at).total_seconds() / 3600)
                if len(durations) > limit:
                    raise ValueError(f"more than {limit} closed requests")
        durations.sort()
        median, p90 = _percentile(durations, 0.5), _percentile(durations, 0.9)
    return DirectCounts(
        received=int(counts[0]),
        closed=int(counts[1]),
        with_target=int(counts[2]),
        met=int(counts[3]),
        late=int(counts[4]),
        first_contact=int(counts[5]),
        median_hours=median,
        p90_hours=p90,
    )


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """``percentile_cont`` of sorted values (linear interpolation between closest ranks)."""
    if not ordered:
        return None
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
