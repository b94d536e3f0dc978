"""The embedded store (``app.store.sqlite``): sqlite3 on connections of its own, each with the
one thread that uses it; SQLAlchemy's engine borrows the same connections (one pool); the
event loop's thread never runs SQLite; datetimes rendered on the connection's thread are the
same text as ``format_w3c``."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from app.georeport.datetimes import format_w3c
from app.store.engine import read_connection, write_transaction
from app.store.sqlite import Lane, SqliteStore, W3CText
from app.store.tables import ServiceRequest
from tests.conftest import Seed, engine_of

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

BASE = "/open311/v2"
ZONES = (
    "America/Toronto",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # half-hour DST shifts
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
)


_DIALECT = sqlite.dialect()  # type: ignore[no-untyped-call]
_TYPE = ServiceRequest.__table__.c.requested_at.type.dialect_impl(_DIALECT)  # type: ignore[attr-defined]
_STORE = _TYPE.bind_processor(_DIALECT)
_READ = _TYPE.result_processor(_DIALECT, None)


def _stored(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite."""
    return str(_STORE(value))


@pytest.mark.parametrize("zone", ZONES)
def test_w3c_text_is_format_w3c(zone: str) -> None:
    tz = ZoneInfo(zone)
    text_of = W3CText(tz, _READ)
    values = []
    for year in (1850, 1970, 2024, 2026):  # 1850: local mean time, offsets with seconds
        start = datetime(year, 1, 1, tzinfo=UTC)
        # Every 97 minutes and 13 seconds through the year, and around each hour of its first
        # and last quarters (where the transitions are), to the second.
        values += [start + timedelta(seconds=5833 * i) for i in range(365 * 24 * 60 // 97)]
        for day in (*range(60, 100), *range(270, 320)):
            hour = start + timedelta(days=day)
            values += [hour + timedelta(hours=h, seconds=s) for h in range(24) for s in (-1, 0)]
    values += [datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC) + timedelta(seconds=s) for s in (-1, 0, 1)]
    for value in values:
        for raw in (_stored(value), _stored(value.replace(microsecond=123456))):
            expected = format_w3c(value.replace(microsecond=int(raw[-6:])), tz)
            assert text_of(raw) == expected, raw
            assert text_of(raw) == expected, raw  # cached the second time
    assert text_of(None) is None
    # Text not stored by SQLAlchemy (no microseconds, other separators) is converted in full.
    assert text_of("2026-07-01 12:00:00") == format_w3c(datetime(2026, 7, 1, 12, tzinfo=UTC), tz)


@sqlite_only
async def test_the_engine_borrows_the_stores_connections(
    client: httpx.AsyncClient, seeded: Seed, backend: str
) -> None:
    store: SqliteStore = client.app.state.open311.store  # type: ignore[attr-defined]
    engine = engine_of(client)
    assert store.engine is engine
    async with write_transaction(engine) as conn:
        lent = (await conn.get_raw_connection()).driver_connection
        assert lent._lane in store.writer._all
    async with read_connection(engine) as conn:
        lent = (await conn.get_raw_connection()).driver_connection
        assert lent._lane in store.readers._all
        assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42
    # Every sqlite3 connection of the process is one of the store's.
    assert all(isinstance(lane, Lane) for lane in store.readers._all + store.writer._all)
    assert len(store.writer._all) == 1
    db = client.app.state.open311.settings.db  # type: ignore[attr-defined]
    assert len(store.readers._all) <= db.pool_size + db.max_overflow


@sqlite_only
async def test_sqlite_never_runs_on_the_event_loop_thread(
    client: httpx.AsyncClient, seeded: Seed, backend: str
) -> None:
    store: SqliteStore = client.app.state.open311.store  # type: ignore[attr-defined]
    threads: set[int] = set()

    def trace(_statement: str) -> None:
        threads.add(threading.get_ident())

    def watch(connection: sqlite3.Connection) -> None:
        connection.set_trace_callback(trace)

    # One call on every lane there may be: the store opens them on demand.
    form = {
        "api_key": seeded.api_key,
        "service_code": "LITTER.BIN",
        "lat": "43.6532",
        "long": "-79.3832",
        "description": "on the loop?",
    }
    created = await client.post(f"{BASE}/requests.json", data=form)
    assert created.status_code == 200, created.text
    for lane in store.readers._all + store.writer._all:
        await lane.call(watch)
    request_id = created.json()[0]["service_request_id"]
    assert (await client.get(f"{BASE}/requests/{request_id}.json")).status_code == 200
    assert (await client.get(f"{BASE}/requests.xml")).status_code == 200
    again = await client.post(
        f"{BASE}/requests.json", data=form, headers={"Idempotency-Key": "loop-thread"}
    )
    assert again.status_code == 200, again.text
    assert threads
    assert threading.get_ident() not in threads


@sqlite_only
async def test_sqlalchemy_sends_only_its_statements_on_a_lent_connection(
    client: httpx.AsyncClient, backend: str
) -> None:
    store: SqliteStore = client.app.state.open311.store  # type: ignore[attr-defined]
    engine = engine_of(client)
    async with read_connection(engine) as conn:  # opens the connections used below
        await conn.execute(text("SELECT 1"))
    async with write_transaction(engine) as conn:
        await conn.execute(text("SELECT 1"))
    sent: list[str] = []

    def watch(connection: sqlite3.Connection) -> None:
        connection.set_trace_callback(sent.append)

    for lane in store.readers._all + store.writer._all:
        await lane.call(watch)
    # An autocommit read: its statement alone (no BEGIN, no isolation-level PRAGMA).
    async with read_connection(engine) as conn:
        assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42
    assert sent == ["SELECT 41 + 1"]
    sent.clear()
    # A transaction: BEGIN from the engine's begin event, the statement, COMMIT.
    async with write_transaction(engine) as conn:
        await conn.execute(text("SELECT 2"))
    assert sent == ["BEGIN IMMEDIATE", "SELECT 2", "COMMIT"]
