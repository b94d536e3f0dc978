"""An export written by PostgreSQL's COPY (issue 20, point 1) under a reader that stops
reading: the COPY waits for it (the server blocks writing to us: nothing piles up in the
process beyond a few chunks) and is cancelled when the export is cut, its connection not
kept."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import Integer, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert

from app.settings import ExportSettings
from app.store.tables import ServiceRequest
from tests.conftest import AppFactory, clear, engine_of, seed_catalog
from tests.support import get_scope, silent_after_request

BASE = "/open311/v2"
REQUEST = ServiceRequest.__table__
ROWS = 4000  # x 4 kB: far more than the queue, asyncpg's reads and the sockets hold


async def _many(client: httpx.AsyncClient) -> None:
    seed = await seed_catalog(engine_of(client))
    n = func.generate_series(1, ROWS).table_valued("value").render_derived("g")
    at = func.now() - n.c.value * text("interval '1 minute'")
    rows = select(
        literal(seed.jurisdiction_pk, Integer()),
        literal(seed.service_pks["POTHOLE"], Integer()),
        literal("open"),
        at,
        at,
        at,
        literal(43.65),
        literal(-79.38),
        func.repeat("x, ", 1333),
        literal(False),
    ).select_from(n)
    columns = [
        "jurisdiction_id",
        "service_type_id",
        "status",
        "requested_at",
        "updated_at",
        "created_at",
        "lat",
        "lon",
        "description",
        "sandbox",
    ]
    async with engine_of(client).begin() as conn:
        await conn.execute(insert(REQUEST).from_select(columns, rows))


async def _copies_waiting(client: httpx.AsyncClient) -> list[str | None]:
    """The wait events of the COPYs of this test's database running now."""
    async with engine_of(client).connect() as conn:
        result = await conn.execute(
            text(
                "SELECT wait_event FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY (SELECT%' AND pid <> pg_backend_pid()"
            )
        )
        return [row[0] for row in result]


async def test_a_reader_that_stops_reading_stops_the_copy(make_client: AppFactory) -> None:
    client: httpx.AsyncClient = await make_client(exports=ExportSettings(idle_timeout_s=5))
    if engine_of(client).dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    await clear(engine_of(client))
    await _many(client)
    app = client.app  # type: ignore[attr-defined]
    stuck = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            stuck.set()
            await asyncio.Event().wait()  # the client reads nothing more

    path = f"{BASE}/exports/requests.csv"
    answer = asyncio.create_task(app(get_scope(path), silent_after_request(), send))
    await asyncio.wait_for(stuck.wait(), timeout=10)
    # The COPY runs on and then waits writing to us: the server holds the rest.
    waits: list[str | None] = []
    for _ in range(40):
        waits = await _copies_waiting(client)
        if waits == ["ClientWrite"]:
            break
        await asyncio.sleep(0.1)
    assert waits == ["ClientWrite"]
    # Cut after idle_timeout_s: the COPY is cancelled, its connection closed.
    await asyncio.wait_for(answer, timeout=15)
    for _ in range(40):
        if not await _copies_waiting(client):
            break
        await asyncio.sleep(0.1)
    assert await _copies_waiting(client) == []
    assert engine_of(client).pool.checkedout() == 0  # type: ignore[attr-defined]
    assert app.state.open311_export_gate.running == set()
    # The next export runs (every row, the pool sound).
    response = await client.get(path)
    assert response.status_code == 200
    assert response.content.count(b"\r\n") == ROWS + 1
