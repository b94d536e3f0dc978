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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import (
    Area,
    Division,
    Jurisdiction,
    ReportDay,
    ReportPending,
    ReportRefresh,
    RequestUpdate,
    ServiceRequest,
    ServiceType,
)

AREA = Area.__table__
DAY = ReportDay.__table__
DIVISION = Division.__table__
PENDING = ReportPending.__table__
JURISDICTION = Jurisdiction.__table__
REFRESH = ReportRefresh.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
UPDATE = RequestUpdate.__table__

# Requests read per statement while a refresh reads a range of days (a page small enough that
# reading it never holds the event loop, or a transaction, for long).
FETCH_ROWS = 500


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


# --- refresh ---------------------------------------------------------------------------------
#
# A refresh pass recomputes ranges of local days (``report_pending``) a piece at a time. Every
# write below is a short statement of its own write transaction: the pass's reads (the
# requests) run outside any write transaction, and a piece's write checks that its writer still
# holds the lease and that the pass it belongs to is still the one in progress.


@dataclass(frozen=True, slots=True)
class RefreshState:
    """A jurisdiction's ``report_refresh`` row."""

    refreshed_at: datetime | None
    pass_started: datetime | None
    lease_owner: str | None
    lease_at: datetime | None


@dataclass(frozen=True, slots=True)
class PendingRange:
    """Local days [first, last] still to recompute."""

    first: date
    last: date


async def ensure_refresh(conn: AsyncConnection, jurisdiction_pk: int) -> None:
    """The jurisdiction's ``report_refresh`` row, created (never built) if missing."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(REFRESH).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        statement = lite_insert(REFRESH).on_conflict_do_nothing()
    await conn.execute(statement.values(jurisdiction_id=jurisdiction_pk, refreshed_at=None))


async def refresh_state(conn: AsyncConnection, jurisdiction_pk: int) -> RefreshState | None:
    """The jurisdiction's refresh row (None: never reported on)."""
    row = (
        await conn.execute(
            select(
                REFRESH.c.refreshed_at,
                REFRESH.c.pass_started,
                REFRESH.c.lease_owner,
                REFRESH.c.lease_at,
            ).where(REFRESH.c.jurisdiction_id == jurisdiction_pk)
        )
    ).first()
    if row is None:
        return None
    return RefreshState(row[0], row[1], row[2], row[3])


async def claim_lease(
    conn: AsyncConnection, jurisdiction_pk: int, owner: str, now: datetime, stale: datetime
) -> bool:
    """Take the jurisdiction's refresh lease for ``owner`` if it is free (no owner, or one
    that has not written since ``stale``); one conditional UPDATE, so two callers never both
    get it."""
    result = await conn.execute(
        update(REFRESH)
        .where(
            REFRESH.c.jurisdiction_id == jurisdiction_pk,
            or_(
                REFRESH.c.lease_owner.is_(None),
                REFRESH.c.lease_owner == owner,
                REFRESH.c.lease_at < stale,
            ),
        )
        .values(lease_owner=owner, lease_at=now)
    )
    return bool(result.rowcount)


async def release_lease(conn: AsyncConnection, jurisdiction_pk: int, owner: str) -> None:
    """Give the lease back (if ``owner`` still holds it)."""
    await conn.execute(
        update(REFRESH)
        .where(REFRESH.c.jurisdiction_id == jurisdiction_pk, REFRESH.c.lease_owner == owner)
        .values(lease_owner=None, lease_at=None)
    )


async def _holds(
    conn: AsyncConnection, jurisdiction_pk: int, owner: str, now: datetime, started: datetime
) -> bool:
    """Renew ``owner``'s lease, if it still holds it and the pass begun at ``started`` is
    still the one in progress (an invalidation ends it)."""
    result = await conn.execute(
        update(REFRESH)
        .where(
            REFRESH.c.jurisdiction_id == jurisdiction_pk,
            REFRESH.c.lease_owner == owner,
            REFRESH.c.pass_started == started,
        )
        .values(lease_at=now)
    )
    return bool(result.rowcount)


async def start_pass(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    owner: str,
    started: datetime,
    ranges: Sequence[PendingRange],
) -> bool:
    """Begin a pass that recomputes ``ranges`` (none: the rollups are up to date with every
    change made before ``started`` at once); False when ``owner`` lost the lease."""
    claimed = await conn.execute(
        update(REFRESH)
        .where(REFRESH.c.jurisdiction_id == jurisdiction_pk, REFRESH.c.lease_owner == owner)
        .values(
            pass_started=started if ranges else None,
            refreshed_at=REFRESH.c.refreshed_at if ranges else started,
            lease_at=started,
        )
    )
    if not claimed.rowcount:
        return False
    await conn.execute(delete(PENDING).where(PENDING.c.jurisdiction_id == jurisdiction_pk))
    if ranges:
        await conn.execute(
            insert(PENDING),
            [
                {"jurisdiction_id": jurisdiction_pk, "first_day": r.first, "last_day": r.last}
                for r in ranges
            ],
        )
    return True


async def next_pending(conn: AsyncConnection, jurisdiction_pk: int) -> PendingRange | None:
    """The earliest range the pass in progress has still to recompute."""
    row = (
        await conn.execute(
            select(PENDING.c.first_day, PENDING.c.last_day)
            .where(PENDING.c.jurisdiction_id == jurisdiction_pk)
            .order_by(PENDING.c.first_day)
            .limit(1)
        )
    ).first()
    return None if row is None else PendingRange(row[0], row[1])


async def write_piece(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    owner: str,
    started: datetime,
    now: datetime,
    pending: PendingRange,
    last: date,
    rows: Sequence[DayRow],
) -> bool:
    """Replace the rollups of the local days [pending.first, last] (the first piece of
    ``pending``) and take them off the pass's ranges; False (nothing written) when ``owner``
    lost the lease or the pass ended."""
    if not await _holds(conn, jurisdiction_pk, owner, now, started):
        return False
    await replace_days(conn, jurisdiction_pk, pending.first, last, rows)
    this = and_(PENDING.c.jurisdiction_id == jurisdiction_pk, PENDING.c.first_day == pending.first)
    if last >= pending.last:
        await conn.execute(delete(PENDING).where(this))
    else:
        await conn.execute(update(PENDING).where(this).values(first_day=last + timedelta(days=1)))
    return True


async def finish_pass(
    conn: AsyncConnection, jurisdiction_pk: int, owner: str, started: datetime
) -> bool:
    """End the pass begun at ``started``: the rollups are up to date with every change made
    before then. False when ``owner`` lost the lease or the pass ended."""
    result = await conn.execute(
        update(REFRESH)
        .where(
            REFRESH.c.jurisdiction_id == jurisdiction_pk,
            REFRESH.c.lease_owner == owner,
            REFRESH.c.pass_started == started,
        )
        .values(refreshed_at=started, pass_started=None)
    )
    return bool(result.rowcount)


async def invalidate(conn: AsyncConnection, jurisdiction_pk: int) -> None:
    """Forget the rollups' refresh time and end the pass in progress: the next refresh
    rebuilds them all (after a change that moves no ``updated_at``: a demo load, a ward
    reassignment)."""
    await conn.execute(
        update(REFRESH)
        .where(REFRESH.c.jurisdiction_id == jurisdiction_pk)
        .values(refreshed_at=None, pass_started=None)
    )
    await conn.execute(delete(PENDING).where(PENDING.c.jurisdiction_id == jurisdiction_pk))


async def reported_jurisdictions(conn: AsyncConnection) -> list[tuple[int, str]]:
    """(pk, time zone) of every jurisdiction reported on at least once (its rollups built, being
    built or to rebuild)."""
    rows = await conn.execute(
        select(JURISDICTION.c.id, JURISDICTION.c.timezone)
        .join(REFRESH, REFRESH.c.jurisdiction_id == JURISDICTION.c.id)
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


async def rollup_bounds(
    conn: AsyncConnection, jurisdiction_pk: int
) -> tuple[date | None, date | None]:
    """The first and last day of the jurisdiction's rollups (a rebuild recomputes those too,
    so rollups of days that no longer have requests go)."""
    row = (
        await conn.execute(
            select(func.min(DAY.c.day), func.max(DAY.c.day)).where(
                DAY.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).one()
    first, last = row[0], row[1]
    if isinstance(first, str):  # SQLite: min() loses the column type
        first = date.fromisoformat(first)
    if isinstance(last, str):
        last = date.fromisoformat(last)
    return first, last


async def nth_requested_at(
    conn: AsyncConnection, jurisdiction_pk: int, start: datetime, n: int
) -> datetime | None:
    """The requested_at of the ``n``-th request (from 0; sandbox ones too) made at or after
    ``start``, None when fewer (index on jurisdiction, requested_at): where a piece of at most
    ``n`` requests ends."""
    return (
        await conn.execute(
            select(REQUEST.c.requested_at)
            .where(REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.requested_at >= start)
            .order_by(REQUEST.c.requested_at)
            .offset(n)
            .limit(1)
        )
    ).scalar()


async def changed_hours(
    conn: AsyncConnection, jurisdiction_pk: int, since: datetime
) -> list[datetime]:
    """The UTC hours (their starts) in which the requests changed at or after ``since`` were
    made (sandbox ones too: cheap, harmless): one statement over the index on jurisdiction,
    updated_at, whose answer is at most 24 rows a day however many requests changed."""
    if conn.dialect.name == "postgresql":
        hour: Any = func.date_trunc("hour", func.timezone("UTC", REQUEST.c.requested_at))
    else:  # stored as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"
        hour = func.substr(REQUEST.c.requested_at, 1, 13)
    rows = await conn.execute(
        select(hour)
        .where(REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.updated_at >= since)
        .distinct()
    )
    hours = []
    for (value,) in rows:
        if isinstance(value, str):
            value = datetime.strptime(value, "%Y-%m-%d %H")
        hours.append(value.replace(tzinfo=UTC))
    return hours


def _after(column: Any, at: datetime, pk: int) -> ColumnElement[bool]:
    """Keyset paging: rows after (``at``, ``pk``) in (column, id) order."""
    return tuple_(column, REQUEST.c.id) > tuple_(literal(at, column.type), literal(pk))


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
    """The facts of the public requests made in [start, end), a page of ``FETCH_ROWS`` per
    statement (index on jurisdiction, requested_at, id): however many requests a day has, no
    statement reads more, and none needs a transaction."""
    after: tuple[datetime, int] | None = None
    while True:
        query = select(
            REQUEST.c.requested_at,
            REQUEST.c.status,
            REQUEST.c.expected_at,
            _closed_at(),
            REQUEST.c.channel,
            REQUEST.c.first_contact_resolved,
            REQUEST.c.service_type_id,
            REQUEST.c.ward_id,
            REQUEST.c.id,
        ).where(
            *_public(jurisdiction_pk),
            REQUEST.c.requested_at >= start,
            REQUEST.c.requested_at < end,
        )
        if after is not None:
            query = query.where(_after(REQUEST.c.requested_at, *after))
        rows = (
            await conn.execute(
                query.order_by(REQUEST.c.requested_at, REQUEST.c.id).limit(FETCH_ROWS)
            )
        ).all()
        for row in rows:
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
        if len(rows) < FETCH_ROWS:
            return
        after = (rows[-1][0], int(rows[-1][8]))


# The rollups of a range of days aggregated by PostgreSQL itself (``aggregate_days``): the same
# counts and buckets as ``app.domain.reports.Tally`` (bucket: 0 under a minute, else
# 1 + floor(ln(s / 60) / ln(base)), at most ``last``), so a large day costs the server's
# process a few hundred rows, not a row per request.
_AGGREGATE = text(
    """
WITH f AS (
    SELECT (r.requested_at AT TIME ZONE :zone)::date AS day,
           r.service_type_id, r.ward_id, r.channel, r.expected_at, r.first_contact_resolved,
           r.requested_at,
           CASE WHEN r.status = 'closed' THEN coalesce(
               (SELECT max(u.updated_at) FROM request_update u
                WHERE u.service_request_id = r.id AND u.status = 'closed'),
               r.updated_at) END AS closed_at
    FROM service_request r
    WHERE r.jurisdiction_id = :pk AND r.sandbox IS FALSE
      AND r.requested_at >= :start AND r.requested_at < :end
), k AS (
    SELECT f.*, d.dimension, d.key,
           CASE WHEN f.closed_at IS NULL THEN NULL
                WHEN extract(epoch FROM f.closed_at - f.requested_at)::float8 < 60 THEN 0
                ELSE least(:last, 1 + floor(
                    ln(extract(epoch FROM f.closed_at - f.requested_at)::float8 / 60)
                    / ln(:base))::int) END AS bucket
    FROM f CROSS JOIN LATERAL (VALUES
        ('all', ''),
        ('service', f.service_type_id::text),
        ('ward', coalesce(f.ward_id::text, '')),
        ('channel', coalesce(f.channel, ''))
    ) AS d(dimension, key)
), b AS (
    SELECT day, dimension, key, bucket, count(*) AS n
    FROM k WHERE bucket IS NOT NULL GROUP BY day, dimension, key, bucket
), bj AS (
    SELECT day, dimension, key, jsonb_object_agg(bucket::text, n) AS buckets
    FROM b GROUP BY day, dimension, key
)
SELECT c.day, c.dimension, c.key, c.received, c.closed, c.with_target, c.met, c.late,
       c.first_contact, bj.buckets
FROM (
    SELECT day, dimension, key,
           count(*) AS received,
           count(closed_at) AS closed,
           count(expected_at) AS with_target,
           count(*) FILTER (WHERE closed_at <= expected_at) AS met,
           count(*) FILTER (WHERE closed_at > expected_at) AS late,
           count(*) FILTER (WHERE first_contact_resolved) AS first_contact
    FROM k GROUP BY day, dimension, key
) AS c
LEFT JOIN bj ON bj.day = c.day AND bj.dimension = c.dimension AND bj.key = c.key
ORDER BY c.day, c.dimension, c.key
"""
)


def _ordered(buckets: dict[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(buckets.items(), key=lambda kv: int(kv[0]))}


async def aggregate_days(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    zone: str,
    start: datetime,
    end: datetime,
    *,
    bucket_base: float,
    last_bucket: int,
) -> list[DayRow] | None:
    """The rollup rows of the public requests made in [start, end), by local day of ``zone``,
    aggregated in one statement by PostgreSQL; None on SQLite (the caller tallies the
    requests itself)."""
    if conn.dialect.name != "postgresql":
        return None
    rows = await conn.execute(
        _AGGREGATE,
        {
            "zone": zone,
            "pk": jurisdiction_pk,
            "start": start,
            "end": end,
            "base": bucket_base,
            "last": last_bucket,
        },
    )
    return [
        DayRow(
            day=r.day,
            dimension=r.dimension,
            key=r.key,
            received=int(r.received),
            closed=int(r.closed),
            with_target=int(r.with_target),
            met=int(r.met),
            late=int(r.late),
            first_contact=int(r.first_contact),
            close_buckets={
                str(k): int(v)
                for k, v in sorted((r.buckets or {}).items(), key=lambda kv: int(kv[0]))
            },
        )
        for r in rows
    ]


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
