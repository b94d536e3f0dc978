"""No acknowledged write lost: crash the database and the app mid-load, then check every answer.

A real ``open311 serve`` process takes POST requests from 8 concurrent clients (realtime and
batch services, a third of them with an Idempotency-Key). Mid-load, PostgreSQL is stopped with
``-m immediate`` (a private cluster, see ``cluster.py``) and then the app process is killed
with SIGKILL; on the embedded backend the app is killed. Both are started again, and every
submission that was answered with a ``service_request_id`` or a ``token`` must be there, with
its own text, and an Idempotency-Key replayed must give the same answer. Answers in between
may only be 200 or a spec-shaped 503 (never a 500).
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import Seed
from tests.ops.server import Server, kill, start, stop
from tests.reliability.conftest import Backend

BASE = "/open311/v2"
CLIENTS = 8
ACKED_BEFORE_CRASH = 60  # answers to collect before pulling the plug
LOCATION = {"lat": "43.6534", "long": "-79.3841"}


@dataclass(frozen=True)
class Answered:
    """A submission the server acknowledged."""

    form: dict[str, str]
    idempotency_key: str | None
    service_request_id: str | None
    token: str | None


@dataclass
class Load:
    """What the clients saw."""

    answered: list[Answered] = field(default_factory=list)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    bad: list[str] = field(default_factory=list)


async def _client(server: Server, seed: Seed, load: Load, n: int, done: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        i = 0
        while not done.is_set():
            i += 1
            form = {
                "api_key": seed.api_key,
                "service_code": "LITTER.BIN" if i % 2 else "GRAFFITI",
                "description": f"crash test client {n} request {i}",
                **LOCATION,
            }
            key = f"crash-{n}-{i}" if i % 3 == 0 else None
            headers = {"Idempotency-Key": key} if key else {}
            try:
                response = await http.post(f"{BASE}/requests.json", data=form, headers=headers)
            except httpx.TransportError:
                load.statuses["no answer"] += 1
                await asyncio.sleep(0.05)
                continue
            load.statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                (item,) = response.json()
                load.answered.append(
                    Answered(form, key, item.get("service_request_id"), item.get("token"))
                )
            elif response.status_code == 503 and response.headers.get("Retry-After"):
                assert response.json()[0]["code"] == 503
                await asyncio.sleep(0.05)
            else:
                load.bad.append(f"{response.status_code} {response.text[:200]}")


async def _verify(server: Server, load: Load) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        semaphore = asyncio.Semaphore(8)

        async def check(item: Answered) -> None:
            async with semaphore:
                if item.service_request_id:
                    got = await http.get(f"{BASE}/requests/{item.service_request_id}.json")
                    assert got.status_code == 200, (item, got.text)
                    assert got.json()[0]["description"] == item.form["description"], item
                else:
                    assert item.token, item
                    got = await http.get(f"{BASE}/tokens/{item.token}.json")
                    assert got.status_code == 200, (item, got.text)
                if item.idempotency_key:
                    again = await http.post(
                        f"{BASE}/requests.json",
                        data=item.form,
                        headers={"Idempotency-Key": item.idempotency_key},
                    )
                    assert again.status_code == 200, (item, again.text)
                    (first,) = again.json()
                    assert first.get("service_request_id") == item.service_request_id, item
                    assert first.get("token") == item.token, item

        await asyncio.gather(*(check(item) for item in load.answered))


async def test_no_acknowledged_write_is_lost(backend: Backend, tmp_path: Path) -> None:
    cluster, env = backend.cluster, backend.env
    seed = await backend.seed()

    server = await asyncio.to_thread(start, tmp_path, env)
    load, done = Load(), asyncio.Event()
    clients = [asyncio.create_task(_client(server, seed, load, n, done)) for n in range(CLIENTS)]
    try:
        for _ in range(600):
            if len(load.answered) >= ACKED_BEFORE_CRASH:
                break
            await asyncio.sleep(0.05)
        assert len(load.answered) >= ACKED_BEFORE_CRASH, (load.statuses, server.log_lines()[-20:])
        # Pull the plug mid-load: the database first (the app keeps answering, with 503s),
        # then the app itself.
        if cluster is not None:
            await asyncio.to_thread(cluster.crash)
            await asyncio.sleep(0.5)
        await asyncio.to_thread(kill, server.process)
        await asyncio.sleep(0.3)
    finally:
        done.set()
        await asyncio.gather(*clients, return_exceptions=False)
        stop(server.process)
    assert not load.bad, load.bad[:5]
    assert load.statuses["no answer"] > 0, load.statuses  # the crash did hit requests in flight
    if cluster is not None:
        assert load.statuses["503"] > 0, load.statuses  # the app answered while it was down

    if cluster is not None:
        await asyncio.to_thread(cluster.start)
    server = await asyncio.to_thread(start, tmp_path, env)
    try:
        await _verify(server, load)
    finally:
        stop(server.process)
