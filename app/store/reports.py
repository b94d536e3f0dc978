"""The statements behind the service-promise reports (``app.domain.reports``).

The reports read the daily rollups (``report_day``); a refresh recomputes the rollups of the
local days whose requests changed since the last one, from the requests themselves. The
direct computation (``direct_facts``, ``close_percentiles``) reads the requests of a period:
the reference the rollups are tested against (PostgreSQL: ``percentile_cont``; SQLite: the
durations sorted in the store, bounded by the caller's row limit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import (
    Area,
    Division,
    Jurisdiction,
    ReportDay,
    ReportMonth,
    ReportPending,
    ReportRefresh,
    RequestUpdate,
    ServiceRequest,
    ServiceType,
)
from app.store.types import JSONValue

AREA = Area.__table__
DAY = ReportDay.__table__
DIVISION = Division.__table__
MONTH = ReportMonth.__table__
PENDING = ReportPending.__table__
JURISDICTION = Jurisdiction.__table__
REFRESH = ReportRefresh.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
UPDATE = RequestUpdate.__table__

# The counts of ``Counts``, and with them those a rollup row sums over days (and months).
_COUNTS = ("received", "closed", "with_target", "met", "late", "first_contact")
_SUMMED = (*_COUNTS, "open_targeted")

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
class Counts:
    """What the rollups count of a set of requests (a rollup row, or rows summed)."""

    received: int
    closed: int
    with_target: int
    met: int
    late: int
    first_contact: int
    close_buckets: dict[str, int]


@dataclass(frozen=True, slots=True)
class RollupRow(Counts):
    """One ``report_day`` row (or ``report_month`` row: ``day`` is the month's first day)."""

    day: date
    dimension: str
    key: str
    open_targeted: int = 0  # still open, with a target
    first_due: datetime | None = None  # the earliest target of those
    last_due: datetime | None = None  # the latest


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


async def write_days(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    owner: str,
    started: datetime,
    now: datetime,
    first: date,
    last: date,
    rows: Sequence[RollupRow],
) -> bool:
    """Replace the rollups of the local days [first, last] (a piece of the pass's first
    range, which stays pending until :func:`write_months`); False (nothing written) when
    ``owner`` lost the lease or the pass ended."""
    if not await _holds(conn, jurisdiction_pk, owner, now, started):
        return False
    await replace_days(conn, jurisdiction_pk, first, last, rows)
    return True


def completed_months(pending: PendingRange, last: date) -> tuple[date, date] | None:
    """The days [first, last] of the calendar months whose days a piece of ``pending`` ending
    at ``last`` completes (its last month only when the range or the month ends with it:
    else the next piece goes on with the month's days), None when it completes none."""
    merged_to = last
    if last < pending.last and (last + timedelta(days=1)).day != 1:
        merged_to = last.replace(day=1) - timedelta(days=1)
    return (pending.first, merged_to) if merged_to >= pending.first else None


async def write_months(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    owner: str,
    started: datetime,
    now: datetime,
    pending: PendingRange,
    last: date,
    months: tuple[date, date] | None,
    rows: Sequence[RollupRow],
) -> bool:
    """Replace the ``report_month`` rows of the calendar months of the days ``months`` with
    ``rows`` (:func:`merged_months`) and take the piece [pending.first, last] off the pass's
    ranges; False (nothing written) when ``owner`` lost the lease or the pass ended."""
    if not await _holds(conn, jurisdiction_pk, owner, now, started):
        return False
    if months is not None:
        start, end = _month_span(*months)
        await conn.execute(
            delete(MONTH).where(
                MONTH.c.jurisdiction_id == jurisdiction_pk,
                MONTH.c.month >= start,
                MONTH.c.month < end,
            )
        )
        if rows:
            await conn.execute(
                insert(MONTH),
                [{"month": r.day, **_rollup_values(jurisdiction_pk, r)} for r in rows],
            )
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
           r.requested_at, r.status,
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
       c.first_contact, bj.buckets, c.open_targeted, c.first_due, c.last_due
FROM (
    SELECT day, dimension, key,
           count(*) AS received,
           count(closed_at) AS closed,
           count(expected_at) AS with_target,
           count(*) FILTER (WHERE closed_at <= expected_at) AS met,
           count(*) FILTER (WHERE closed_at > expected_at) AS late,
           count(*) FILTER (WHERE first_contact_resolved) AS first_contact,
           count(expected_at) FILTER (WHERE status = 'open') AS open_targeted,
           min(expected_at) FILTER (WHERE status = 'open') AS first_due,
           max(expected_at) FILTER (WHERE status = 'open') AS last_due
    FROM k GROUP BY day, dimension, key
) AS c
LEFT JOIN bj ON bj.day = c.day AND bj.dimension = c.dimension AND bj.key = c.key
ORDER BY c.day, c.dimension, c.key
"""
)


def _ordered(buckets: dict[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(buckets.items(), key=lambda kv: int(kv[0]))}


def _rollup_row(row: Any, day: date) -> RollupRow:
    """A rollup row from a statement's row (columns ``dimension``, ``key``, the counts,
    ``buckets``, ``first_due``, ``last_due``) for ``day``."""
    return RollupRow(
        day=day,
        dimension=row.dimension,
        key=row.key,
        **{name: int(getattr(row, name)) for name in _SUMMED},
        close_buckets=_ordered(row.buckets or {}),
        first_due=row.first_due,
        last_due=row.last_due,
    )


async def aggregate_days(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    zone: str,
    start: datetime,
    end: datetime,
    *,
    bucket_base: float,
    last_bucket: int,
) -> list[RollupRow] | None:
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
    return [_rollup_row(r, r.day) for r in rows]


def _rollup_values(jurisdiction_pk: int, row: RollupRow) -> dict[str, Any]:
    """A rollup row's columns (but its day or month)."""
    return {
        "jurisdiction_id": jurisdiction_pk,
        "dimension": row.dimension,
        "key": row.key,
        "received": row.received,
        "closed": row.closed,
        "with_target": row.with_target,
        "met": row.met,
        "late": row.late,
        "first_contact": row.first_contact,
        "close_buckets": row.close_buckets or None,
        "open_targeted": row.open_targeted,
        "first_due": row.first_due,
        "last_due": row.last_due,
    }


async def replace_days(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    first: date,
    last: date,
    rows: Sequence[RollupRow],
) -> None:
    """Replace the rollups of the local days [first, last] with ``rows``."""
    await conn.execute(
        delete(DAY).where(
            DAY.c.jurisdiction_id == jurisdiction_pk, DAY.c.day >= first, DAY.c.day <= last
        )
    )
    if rows:
        await conn.execute(
            insert(DAY), [{"day": r.day, **_rollup_values(jurisdiction_pk, r)} for r in rows]
        )


def _month_of(conn: AsyncConnection, column: Any) -> Any:
    """The first day of a date column's calendar month."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("month", column).cast(Date)
    return func.date(column, "start of month")


def _bucket_rows(conn: AsyncConnection, table: Any) -> tuple[Any, Any]:
    """The (bucket, count) pairs of ``table``'s ``close_buckets``, as a table-valued function
    to join, and the count as an integer."""
    if conn.dialect.name == "postgresql":
        each = func.jsonb_each_text(table.c.close_buckets).table_valued("key", "value")
        return each, each.c.value.cast(Integer)
    each = func.json_each(table.c.close_buckets).table_valued("key", "value")
    return each, each.c.value


def month_after(day: date) -> date:
    """The first day of the calendar month after ``day``'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _month_span(first: date, last: date) -> tuple[date, date]:
    """The first day of ``first``'s month and of the month after ``last``'s."""
    return first.replace(day=1), month_after(last)


async def merged_months(
    conn: AsyncConnection, jurisdiction_pk: int, first: date, last: date
) -> list[RollupRow]:
    """The ``report_month`` rows of the calendar months that [first, last] touches, summed
    from their days' rollups by the database (counts summed, times to close merged); their
    ``day`` is the month's first day. A read: the pass writes them with :func:`write_months`."""
    start, end = _month_span(first, last)
    where = [DAY.c.jurisdiction_id == jurisdiction_pk, DAY.c.day >= start, DAY.c.day < end]
    month = type_coerce(_month_of(conn, DAY.c.day), Date).label("month")
    counts = (
        select(
            month,
            DAY.c.dimension,
            DAY.c.key,
            *(func.sum(DAY.c[name]).label(name) for name in _SUMMED),
            func.min(DAY.c.first_due).label("first_due"),
            func.max(DAY.c.last_due).label("last_due"),
        )
        .where(*where)
        .group_by(month, DAY.c.dimension, DAY.c.key)
        .subquery("counts")
    )
    each, count = _bucket_rows(conn, DAY)
    per_bucket = (
        select(
            month,
            DAY.c.dimension,
            DAY.c.key,
            each.c.key.label("bucket"),
            func.sum(count).label("n"),
        )
        .select_from(DAY)
        .join(each, true())
        .where(*where, DAY.c.close_buckets.is_not(None))
        .group_by(month, DAY.c.dimension, DAY.c.key, each.c.key)
        .subquery("per_bucket")
    )
    postgres = conn.dialect.name == "postgresql"
    object_agg = func.jsonb_object_agg if postgres else func.json_group_object
    merged = (
        select(
            per_bucket.c.month,
            per_bucket.c.dimension,
            per_bucket.c.key,
            object_agg(per_bucket.c.bucket, per_bucket.c.n, type_=JSONValue()).label("buckets"),
        )
        .group_by(per_bucket.c.month, per_bucket.c.dimension, per_bucket.c.key)
        .subquery("merged")
    )
    rows = await conn.execute(
        select(counts, merged.c.buckets).select_from(
            counts.outerjoin(
                merged,
                and_(
                    merged.c.month == counts.c.month,
                    merged.c.dimension == counts.c.dimension,
                    merged.c.key == counts.c.key,
                ),
            )
        )
    )
    return [
        _rollup_row(r, r.month if isinstance(r.month, date) else date.fromisoformat(r.month))
        for r in rows
    ]


# --- reads ------------------------------------------------------------------------------------


def _days(jurisdiction_pk: int, dimension: str, first: date, last: date) -> list[Any]:
    return [
        DAY.c.jurisdiction_id == jurisdiction_pk,
        DAY.c.dimension == dimension,
        DAY.c.day >= first,
        DAY.c.day <= last,
    ]


@dataclass(frozen=True, slots=True)
class GroupSums(Counts):
    """The rollups of one group (a key of a dimension, or a month) summed over a period."""

    group: str


def _calendar(conn: AsyncConnection, column: Any, unit: str) -> Any:
    """A date column's month ("YYYY-MM") or year ("YYYY") as text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM" if unit == "month" else "YYYY")
    return func.strftime("%Y-%m" if unit == "month" else "%Y", column)


def _whole_months(first: date, last: date, before: date | None) -> tuple[date, date] | None:
    """[first month, month after the last] of the calendar months wholly inside [first, last]
    (and before ``before``'s month), None when there is none."""
    start = first if first.day == 1 else month_after(first)
    end = (last + timedelta(days=1)).replace(day=1)  # months before it end by ``last``
    if before is not None:
        end = min(end, before.replace(day=1))
    return (start, end) if start < end else None


def _rollups(
    jurisdiction_pk: int, dimension: str, first: date, last: date, live: date | None
) -> Any:
    """The rollup rows covering the local days [first, last]: ``report_month`` for the whole
    months before ``live``'s month, ``report_day`` for the rest; columns ``day`` (a month row:
    its first day), ``key``, the counts, ``close_buckets``, ``open_targeted``, ``first_due``."""
    columns = ["key", *_SUMMED, "close_buckets", "first_due"]

    def days(a: date, b: date) -> Any:
        return select(DAY.c.day, *(DAY.c[c] for c in columns)).where(
            *_days(jurisdiction_pk, dimension, a, b)
        )

    months = _whole_months(first, last, live)
    if months is None:
        return days(first, last).subquery("rollups")
    start, end = months
    # Each part a plain range of its index (a generic plan of one range with an OR filter
    # would read every day of the period).
    parts = [
        select(MONTH.c.month.label("day"), *(MONTH.c[c] for c in columns)).where(
            MONTH.c.jurisdiction_id == jurisdiction_pk,
            MONTH.c.dimension == dimension,
            MONTH.c.month >= start,
            MONTH.c.month < end,
        )
    ]
    if first < start:
        parts.append(days(first, start - timedelta(days=1)))
    if end <= last:
        parts.append(days(end, last))
    return union_all(*parts).subquery("rollups")


def _grouping(conn: AsyncConnection, rollups: Any, by_month: bool) -> Any:
    """What rollup rows are summed by: their key, or their month."""
    return (_calendar(conn, rollups.c.day, "month") if by_month else rollups.c.key).label("g")


async def live_from(
    conn: AsyncConnection, jurisdiction_pk: int, first: date, last: date, now: datetime
) -> date | None:
    """The first day of [first, last] with an open request whose target is ``now`` or later
    (None: every open request with a target is past it): the first month holding one, then
    its days and those after. Every request is in each dimension once, so the ``all``
    dimension's rollups answer for all of them."""
    dimension = "all"
    month = (
        await conn.execute(
            select(func.min(MONTH.c.month)).where(
                MONTH.c.jurisdiction_id == jurisdiction_pk,
                MONTH.c.dimension == dimension,
                MONTH.c.month >= first.replace(day=1),
                MONTH.c.month <= last,
                MONTH.c.last_due >= now,
            )
        )
    ).scalar()
    if month is None:
        return None
    if isinstance(month, str):  # SQLite: min() loses the column type
        month = date.fromisoformat(month)
    value = (
        await conn.execute(
            select(func.min(DAY.c.day)).where(
                *_days(jurisdiction_pk, dimension, max(first, month), last),
                DAY.c.last_due >= now,
            )
        )
    ).scalar()
    return date.fromisoformat(value) if isinstance(value, str) else value


async def sum_days(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    dimension: str,
    first: date,
    last: date,
    *,
    by_month: bool,
) -> list[GroupSums]:
    """The rollups of one dimension for the local days [first, last], summed by key (or by
    month), with their times to close merged, by the database, from the months' rollups for
    whole months and the days' for the rest: the work is months x keys (plus the days of
    partial months) however many requests the period has."""
    rollups = _rollups(jurisdiction_pk, dimension, first, last, None)
    group = _grouping(conn, rollups, by_month)
    totals = await conn.execute(
        select(group, *(func.sum(rollups.c[name]) for name in _COUNTS)).group_by(group)
    )
    each, count = _bucket_rows(conn, rollups)
    buckets: dict[str, dict[str, int]] = defaultdict(dict)
    for g, bucket, n in await conn.execute(
        select(group, each.c.key, func.sum(count))
        .select_from(rollups)
        .join(each, true())
        .where(rollups.c.close_buckets.is_not(None))
        .group_by(group, each.c.key)
    ):
        buckets[str(g)][str(bucket)] = int(n)
    sums = []
    for row in totals:
        group_key = str(row[0])
        sums.append(
            GroupSums(
                group=group_key,
                **{name: int(n or 0) for name, n in zip(_COUNTS, row[1:], strict=True)},
                close_buckets=buckets.get(group_key, {}),
            )
        )
    return sums


@dataclass(frozen=True, slots=True)
class DueSplit:
    """The open requests with a target of a period, split at the day ``live_from``."""

    overdue_before: dict[str, int]  # by group: those of the days before (all past due)
    due_from: datetime | None  # the earliest target of those of that day and after


async def due_split(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    dimension: str,
    first: date,
    last: date,
    *,
    by_month: bool,
    live: date,
) -> DueSplit:
    """Split the open requests with a target of [first, last] at the day ``live`` (from
    ``live_from``), from the rollups."""
    rollups = _rollups(jurisdiction_pk, dimension, first, last, live)
    group = _grouping(conn, rollups, by_month)
    before = case((rollups.c.day < live, rollups.c.open_targeted), else_=0)
    after = case((rollups.c.day >= live, rollups.c.first_due))
    overdue: dict[str, int] = {}
    due_from: datetime | None = None
    for g, n, due in await conn.execute(
        select(group, func.sum(before), func.min(after)).group_by(group)
    ):
        if n:
            overdue[str(g)] = int(n)
        if isinstance(due, str):  # SQLite: min() over a CASE loses the column type
            due = datetime.fromisoformat(due).replace(tzinfo=UTC)
        if due is not None:
            due_from = due if due_from is None else min(due_from, due)
    return DueSplit(overdue, due_from)


async def received_by(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    dimension: str,
    first: date,
    last: date,
    unit: str,
) -> list[tuple[str, str, int]]:
    """(month "YYYY-MM" or year "YYYY", key, requests received) of one dimension for the
    local days [first, last]: the volumes alone, summed by the database."""
    rollups = _rollups(jurisdiction_pk, dimension, first, last, None)
    when = _calendar(conn, rollups.c.day, unit).label("w")
    rows = await conn.execute(
        select(when, rollups.c.key, func.sum(rollups.c.received)).group_by(when, rollups.c.key)
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


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
    due_from: datetime | None = None,
) -> dict[str, int]:
    """Open public requests made in [start, end) and past their expected datetime at ``now``,
    counted by key of ``dimension`` (``all``, ``service``, ``ward``, ``channel``); index on
    jurisdiction, status, expected_at (from ``due_from`` when the caller knows no target of
    those requests is earlier: the rollups' ``first_due``)."""
    key = _key_column(dimension)
    due = [REQUEST.c.expected_at < now]
    if due_from is not None:
        due.append(REQUEST.c.expected_at >= due_from)
    rows = await conn.execute(
        select(key, func.count())
        .where(
            *_public(jurisdiction_pk),
            REQUEST.c.status == "open",
            *due,
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
