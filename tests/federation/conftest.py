"""A second instance of our own server as the partner city, in process.

The partner runs ``create_app`` on its own database (one more PostGIS database, or a second
SQLite file) seeded with the test catalogue, and is reached over real HTTP semantics through
``httpx.ASGITransport`` mounted into the federation HTTP client.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.api_keys import create_key
from app.federation.service import Federation
from app.main import create_app
from app.settings import DatabaseSettings, FederationSettings, Settings, WorkerSettings
from app.store.migrate import upgrade
from tests.conftest import Seed, _admin_url, _with_database, clear, engine_of, seed_catalog

PARTNER_URL = "http://partner-a.test/open311/v2"
PARTNER_HOST = "http://partner-a.test"
PARTNER_JURISDICTION = "test.example.org"  # tests/data/catalog.json
REMOTE = "partner-a.example.net"  # our code for the remote jurisdiction
BASE = "/open311/v2"


@pytest.fixture(scope="session")
def partner_postgis_database() -> Iterator[str]:
    """One more fresh, migrated PostGIS database (the partner's)."""
    admin = _admin_url()
    name = f"open311_partner_{uuid.uuid4().hex[:10]}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = _with_database(admin, name)
    try:
        upgrade(Settings(db=DatabaseSettings(url=url)))
        yield url
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def partner_sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second migrated embedded database file (the partner's)."""
    path = tmp_path_factory.mktemp("partner") / "partner.db"
    upgrade(Settings(db=DatabaseSettings(sqlite_path=path)))
    return path


@dataclass
class Partner:
    """The partner server: its app, a direct client, the transport we mount, its seed."""

    app: Any
    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    seed: Seed
    engine: AsyncEngine
    settings: Settings


@pytest.fixture
def partner_settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings of the partner instance (same backend as ours, its own database)."""
    if backend == "postgis":
        db = DatabaseSettings(url=request.getfixturevalue("partner_postgis_database"), pool_size=5)
    else:
        db = DatabaseSettings(sqlite_path=request.getfixturevalue("partner_sqlite_path"))
    return Settings(environment="test", db=db, worker=WorkerSettings(in_process=False))


@pytest.fixture
async def partner(partner_settings: Settings) -> AsyncIterator[Partner]:
    """The partner instance, emptied and seeded with the test catalogue."""
    settings = partner_settings
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    http = httpx.AsyncClient(transport=transport, base_url=PARTNER_HOST)
    http.app = app  # type: ignore[attr-defined]
    engine = engine_of(http)
    await clear(engine)
    seed = await seed_catalog(engine)
    try:
        yield Partner(app, http, transport, seed, engine, settings)
    finally:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


def fed_settings(client: httpx.AsyncClient, **changes: Any) -> Settings:
    """Our app's settings with federation settings changed (fast retries for tests)."""
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    federation = FederationSettings(**{"retry_base_s": 0.05, "retry_max_s": 0.2, **changes})
    return settings.model_copy(update={"federation": federation})


@pytest.fixture
async def make_federation(
    client: httpx.AsyncClient,
) -> AsyncIterator[Any]:
    """``make_federation(mounts, **federation_settings)``: a Federation on our database."""
    made: list[Federation] = []

    def factory(mounts: dict[str, httpx.AsyncBaseTransport], **changes: Any) -> Federation:
        federation = Federation(engine_of(client), fed_settings(client, **changes), mounts=mounts)
        made.append(federation)
        return federation

    yield factory
    for federation in made:
        await federation.aclose()


@pytest.fixture
async def our_key(client: httpx.AsyncClient) -> str:
    """An API key of our server (clients post to us with it)."""
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, f"our app {uuid.uuid4().hex[:6]}")
    return key


@pytest.fixture
async def admin_key(client: httpx.AsyncClient) -> str:
    """An admin API key of our server (the live probe ``?check=true`` needs one)."""
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, f"operator {uuid.uuid4().hex[:6]}", scopes="admin")
    return key


def invalidate(client: httpx.AsyncClient) -> None:
    """Drop our app's 5-second jurisdiction and catalogue caches (after operator changes)."""
    state = client.app.state.open311  # type: ignore[attr-defined]
    state.jurisdictions.invalidate()
    state.catalogs.invalidate()
