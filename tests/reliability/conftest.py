"""Fixtures of the process-level reliability tests: a backend a real server process can use."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.settings import DatabaseSettings, Settings
from app.store.engine import make_engine
from app.store.migrate import upgrade
from tests.conftest import BACKENDS, Seed, seed_catalog
from tests.ops.server import cli_env
from tests.reliability.cluster import Cluster


@dataclass(frozen=True)
class Backend:
    """A migrated database for an ``open311 serve`` process: its environment and settings."""

    name: str
    env: dict[str, str]
    settings: Settings
    cluster: Cluster | None  # the private PostgreSQL cluster on PostGIS

    async def seed(self) -> Seed:
        """Migrate, then store the test catalogue and a key."""
        await asyncio.to_thread(upgrade, self.settings)
        engine = make_engine(self.settings)
        try:
            return await seed_catalog(engine)
        finally:
            await engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend; PostGIS is a private cluster the test may crash (removed afterwards).

    Rate limits are out of the way: these tests measure the server, not its limits.
    """
    extra = {
        "OPEN311_RATE_LIMITS__PER_KEY_PER_MINUTE": "1000000",
        "OPEN311_RATE_LIMITS__ANONYMOUS_PER_MINUTE": "0",
    }
    if request.param != "postgis":
        settings = Settings(db=DatabaseSettings(sqlite_path=tmp_path / "open311.db"))
        yield Backend(request.param, cli_env(tmp_path, **extra), settings, None)
        return
    cluster = Cluster()
    try:
        cluster.init()
        cluster.start()
        extra["OPEN311_DB__URL"] = cluster.url
        settings = Settings(db=DatabaseSettings(url=cluster.url))
        yield Backend(request.param, cli_env(tmp_path, **extra), settings, cluster)
    finally:
        cluster.stop()
