"""Rollup builds in bounded pieces, on both backends: a POST made while a jurisdiction's
rollups are rebuilt is answered at once (the build never holds the writer lock for long), one
build per jurisdiction runs at a time, a build cut short (the worker's budget, a dead holder, an
invalidation) is carried on, and the report after it equals a direct computation."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import insert, text, update

from app.domain import reports
from app.domain.jurisdictions import JurisdictionInfo
from app.store import reports as report_store
from app.store.engine import write_transaction
from app.store.tables import ReportRefresh, ServiceRequest
from tests.api.test_reports import assert_counts_agree
from tests.conftest import Seed, engine_of
from tests.support import POTHOLE_AT_CITY_HALL

BASE = "/open311/v2"
TORONTO = ZoneInfo("America/Toronto")
REQUEST = ServiceRequest.__table__
REFRESH = ReportRefresh.__table__
# Enough requests for a build of several pieces (app.domain.reports.PIECE_REQUESTS).
ROWS = 9000
CHANNELS = ("phone", "web", "mobile_app", "email", "counter")


async def _history(client: httpx.AsyncClient, seeded: Seed) -> None:
    """ROWS requests over 2024 and 2025 (every 3rd closed, some late, some resolved at first
    contact), stored in one statement, their updated_at in the past."""
    start = datetime(2024, 1, 1, 8, tzinfo=TORONTO).astimezone(UTC)
    services = list(seeded.service_pks.values())
    rows: list[dict[str, Any]] = []
    for n in range(ROWS):
        requested = start + timedelta(minutes=117 * n)
        closed = n % 3 == 0
        first_contact = n % 17 == 0
        close = timedelta(minutes=5) if first_contact else timedelta(hours=1 + n % 90)
        rows.append(
            {
                "jurisdiction_id": seeded.jurisdiction_pk,
                "service_type_id": services[n % len(services)],
                "status": "closed" if closed or first_contact else "open",
                "requested_at": requested,
                "updated_at": requested + close if closed or first_contact else requested,
                "created_at": requested,
                "expected_at": requested + timedelta(hours=48) if n % 2 else None,
                "channel": CHANNELS[n % len(CHANNELS)],
                "first_contact_resolved": first_contact,
                "sandbox": n % 101 == 0,
            }
        )
    async with engine_of(client).begin() as conn:
        await conn.execute(insert(REQUEST), rows)


async def _place(client: httpx.AsyncClient, seeded: Seed) -> JurisdictionInfo:
    state = client.app.state.open311  # type: ignore[attr-defined]
    place: JurisdictionInfo = await state.jurisdictions.resolve(seeded.jurisdiction_id)
    return place


async def _agrees_with_direct(client: httpx.AsyncClient, seeded: Seed, year: int) -> None:
    """The service-promise report of ``year`` (rollups) equals the direct computation."""
    place = await _place(client, seeded)
    period = reports.Period(date(year, 1, 1), date(year, 12, 31))
    report = await reports.service_promise(engine_of(client), place, period, reports.GroupBy.month)
    start, end = period.bounds(TORONTO)
    async with engine_of(client).connect() as conn:
        direct = await report_store.direct_counts(
            conn, seeded.jurisdiction_pk, start, end, limit=ROWS
        )
    total = report["total"]
    assert direct.received > 1000
    assert_counts_agree(total, direct)
    assert total["median_hours_to_close"] == pytest.approx(direct.median_hours, rel=0.025)
    assert total["p90_hours_to_close"] == pytest.approx(direct.p90_hours, rel=0.025)
    assert sum(g["received"] for g in report["groups"]) == direct.received


def _post(seeded: Seed) -> dict[str, str]:
    return {
        "api_key": seeded.api_key,
        "jurisdiction_id": seeded.jurisdiction_id,
        **POTHOLE_AT_CITY_HALL,
    }


async def test_a_post_during_a_rebuild_is_answered_promptly(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """The first build of a jurisdiction with years of requests runs while POSTs go on: each
    POST is answered long before the build ends (fails before: on SQLite the build was one
    write transaction, and every POST waited for all of it)."""
    await _history(client, seeded)
    engine = engine_of(client)
    place = await _place(client, seeded)
    began = time.perf_counter()
    build = asyncio.create_task(reports.refresh(engine, place))
    await asyncio.sleep(0.05)
    assert not build.done(), "the build ended before the POSTs: more ROWS needed"
    waits = []
    for _ in range(3):
        sent = time.perf_counter()
        posted = await client.post(f"{BASE}/requests.json", data=_post(seeded))
        assert posted.status_code in (200, 201), posted.text
        waits.append(time.perf_counter() - sent)
        if build.done():
            break
    answered = not build.done()
    days = await build
    built_in = time.perf_counter() - began
    assert days >= 700
    assert max(waits) < 2.0, waits
    assert answered, f"the POSTs waited for the whole build ({built_in:.2f} s): {waits}"
    for year in (2024, 2025):
        await _agrees_with_direct(client, seeded, year)


async def test_reports_asked_at_once_share_one_build(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """Three reports asked together: one builds, the others wait for it and build nothing."""
    await _history(client, seeded)
    engine = engine_of(client)
    place = await _place(client, seeded)
    days = await asyncio.gather(*(reports.refresh(engine, place) for _ in range(3)))
    async with engine.connect() as conn:
        first, last = await report_store.requested_bounds(conn, seeded.jurisdiction_pk)
    assert first is not None
    assert last is not None
    span = (last.astimezone(TORONTO).date() - first.astimezone(TORONTO).date()).days + 1
    assert sorted(days) == [0, 0, span]
    await _agrees_with_direct(client, seeded, 2025)


async def test_a_build_cut_short_is_carried_on(client: httpx.AsyncClient, seeded: Seed) -> None:
    """The worker builds a few pieces per pass; its pass in progress is recorded, so a report
    asked meanwhile finishes it (not from the start) and is right; a lease whose holder died
    is taken over; an invalidation mid-build starts the build again."""
    await _history(client, seeded)
    engine = engine_of(client)
    await _agrees_with_direct(client, seeded, 2024)  # built once: reported on
    async with write_transaction(engine) as conn:
        await reports.invalidate(conn, seeded.jurisdiction_pk)

    worker = await reports.refresh_reported(engine, budget=1)
    assert (worker.pieces, worker.pending) == (1, True)
    async with engine.connect() as conn:
        state = await report_store.refresh_state(conn, seeded.jurisdiction_pk)
        pending = await report_store.next_pending(conn, seeded.jurisdiction_pk)
    assert state is not None
    assert state.pass_started is not None
    assert state.lease_owner is None
    assert pending is not None
    assert pending.first > date(2024, 1, 1)

    # Its holder died mid-piece five minutes ago: the lease is free to take.
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(REFRESH)
            .where(REFRESH.c.jurisdiction_id == seeded.jurisdiction_pk)
            .values(lease_owner="dead", lease_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    place = await _place(client, seeded)
    carried = await reports.refresh(engine, place)
    assert 0 < carried < (date(2025, 12, 31) - date(2024, 1, 1)).days
    await _agrees_with_direct(client, seeded, 2025)

    # Invalidated mid-build (a ward reassignment): the next pieces belong to a new build.
    await reports.refresh_reported(engine)
    async with write_transaction(engine) as conn:
        await reports.invalidate(conn, seeded.jurisdiction_pk)
    assert (await reports.refresh_reported(engine, budget=2)).pending
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(REQUEST)
            .where(REQUEST.c.jurisdiction_id == seeded.jurisdiction_pk)
            .where(REQUEST.c.requested_at < datetime(2024, 3, 1, tzinfo=UTC))
            .values(first_contact_resolved=True)
        )
        await reports.invalidate(conn, seeded.jurisdiction_pk)
    await _agrees_with_direct(client, seeded, 2024)


async def test_a_builder_that_loses_its_lease_waits_for_the_new_holder(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """A builder silent for too long loses its lease mid-build: it writes nothing more and
    waits, as any other caller, for the new holder; the report it answers is still right."""
    await _history(client, seeded)
    engine = engine_of(client)
    place = await _place(client, seeded)
    build = asyncio.create_task(reports.refresh(engine, place))
    for _ in range(500):
        async with engine.connect() as conn:
            state = await report_store.refresh_state(conn, seeded.jurisdiction_pk)
        if state is not None and state.pass_started is not None:
            break
        await asyncio.sleep(0.01)
    assert not build.done()

    async def lease(owner: str | None) -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(
                update(REFRESH)
                .where(REFRESH.c.jurisdiction_id == seeded.jurisdiction_pk)
                .values(lease_owner=owner, lease_at=datetime.now(UTC) if owner else None)
            )

    await lease("someone-else")
    await asyncio.sleep(0.5)
    assert not build.done()  # waiting for the new holder
    await lease(None)  # which gave it back with the pass unfinished
    assert await build > 0
    await _agrees_with_direct(client, seeded, 2024)
    await _agrees_with_direct(client, seeded, 2025)


async def test_the_worker_rebuilds_after_an_invalidation(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """After a ward reassignment or a demo load the worker rebuilds the rollups of a
    jurisdiction reported on, a bounded number of pieces per pass (before: the next report
    rebuilt them all, in one write transaction)."""
    from app.domain.webhooks import delivery_client
    from app.worker import REPORTS_PIECES, Worker

    await _history(client, seeded)
    engine = engine_of(client)
    await _agrees_with_direct(client, seeded, 2024)
    async with write_transaction(engine) as conn:
        await reports.invalidate(conn, seeded.jurisdiction_pk)
    state = client.app.state.open311  # type: ignore[attr-defined]
    worker = Worker(state.engine, state.settings, state.store)
    worker._reports_at = float("-inf")  # its rollup refresh is due
    async with delivery_client(state.settings) as http:
        await worker.run_once(http)
    await worker.aclose()
    async with engine.connect() as conn:
        after = await report_store.refresh_state(conn, seeded.jurisdiction_pk)
        left = await report_store.next_pending(conn, seeded.jurisdiction_pk)
    assert after is not None
    assert after.lease_owner is None
    assert after.refreshed_at is not None  # rebuilt: ROWS fit in REPORTS_PIECES pieces
    assert left is None
    assert ROWS <= REPORTS_PIECES * reports.PIECE_REQUESTS
    built = await reports.refresh(engine, await _place(client, seeded))
    assert built == 0  # nothing left for the report to do
    await _agrees_with_direct(client, seeded, 2025)


async def test_a_rebuild_holds_no_long_transaction_on_postgresql(
    client: httpx.AsyncClient, seeded: Seed, backend: str
) -> None:
    """On PostgreSQL no transaction of the build stays open on service_request for longer
    than a piece (a build has several): sampled while the build runs, every other backend's
    transaction holding a lock on it is younger than half the build (fails before: one
    transaction, as old as the build)."""
    if backend != "postgis":
        pytest.skip("PostgreSQL's locks")
    await _history(client, seeded)
    engine = engine_of(client)
    place = await _place(client, seeded)
    began = time.perf_counter()
    build = asyncio.create_task(reports.refresh(engine, place))
    oldest = 0.0
    samples = 0
    async with engine.connect() as conn:
        await conn.execute(text("SET application_name = 'lock-sampler'"))
        while not build.done():
            age = (
                await conn.execute(
                    text(
                        "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - a.xact_start)),"
                        " 0) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.relation = 'service_request'::regclass"
                        " AND l.pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
            await conn.commit()
            oldest = max(oldest, float(age))
            samples += 1
            await asyncio.sleep(0.02)
    await build
    built_in = time.perf_counter() - began
    assert samples >= 3
    assert oldest < built_in / 2, (oldest, built_in)


async def test_postgresql_aggregates_the_rollups_as_the_tally_does(
    client: httpx.AsyncClient, seeded: Seed, backend: str
) -> None:
    """On PostgreSQL a refresh piece's rollups are aggregated by one statement: row for row
    and bucket for bucket what the embedded store's tally of the requests gives."""
    if backend != "postgis":
        pytest.skip("PostgreSQL's aggregation")
    await _history(client, seeded)
    start = datetime(2024, 1, 1, tzinfo=TORONTO).astimezone(UTC)
    end = datetime(2026, 1, 1, tzinfo=TORONTO).astimezone(UTC)
    tallies: dict[tuple[date, str, str], reports.Tally] = {}
    async with engine_of(client).connect() as conn:
        aggregated = await report_store.aggregate_days(
            conn,
            seeded.jurisdiction_pk,
            "America/Toronto",
            start,
            end,
            bucket_base=reports.BUCKET_BASE,
            last_bucket=reports.LAST_BUCKET,
        )
        async for fact in report_store.request_facts(conn, seeded.jurisdiction_pk, start, end):
            day = fact.requested_at.astimezone(TORONTO).date()
            for dimension, key in (
                ("all", ""),
                ("service", str(fact.service_type_id)),
                ("ward", "" if fact.ward_id is None else str(fact.ward_id)),
                ("channel", fact.channel or ""),
            ):
                tallies.setdefault((day, dimension, key), reports.Tally()).add_fact(fact)
    assert aggregated is not None
    expected = {
        (day, dimension, key): (
            t.received,
            t.closed,
            t.with_target,
            t.met,
            t.late,
            t.first_contact,
            {str(i): n for i, n in t.buckets.items()},
        )
        for (day, dimension, key), t in tallies.items()
    }
    got = {
        (r.day, r.dimension, r.key): (
            r.received,
            r.closed,
            r.with_target,
            r.met,
            r.late,
            r.first_contact,
            r.close_buckets,
        )
        for r in aggregated
    }
    assert len(got) > 1000
    assert got == expected
