"""One export per caller across server processes (issue 20, point 1): the export gate of one
process is in memory, so several workers would each let a caller stream one; the caller's
lease in the store makes the rule hold for all of them. Two apps over one database stand for
two processes, on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from app.settings import ExportSettings
from app.store.tables import ExportLease
from app.store.tables.base import utcnow
from tests.conftest import AppFactory, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import get_scope, silent_after_request

BASE = "/open311/v2"
PATH = f"{BASE}/exports/requests.csv"
LEASE = ExportLease.__table__


async def _two_processes(make_client: AppFactory) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    first: httpx.AsyncClient = await make_client(exports=ExportSettings(batch_size=2))
    second: httpx.AsyncClient = await make_client(exports=ExportSettings(batch_size=2))
    await clear(engine_of(first))
    return first, second


async def test_a_second_export_of_the_same_key_in_another_process_is_refused(
    make_client: AppFactory,
) -> None:
    first, second = await _two_processes(make_client)
    engine = engine_of(first)
    seed = await seed_catalog(engine)
    for _ in range(5):
        await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"])
    # The first process streams the key's export; its client holds the first chunk.
    reading = asyncio.Event()
    held = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            held.set()
            await reading.wait()

    app = first.app  # type: ignore[attr-defined]
    streaming = asyncio.create_task(
        app(
            get_scope(PATH, f"api_key={seed.api_key}".encode(), "10.0.0.1"),
            silent_after_request(),
            send,
        )
    )
    await asyncio.wait_for(held.wait(), timeout=10)
    assert sent[0]["status"] == 200
    # The same key in the other process (another address): refused at once, a GeoReport
    # error document, as in one process.
    refused = await second.get(PATH, params={"api_key": seed.api_key})
    assert refused.status_code == 429
    assert refused.headers["retry-after"]
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()[0]["code"] == 429
    assert "one export at a time" in refused.json()[0]["description"]
    # Another caller is not held back.
    assert (await second.get(PATH)).status_code == 200
    # The first export ends: the key may export again, in either process.
    reading.set()
    await asyncio.wait_for(streaming, timeout=10)
    assert sent[-1]["type"] == "http.response.body"
    assert not sent[-1].get("more_body", False)
    async with engine.connect() as conn:
        assert (await conn.execute(select(LEASE.c.caller))).all() == []
    assert (await second.get(PATH, params={"api_key": seed.api_key})).status_code == 200
    assert (await first.get(PATH, params={"api_key": seed.api_key})).status_code == 200


async def test_the_lease_of_a_process_that_died_runs_out(make_client: AppFactory) -> None:
    """A lease nobody gives back (its process died) refuses the caller until it expires."""
    client, _ = await _two_processes(make_client)
    engine = engine_of(client)
    await seed_catalog(engine)
    async with engine.begin() as conn:
        await conn.execute(
            insert(LEASE).values(
                caller="ip:127.0.0.1", holder="dead", expires_at=utcnow() + timedelta(minutes=2)
            )
        )
    assert (await client.get(PATH)).status_code == 429
    async with engine.begin() as conn:
        await conn.execute(LEASE.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await client.get(PATH)).status_code == 200
    async with engine.connect() as conn:
        assert (await conn.execute(select(LEASE.c.caller))).all() == []


async def test_a_streaming_export_renews_its_lease(make_client: AppFactory) -> None:
    """The gate renews a lease once a third of it has passed (here a lease of 0.6 s)."""
    from app.domain.exports import ExportGate

    client, _ = await _two_processes(make_client)
    engine = engine_of(client)
    gate = ExportGate(4, engine, lease_s=0.6)
    await gate.enter("key:1")

    async def expires() -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(select(LEASE.c.expires_at))).scalar_one()

    taken = await expires()
    await gate.renew("key:1")  # too early: nothing written
    assert await expires() == taken
    await asyncio.sleep(0.25)
    await gate.renew("key:1")
    assert await expires() > taken
    await gate.leave("key:1")
    async with engine.connect() as conn:
        assert (await conn.execute(select(LEASE.c.caller))).all() == []
    assert gate.running == set()
