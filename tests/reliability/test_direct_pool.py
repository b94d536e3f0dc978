"""The hot path's connections (``app.store.engine.Direct``, borrowing from the engine's pool,
the process's one pool): a wait for a connection ≤ pool_timeout.

Once every connection is taken, the next call waits at most ``db.pool_timeout`` and fails as
"database unavailable" (a 503 at the edge), and the pool serves calls again once a connection
is back.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from app.settings import DatabaseSettings, Settings
from app.store.engine import Direct, is_unavailable, make_engine

SLOW = text("SELECT pg_sleep(30) IS NULL AS slept -- direct-pool-test")
QUICK = text("SELECT 41 + 1 AS answer")


async def _await_sleeping(dsn: str, count: int, failure: str) -> None:
    """Wait until the server runs exactly ``count`` of the slow statements (else fail)."""
    for _ in range(200):
        connection = await asyncpg.connect(dsn)
        try:
            running = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%direct-pool-test%' AND pid <> pg_backend_pid()"
            )
        finally:
            await connection.close()
        if running == count:
            return
        await asyncio.sleep(0.05)
    pytest.fail(failure)


async def test_a_call_waits_at_most_pool_timeout_when_every_connection_is_taken(
    postgis_database: str,
) -> None:
    settings = Settings(
        environment="test",
        db=DatabaseSettings(url=postgis_database, pool_size=2, max_overflow=0, pool_timeout=0.3),
    )
    engine = make_engine(settings)
    direct = Direct(engine, settings)
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    slow = [asyncio.create_task(direct.fetch(SLOW, {})) for _ in range(2)]
    try:
        # Both connections are busy once both sleeps run on the server.
        await _await_sleeping(dsn, 2, "the two slow statements never ran")

        with pytest.raises(TimeoutError) as refused:
            await direct.fetch(QUICK, {})
        assert is_unavailable(refused.value)

        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        # asyncpg cancels the statements server side as the tasks are cancelled; the pool then
        # serves calls again, every slot free.
        answers = await asyncio.gather(*(direct.fetch(QUICK, {}) for _ in range(4)))
        assert [rows[0][0] for rows in answers] == [42, 42, 42, 42]
        await _await_sleeping(dsn, 0, "the cancelled statements still run on the server")
    finally:
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        await engine.dispose()
