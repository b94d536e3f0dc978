"""One app's slow webhook endpoint cannot starve the worker or the other apps' deliveries.

App A's receiver (real HTTP on loopback) accepts requests and never answers; app B's answers
at once. The real worker loop runs with a long delivery timeout (30 s, so the deadline is
60 s): A may hold only its ``per_app_concurrency`` slots, and B's delivery still arrives
promptly. Bounded: every wait here is at most a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
from sqlalchemy import select

from app.settings import Settings, WebhookSettings, WorkerSettings
from app.store.tables import WebhookDelivery
from app.worker import Worker
from tests.conftest import Seed, engine_of
from tests.lifecycle.test_webhooks import (
    _app_id,
    _other_app_key,
    _store_update,
    _subscribe,
)
from tests.support import Receiver

DELIVERY = WebhookDelivery.__table__


async def _serve(receiver: Receiver) -> asyncio.Server:
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    return server


async def until(check: Any, within: float, step: float = 0.05) -> None:
    """Poll ``check()`` (a value or an awaitable of one) until true; fail after ``within`` s."""
    for _ in range(max(1, round(within / step))):
        result = check()
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {within} s")


async def _states(engine: Any) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(DELIVERY.c.state))).scalars().all())


async def _delivered(engine: Any, at_least: int) -> bool:
    return (await _states(engine)).count("delivered") >= at_least


async def test_a_hanging_endpoint_holds_only_its_own_slots(
    client: httpx.AsyncClient, seeded: Seed, settings: Settings
) -> None:
    engine = engine_of(client)
    slow, fast = Receiver(hold=asyncio.Event()), Receiver()
    servers = [await _serve(slow), await _serve(fast)]
    slow_app, _, _ = await _subscribe(engine, seeded.api_key, slow.url)
    other_key = await _other_app_key(engine)
    fast_app, _, _ = await _subscribe(engine, other_key, fast.url)
    assert fast_app == await _app_id(engine, other_key) != slow_app
    for n in range(5):
        await _store_update(engine, seeded, slow_app, note=f"Slow {n}")

    run = settings.model_copy(
        update={
            "worker": WorkerSettings(in_process=False, poll_seconds=0.05, webhook_timeout_s=30),
            "webhooks": WebhookSettings(
                allow_private_targets=True, concurrency=10, per_app_concurrency=2
            ),
        }
    )

    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(engine, run).run(stop))
    try:
        await until(lambda: len(slow.requests) >= 2, within=5)
        await asyncio.sleep(0.5)  # many passes of the loop
        # The hanging app holds its two slots and no more.
        assert len(slow.requests) == 2

        # Another app's update made now is delivered at once, not after A's 60 s deadline.
        await _store_update(engine, seeded, fast_app, note="Fast")
        await until(lambda: len(fast.requests) == 1, within=5)
        await until(lambda: _delivered(engine, at_least=1), within=5)
        assert len(slow.requests) == 2

        # Once A answers again its backlog drains, two at a time.
        slow.hold.set()  # type: ignore[union-attr]
        await until(lambda: len(slow.requests) == 5, within=10)
        await until(lambda: _delivered(engine, at_least=6), within=10)
        assert len(await _states(engine)) == 6
    finally:
        if slow.hold is not None:
            slow.hold.set()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(worker, 15)
        for server in servers:
            server.close()
            await server.wait_closed()
