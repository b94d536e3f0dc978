"""The service-promise reports a council asks for: ``service-promise`` and ``key-metrics``.

**What is counted.** The public requests (never sandbox ones) *received* in a period of
local days (the jurisdiction's time zone), whatever became of them since:

- ``received``; ``closed`` (closed now); ``open`` (received - closed);
- ``closed_within_target`` (closed at or before its ``expected_datetime``), ``closed_late``
  and ``overdue`` (still open and past it now); the **compliance rate** is
  within / (within + late + overdue): requests whose target has not fallen due yet are not
  counted either way, nor requests without a target;
- the median and 90th percentile of the time to close (hours, requested to the last update
  that closed it; ``percentile_cont``), to within 2.5 % (the rollups keep times to close in
  buckets 5 % wide, and a time counts as its bucket's middle);
- ``first_contact_resolved`` and its rate among the received.

**Rollups.** The reports read ``report_day`` (``app.store.tables.report``): per local day and
per key of a dimension (all, service, ward, channel), the counts of that day's requests;
and ``report_month``, the same summed by calendar month, for the whole months of a period.
A report first brings them up to date (:func:`refresh`): the days of every request changed
since the last refresh (its ``updated_at``, which every write sets to the server's clock,
minus a margin for transactions still open then) are recomputed from the requests, so a
report costs months x keys rows whatever the city's size. "Open and overdue now" comes
from the rollups for the days whose targets have all fallen due, and from the requests
only for the recent days with a target still ahead (:func:`_overdue`). The first report of
a jurisdiction (or one after :func:`invalidate`) builds them all; after that the worker
also brings them up to date every few minutes (:func:`refresh_reported`), so a report finds
little to do.
Nothing is written per POST: the days to recompute come from ``updated_at``.

**Refresh passes.** A refresh recomputes its days a piece at a time (the days of at most
``PIECE_REQUESTS`` requests, or one day), reading outside any write transaction and writing
each piece in a short write transaction of its own, so on SQLite a POST never waits for more
than one piece's write, and on PostgreSQL no transaction stays open on ``service_request``
for longer than a piece's read. The pass in progress and its remaining days are recorded
(``report_refresh``, ``report_pending``), and one pass per jurisdiction runs at a time (a
lease, in any process): a report that finds another caller's pass running waits for it,
then runs a pass of its own only for what that one may have missed, so a report always
reflects every change made before it was asked.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.errors import InvalidParameter
from app.store import reports as store
from app.store.engine import read_connection, write_transaction
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from app.domain.jurisdictions import JurisdictionInfo

# Longest period a service-promise report covers (five years of days).
MAX_PERIOD_DAYS = 5 * 366
# Years a key-metrics report may ask for.
MIN_YEAR, MAX_YEAR = 1990, 2100
# Rows of the top services and trending issues.
TOP = 10
# Changes made this long before a refresh started are recomputed again by the next one (a
# transaction still open when a refresh reads may commit an older updated_at).
REFRESH_MARGIN = timedelta(minutes=5)
# A refresh piece: the days of at most this many requests (or one day, however many it has),
# read outside any write transaction, written in one short write transaction.
PIECE_REQUESTS = 2000
# Requests tallied between two yields to the event loop.
YIELD_EVERY = 200
# A refresh lease nobody has written through for this long is free to take (its holder died;
# a holder renews it with every piece it writes).
LEASE = timedelta(seconds=120)
# A caller waiting for another one's pass looks again after this long, then twice as long...
WAIT_FIRST_S, WAIT_MAX_S = 0.05, 0.5
# Times to close: bucket 0 is under a minute, bucket i >= 1 is [60 s x 1.05^(i-1), 60 s x
# 1.05^i); the last bucket takes everything longer (about 26 years).
BUCKET_BASE = 1.05
LAST_BUCKET = 400
DIMENSIONS = ("all", "service", "ward", "channel")


class GroupBy(StrEnum):
    """What a service-promise report's rows are."""

    division = "division"
    service = "service"
    ward = "ward"
    channel = "channel"
    month = "month"


# --- times to close in buckets ------------------------------------------------------------------


def bucket_of(seconds: float) -> int:
    """The bucket of a time to close (negative times, from backdated updates, count as 0)."""
    if seconds < 60:
        return 0
    return min(LAST_BUCKET, 1 + int(math.log(seconds / 60) / math.log(BUCKET_BASE)))


def bucket_bounds(index: int) -> tuple[float, float]:
    """[low, high) seconds of a bucket."""
    if index == 0:
        return 0.0, 60.0
    return 60 * BUCKET_BASE ** (index - 1), 60 * BUCKET_BASE**index


def _middle(index: int) -> float:
    low, high = bucket_bounds(index)
    return (low + high) / 2


def percentile(buckets: Mapping[int, int], fraction: float) -> float | None:
    """``percentile_cont(fraction)`` of the times in ``buckets`` (hours), each time taken as
    the middle of its bucket (so within 2.5 %, or 30 s under a minute); None without times."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = fraction * (total - 1)
    low_rank = int(rank)
    ordered = sorted((i, n) for i, n in buckets.items() if n > 0)

    def value_at(k: int) -> float:
        seen = 0
        for index, count in ordered:
            seen += count
            if k < seen:
                return _middle(index)
        return _middle(ordered[-1][0])

    low = value_at(low_rank)
    high = value_at(min(low_rank + 1, total - 1))
    return (low + (high - low) * (rank - low_rank)) / 3600


# --- rollups -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Counts of a set of requests (a rollup row, or their sum)."""

    received: int = 0
    closed: int = 0
    with_target: int = 0
    met: int = 0
    late: int = 0
    first_contact: int = 0
    buckets: dict[int, int] = field(default_factory=dict)
    open_targeted: int = 0
    first_due: datetime | None = None
    last_due: datetime | None = None

    def add_fact(self, fact: store.RequestFact) -> None:
        self.received += 1
        self.first_contact += fact.first_contact_resolved
        if fact.expected_at is not None:
            self.with_target += 1
            if fact.status == "open":
                self.open_targeted += 1
                due = fact.expected_at
                self.first_due = due if self.first_due is None else min(self.first_due, due)
                self.last_due = due if self.last_due is None else max(self.last_due, due)
        if fact.closed_at is None:
            return
        self.closed += 1
        if fact.expected_at is not None:
            if fact.closed_at <= fact.expected_at:
                self.met += 1
            else:
                self.late += 1
        index = bucket_of((fact.closed_at - fact.requested_at).total_seconds())
        self.buckets[index] = self.buckets.get(index, 0) + 1

    def add(self, other: store.Counts) -> None:
        """Add summed rollups."""
        self.received += other.received
        self.closed += other.closed
        self.with_target += other.with_target
        self.met += other.met
        self.late += other.late
        self.first_contact += other.first_contact
        for index, count in other.close_buckets.items():
            self.buckets[int(index)] = self.buckets.get(int(index), 0) + int(count)


def _local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tz).astimezone(UTC)


def _keys(fact: store.RequestFact) -> Iterable[tuple[str, str]]:
    yield "all", ""
    yield "service", str(fact.service_type_id)
    yield "ward", "" if fact.ward_id is None else str(fact.ward_id)
    yield "channel", fact.channel or ""


async def _tally(
    engine: AsyncEngine, jurisdiction_pk: int, tz: ZoneInfo, first: date, last: date
) -> list[store.RollupRow]:
    """The rollups of the local days [first, last], from their requests, outside any
    transaction (the writer lock is not held): on PostgreSQL aggregated by one statement (the
    server's process gets a few rows per day and key, not a row per request); on SQLite read
    a page per statement and tallied here, giving the event loop back every ``YIELD_EVERY``
    requests, so a refresh in the server's process never holds other callers for long."""
    tallies: dict[tuple[date, str, str], Tally] = defaultdict(Tally)
    start, end = _day_start(first, tz), _day_start(last + timedelta(days=1), tz)
    seen = 0
    async with read_connection(engine) as conn:
        aggregated = await store.aggregate_days(
            conn,
            jurisdiction_pk,
            tz.key,
            start,
            end,
            bucket_base=BUCKET_BASE,
            last_bucket=LAST_BUCKET,
        )
        if aggregated is not None:  # PostgreSQL: one statement does it all
            return aggregated
        async for fact in store.request_facts(conn, jurisdiction_pk, start, end):
            day = _local_day(fact.requested_at, tz)
            for dimension, key in _keys(fact):
                tallies[(day, dimension, key)].add_fact(fact)
            seen += 1
            if seen % YIELD_EVERY == 0:
                await asyncio.sleep(0)
    return [
        store.RollupRow(
            day=day,
            dimension=dimension,
            key=key,
            received=t.received,
            closed=t.closed,
            with_target=t.with_target,
            met=t.met,
            late=t.late,
            first_contact=t.first_contact,
            close_buckets={str(i): n for i, n in sorted(t.buckets.items())},
            open_targeted=t.open_targeted,
            first_due=t.first_due,
            last_due=t.last_due,
        )
        for (day, dimension, key), t in sorted(tallies.items())
    ]


def _runs(days: Iterable[date]) -> list[store.PendingRange]:
    """Sorted days as runs of consecutive days."""
    runs: list[store.PendingRange] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1].last + timedelta(days=1):
            runs[-1] = store.PendingRange(runs[-1].first, day)
        else:
            runs.append(store.PendingRange(day, day))
    return runs


async def _pending_ranges(
    engine: AsyncEngine, jurisdiction_pk: int, tz: ZoneInfo, refreshed_at: datetime | None
) -> list[store.PendingRange]:
    """What a new pass recomputes: every day from the first request (or rollup) to the last
    when the rollups were never built or were invalidated, else the days of the requests
    changed since the last pass began (less ``REFRESH_MARGIN``)."""
    async with read_connection(engine) as conn:
        if refreshed_at is None:
            first, last = await store.requested_bounds(conn, jurisdiction_pk)
            days = [_local_day(at, tz) for at in (first, last) if at is not None]
            days += [d for d in await store.rollup_bounds(conn, jurisdiction_pk) if d is not None]
            return [store.PendingRange(min(days), max(days))] if days else []
        hours = await store.changed_hours(conn, jurisdiction_pk, refreshed_at - REFRESH_MARGIN)
    return _runs(hour_days(hours, tz))


def hour_days(hours: Iterable[datetime], tz: ZoneInfo) -> set[date]:
    """The local days the UTC hours starting at ``hours`` fall on (an hour may straddle a
    local midnight in zones with half-hour offsets: both days)."""
    last = timedelta(hours=1) - timedelta(microseconds=1)
    return {_local_day(at, tz) for hour in hours for at in (hour, hour + last)}


async def _piece_end(
    engine: AsyncEngine, jurisdiction_pk: int, tz: ZoneInfo, pending: store.PendingRange
) -> date:
    """The last day of the next piece of ``pending``: days with at most ``PIECE_REQUESTS``
    requests together, or one day however many it has."""
    async with read_connection(engine) as conn:
        cut = await store.nth_requested_at(
            conn, jurisdiction_pk, _day_start(pending.first, tz), PIECE_REQUESTS
        )
    if cut is None:
        return pending.last
    return min(pending.last, max(pending.first, _local_day(cut, tz) - timedelta(days=1)))


@dataclass(slots=True)
class Refreshed:
    """What one refresh call did."""

    days: int = 0  # local days recomputed
    pieces: int = 0  # write transactions that replaced rollups
    pending: bool = False  # stopped by its budget (or a lost lease) with work left
    lost: bool = False  # the lease went to another caller mid-pass


async def _claim(engine: AsyncEngine, jurisdiction_pk: int, owner: str) -> bool:
    async with write_transaction(engine) as conn:
        await store.ensure_refresh(conn, jurisdiction_pk)
        now = utcnow()
        return await store.claim_lease(conn, jurisdiction_pk, owner, now, now - LEASE)


async def _state(engine: AsyncEngine, jurisdiction_pk: int) -> store.RefreshState | None:
    async with read_connection(engine) as conn:
        return await store.refresh_state(conn, jurisdiction_pk)


def _held(state: store.RefreshState) -> bool:
    """Another caller holds the refresh lease and wrote through it lately."""
    return (
        state.lease_owner is not None
        and state.lease_at is not None
        and state.lease_at >= utcnow() - LEASE
    )


def _fresh(state: store.RefreshState | None, since: datetime) -> bool:
    """The rollups are up to date with every change made before ``since``."""
    return (
        state is not None
        and state.pass_started is None
        and state.refreshed_at is not None
        and state.refreshed_at >= since
    )


async def _refresh(
    engine: AsyncEngine,
    jurisdiction_pk: int,
    tz: ZoneInfo,
    *,
    wait: bool = True,
    budget: int | None = None,
) -> Refreshed:
    """Bring the jurisdiction's rollups up to date with every change made before this call.

    One pass per jurisdiction runs at a time (the lease in ``report_refresh``, in any
    process): a caller that finds another one's pass running waits for it (``wait``) and
    needs no pass of its own when that one began after the call; else it takes the lease and
    runs passes until the rollups are up to date. A pass recomputes its days a piece at a time
    (at most ``PIECE_REQUESTS`` requests, or one day), reading outside any write transaction
    and writing each piece in a short write transaction of its own, so writers (POSTs) never
    wait for more than a piece's write. ``budget``: at most this many pieces (the worker's
    bounded work per pass; the pass goes on at its next one)."""
    called = utcnow()
    owner = secrets.token_hex(8)
    total = Refreshed()
    while True:
        pause = WAIT_FIRST_S
        while not await _claim(engine, jurisdiction_pk, owner):
            if not wait:
                total.pending = True
                return total
            # Wait while the holder is alive (reads only: waiting takes no writer lock).
            while True:
                await asyncio.sleep(pause)
                pause = min(WAIT_MAX_S, pause * 2)
                state = await _state(engine, jurisdiction_pk)
                if _fresh(state, called):
                    return total
                if state is None or not _held(state):
                    break
        try:
            done = await _passes(engine, jurisdiction_pk, tz, owner, called, budget)
        finally:
            async with write_transaction(engine) as conn:
                await store.release_lease(conn, jurisdiction_pk, owner)
        total.days += done.days
        total.pieces += done.pieces
        total.pending = done.pending
        # Done, or stopped by the budget; else the lease was lost (this caller was silent for
        # longer than LEASE): wait for the pass's new holder, as any other caller would.
        if not done.lost or not wait:
            return total


async def _passes(
    engine: AsyncEngine,
    jurisdiction_pk: int,
    tz: ZoneInfo,
    owner: str,
    called: datetime,
    budget: int | None,
) -> Refreshed:
    """Run passes as the lease's ``owner`` until the rollups are up to date with ``called``."""
    done = Refreshed()
    while True:
        state = await _state(engine, jurisdiction_pk)
        if state is None or state.lease_owner != owner:
            done.pending = done.lost = True  # the lease went to another caller
            return done
        if _fresh(state, called):
            return done
        started = state.pass_started
        if started is None:
            started = utcnow()
            ranges = await _pending_ranges(engine, jurisdiction_pk, tz, state.refreshed_at)

            async with write_transaction(engine) as conn:
                await store.start_pass(conn, jurisdiction_pk, owner, started, ranges)
            continue
        async with read_connection(engine) as conn:
            pending = await store.next_pending(conn, jurisdiction_pk)
        if pending is None:
            async with write_transaction(engine) as conn:
                await store.finish_pass(conn, jurisdiction_pk, owner, started)
            continue
        if budget is not None and done.pieces >= budget:
            done.pending = True
            return done
        last = await _piece_end(engine, jurisdiction_pk, tz, pending)
        rows = await _tally(engine, jurisdiction_pk, tz, pending.first, last)

        async with write_transaction(engine) as conn:
            written = await store.write_days(
                conn, jurisdiction_pk, owner, started, utcnow(), pending.first, last, rows
            )
        if not written:
            continue  # the lease was lost: the next turn sees it
        # The months this piece completes, summed from their days outside any write
        # transaction, then written (and the piece taken off the pass) in a short one; until
        # then the piece stays pending, so a pass cut short here redoes it.
        months = store.completed_months(pending, last)
        merged: list[store.RollupRow] = []
        if months is not None:
            async with read_connection(engine) as conn:
                merged = await store.merged_months(conn, jurisdiction_pk, *months)
        async with write_transaction(engine) as conn:
            written = await store.write_months(
                conn, jurisdiction_pk, owner, started, utcnow(), pending, last, months, merged
            )
        if written:
            done.days += (last - pending.first).days + 1
            done.pieces += 1


async def refresh(engine: AsyncEngine, jurisdiction: JurisdictionInfo) -> int:
    """Bring the jurisdiction's rollups up to date (module docstring; :func:`_refresh`): a
    report right after a change sees it. The days this call recomputed."""
    return (await _refresh(engine, jurisdiction.pk, jurisdiction.tz)).days


async def refresh_reported(engine: AsyncEngine, *, budget: int | None = None) -> Refreshed:
    """The worker's pass: bring up to date the rollups of every jurisdiction reported on
    (a jurisdiction's first build waits for its first report; a rebuild after
    :func:`invalidate` is the worker's to do), at most ``budget`` pieces each, skipping one
    whose pass another caller runs."""
    async with read_connection(engine) as conn:
        reported = await store.reported_jurisdictions(conn)
    total = Refreshed()
    for pk, zone in reported:
        one = await _refresh(engine, pk, ZoneInfo(zone), wait=False, budget=budget)
        total.days += one.days
        total.pieces += one.pieces
        total.pending = total.pending or one.pending
    return total


async def refresh_built(engine: AsyncEngine) -> int:
    """Every reported-on jurisdiction's rollups brought up to date; the days recomputed."""
    return (await refresh_reported(engine)).days


async def invalidate(conn: AsyncConnection, jurisdiction_pk: int) -> None:
    """The next refresh rebuilds every rollup of the jurisdiction (after a change that moves
    no ``updated_at``, e.g. a demo load or a ward reassignment); a pass in progress ends."""
    await store.invalidate(conn, jurisdiction_pk)


# --- the service-promise report ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Local days [start, end] of a jurisdiction."""

    start: date
    end: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants [from, to) the period covers."""
        return _day_start(self.start, tz), _day_start(self.end + timedelta(days=1), tz)


def parse_period(start: str | None, end: str | None, default_year: int) -> Period:
    """A period from ``start``/``end`` (YYYY-MM-DD, both inclusive; absent start: 1 January
    of ``default_year``; absent end: 31 December of start's year); 400 when unreadable,
    reversed or longer than five years."""
    problems: list[str] = []

    def one(name: str, text: str | None, fallback: date) -> date:
        if text is None or not text.strip():
            return fallback
        try:
            if len(text.strip()) != 10:
                raise ValueError(text[:16])
            return date.fromisoformat(text.strip())
        except ValueError:
            problems.append(f"{name} must be a date, YYYY-MM-DD.")
            return fallback

    first = one("start", start, date(default_year, 1, 1))
    last = one("end", end, date(first.year, 12, 31))
    if not problems and last < first:
        problems.append("end must not be before start.")
    if not problems and (last - first).days + 1 > MAX_PERIOD_DAYS:
        problems.append(f"A period is at most {MAX_PERIOD_DAYS} days.")
    if problems:
        raise InvalidParameter(*problems)
    return Period(first, last)


def parse_group_by(text: str | None) -> GroupBy:
    """The ``group_by`` of a report (default: division); 400 for anything else."""
    if text is None or not text.strip():
        return GroupBy.division
    normal = text.strip().lower()[:16]
    if normal not in GroupBy.__members__:
        raise InvalidParameter(f"group_by must be one of {', '.join(GroupBy)}.")
    return GroupBy(normal)


def parse_year(text: str | None, default_year: int) -> int:
    """The ``year`` of a key-metrics report; 400 outside 1990..2100."""
    if text is None or not text.strip():
        return default_year
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) == 4):
        raise InvalidParameter("year must be a year, e.g. 2018.")
    if not MIN_YEAR <= int(value) <= MAX_YEAR:
        raise InvalidParameter(f"year must be between {MIN_YEAR} and {MAX_YEAR}.")
    return int(value)


async def default_year(engine: AsyncEngine, jurisdiction: JurisdictionInfo) -> int:
    """The year of the jurisdiction's newest request (else this year)."""
    async with read_connection(engine) as conn:
        _, last = await store.requested_bounds(conn, jurisdiction.pk)
    return (last or utcnow()).astimezone(jurisdiction.tz).year


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _figures(tally: Tally, overdue: int) -> dict[str, Any]:
    due = tally.met + tally.late + overdue
    return {
        "received": tally.received,
        "closed": tally.closed,
        "open": tally.received - tally.closed,
        "with_target": tally.with_target,
        "closed_within_target": tally.met,
        "closed_late": tally.late,
        "overdue": overdue,
        "compliance_rate": _rate(tally.met, due),
        "median_hours_to_close": _hours(percentile(tally.buckets, 0.5)),
        "p90_hours_to_close": _hours(percentile(tally.buckets, 0.9)),
        "first_contact_resolved": tally.first_contact,
        "first_contact_rate": _rate(tally.first_contact, tally.received),
    }


FIGURES = (
    "received",
    "closed",
    "open",
    "with_target",
    "closed_within_target",
    "closed_late",
    "overdue",
    "compliance_rate",
    "median_hours_to_close",
    "p90_hours_to_close",
    "first_contact_resolved",
    "first_contact_rate",
)


async def _grouped(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    period: Period,
    group_by: GroupBy,
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of a service-promise report and its total row."""
    dimension = {
        GroupBy.division: "service",
        GroupBy.service: "service",
        GroupBy.ward: "ward",
        GroupBy.channel: "channel",
        GroupBy.month: "all",
    }[group_by]
    by_month = group_by is GroupBy.month
    sums = await store.sum_days(
        conn, jurisdiction.pk, dimension, period.start, period.end, by_month=by_month
    )
    overdue = await _overdue(conn, jurisdiction, dimension, period, by_month, now)
    labels: dict[str, str] = {}
    regroup: dict[str, str] = {}
    if dimension == "service":
        for service in await store.service_labels(conn, jurisdiction.pk):
            if group_by is GroupBy.service:
                labels[str(service.id)] = service.name
                regroup[str(service.id)] = service.code
            else:
                regroup[str(service.id)] = service.division_code or ""
                labels[service.division_code or ""] = service.division_name or "(no division)"
    elif dimension == "ward":
        ids = {int(r.group) for r in sums if r.group} | {int(k) for k in overdue if k}
        names = await store.ward_labels(conn, sorted(ids))
        labels = {str(i): name for i, name in names.items()} | {"": "(no ward)"}
    elif dimension == "channel":
        labels = {"": "(not recorded)"}
    tallies: dict[str, Tally] = defaultdict(Tally)
    overdue_by: dict[str, int] = defaultdict(int)
    total = Tally()
    for row in sums:
        key = regroup.get(row.group, row.group)
        tallies[key].add(row)
        total.add(row)
    for key, count in overdue.items():
        overdue_by[regroup.get(key, key)] += count
    for key in overdue_by:
        tallies.setdefault(key, Tally())
    if by_month:
        for month_start, _ in _months(period):
            tallies.setdefault(month_start.strftime("%Y-%m"), Tally())
    rows = [
        {"group": key, "label": labels.get(key, key), **_figures(tally, overdue_by.get(key, 0))}
        for key, tally in tallies.items()
    ]
    if by_month:
        rows.sort(key=lambda r: str(r["group"]))
    else:
        rows.sort(key=lambda r: (-int(r["received"]), str(r["label"])))
    return rows, {"group": "total", "label": "Total", **_figures(total, sum(overdue.values()))}


async def _overdue(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    dimension: str,
    period: Period,
    by_month: bool,
    now: datetime,
) -> dict[str, int]:
    """Open requests of the period past their target at ``now``, by key of ``dimension`` (by
    month when ``by_month``). Before the first day with an open request not yet due, every
    open request with a target is overdue: the rollups count them. From that day on (the
    recent days: targets are days ahead) the requests are counted themselves, only those due
    since the earliest target among them, so the work follows months x keys and the few
    requests of those days, not the open backlog."""
    pk = jurisdiction.pk
    live = await store.live_from(conn, pk, period.start, period.end, now)
    split = await store.due_split(
        conn,
        pk,
        dimension,
        period.start,
        period.end,
        by_month=by_month,
        # None: every target has fallen due, the rollups count them all
        live=period.end + timedelta(days=1) if live is None else live,
    )
    overdue: dict[str, int] = defaultdict(int, split.overdue_before)
    if live is None or split.due_from is None or split.due_from >= now:
        return dict(overdue)
    recent = Period(live, period.end)
    if by_month:
        for month_start, month_end in _months(recent):
            a, b = Period(month_start, month_end).bounds(jurisdiction.tz)
            counts = await store.overdue_counts(conn, pk, "all", a, b, now, due_from=split.due_from)
            overdue[month_start.strftime("%Y-%m")] += counts.get("", 0)
    else:
        a, b = recent.bounds(jurisdiction.tz)
        counts = await store.overdue_counts(conn, pk, dimension, a, b, now, due_from=split.due_from)
        for key, count in counts.items():
            overdue[key] += count
    return {key: count for key, count in overdue.items() if count}


def _months(period: Period) -> list[tuple[date, date]]:
    """The calendar months of a period, cut to it."""
    months = []
    day = period.start
    while day <= period.end:
        next_month = store.month_after(day)
        months.append((day, min(period.end, next_month - timedelta(days=1))))
        day = next_month
    return months


async def service_promise(
    engine: AsyncEngine,
    jurisdiction: JurisdictionInfo,
    period: Period,
    group_by: GroupBy,
) -> dict[str, Any]:
    """The service-promise report of a period, its rows grouped by ``group_by``."""
    await refresh(engine, jurisdiction)
    now = utcnow()
    async with read_connection(engine) as conn:
        rows, total = await _grouped(conn, jurisdiction, period, group_by, now)
    return {
        "report": "service-promise",
        "jurisdiction_id": jurisdiction.code,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "group_by": group_by.value,
        "generated_at": now.astimezone(jurisdiction.tz).isoformat(timespec="seconds"),
        "groups": rows,
        "total": total,
    }


# --- the key-metrics report --------------------------------------------------------------------


async def key_metrics(
    engine: AsyncEngine, jurisdiction: JurisdictionInfo, year: int
) -> dict[str, Any]:
    """The year's key metrics: volumes by channel and month, top services, trending issues
    (largest rises in requests against the previous year) and compliance by division."""
    await refresh(engine, jurisdiction)
    now = utcnow()
    this = Period(date(year, 1, 1), date(year, 12, 31))
    before = Period(date(year - 1, 1, 1), date(year - 1, 12, 31))
    async with read_connection(engine) as conn:
        by_channel = await store.received_by(
            conn, jurisdiction.pk, "channel", this.start, this.end, "month"
        )
        services = await store.received_by(
            conn, jurisdiction.pk, "service", before.start, this.end, "year"
        )
        labels = {str(s.id): s for s in await store.service_labels(conn, jurisdiction.pk)}
        divisions, total = await _grouped(conn, jurisdiction, this, GroupBy.division, now)
        months, _ = await _grouped(conn, jurisdiction, this, GroupBy.month, now)
    channels: dict[str, list[int]] = defaultdict(lambda: [0] * 12)
    for month, key, received in by_channel:
        channels[key or "(not recorded)"][int(month[5:7]) - 1] += received
    counts: dict[int, dict[str, int]] = {year: defaultdict(int), year - 1: defaultdict(int)}
    for in_year, key, received in services:
        counts[int(in_year)][key] += received
    current, previous = counts[year], counts[year - 1]

    def service(key: str) -> dict[str, Any]:
        label = labels.get(key)
        return {
            "service_code": label.code if label else key,
            "service_name": label.name if label else key,
            "division": label.division_code if label else None,
        }

    received = total["received"]

    def code(key: str) -> str:
        label = labels.get(key)
        return label.code if label else key

    top = sorted(current.items(), key=lambda kv: (-kv[1], code(kv[0])))[:TOP]
    rises = sorted(
        ((key, current.get(key, 0) - previous.get(key, 0)) for key in set(current) | set(previous)),
        key=lambda kv: (-kv[1], code(kv[0])),
    )
    return {
        "report": "key-metrics",
        "jurisdiction_id": jurisdiction.code,
        "year": year,
        "generated_at": now.astimezone(jurisdiction.tz).isoformat(timespec="seconds"),
        "total": total,
        "months": [
            {
                "month": m["group"],
                "received": m["received"],
                "closed": m["closed"],
                "compliance_rate": m["compliance_rate"],
            }
            for m in months
        ],
        "channels": [
            {"channel": name, "months": values, "received": sum(values)}
            for name, values in sorted(channels.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        ],
        "top_services": [
            {**service(key), "received": n, "share": _rate(n, received)} for key, n in top
        ],
        "trending": [
            {
                **service(key),
                "received": current.get(key, 0),
                "previous_year": previous.get(key, 0),
                "change": rise,
                "change_rate": _rate(rise, previous.get(key, 0)),
            }
            for key, rise in rises[:TOP]
            if rise > 0
        ],
        "divisions": divisions,
    }


# --- CSV ------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would read as a formula is quoted with ``'`` (names
    come from catalogues and ward maps)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def service_promise_csv(report: Mapping[str, Any]) -> str:
    """A service-promise report as CSV: one line per group, then the total."""
    header = ["group_by", "group", "label", *FIGURES]
    lines = [
        [report["group_by"], row["group"], row["label"], *(row[f] for f in FIGURES)]
        for row in [*report["groups"], report["total"]]
    ]
    return _csv(header, lines)


def key_metrics_csv(report: Mapping[str, Any]) -> str:
    """A key-metrics report as CSV, one table: ``table,key,label,measure,value`` lines."""
    lines: list[list[Any]] = []
    for name in FIGURES:
        lines.append(["total", "", "Total", name, report["total"][name]])
    for month in report["months"]:
        for name in ("received", "closed", "compliance_rate"):
            lines.append(["month", month["month"], month["month"], name, month[name]])
    for channel in report["channels"]:
        for index, count in enumerate(channel["months"]):
            month = f"{report['year']}-{index + 1:02d}"
            lines.append(["channel_month", channel["channel"], month, "received", count])
    for table in ("top_services", "trending"):
        for item in report[table]:
            for name in ("received", "share", "previous_year", "change", "change_rate"):
                if name in item:
                    lines.append(
                        [table, item["service_code"], item["service_name"], name, item[name]]
                    )
    for row in report["divisions"]:
        for name in FIGURES:
            lines.append(["division", row["group"], row["label"], name, row[name]])
    return _csv(["table", "key", "label", "measure", "value"], lines)
