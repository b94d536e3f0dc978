"""Fixtures: every API test runs on PostGIS and on the embedded SQLite default.

PostGIS comes from ``OPEN311_TEST_DATABASE_URL`` (an admin DSN, e.g.
``postgresql://open311:open311@localhost:5432/postgres``). Each test session creates a fresh
database, migrates it with the real Alembic migrations and drops it at the end. Without that
variable the suite fails: a run that silently skipped PostGIS would prove nothing.
``OPEN311_TEST_BACKENDS=sqlite`` narrows a local run to SQLite on purpose (refused in CI).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.api_keys import create_key
from app.domain.catalog_files import read_catalog
from app.domain.catalog_import import upsert_jurisdiction, upsert_services
from app.main import create_app
from app.media.settings import MediaSettings
from app.settings import DatabaseSettings, Settings, WorkerSettings
from app.store.migrate import upgrade
from app.store.types import metadata

CATALOG = Path(__file__).parent / "data" / "catalog.json"
ALL_BACKENDS = ("postgis", "sqlite")
# Every table, children first, so plain DELETEs respect foreign keys on SQLite.
TABLES = tuple(reversed(metadata.sorted_tables))


def _backends() -> tuple[str, ...]:
    chosen = tuple(
        b.strip()
        for b in os.environ.get("OPEN311_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
    )
    if os.environ.get("CI") and set(chosen) != set(ALL_BACKENDS):
        raise pytest.UsageError("CI must run the suite on every backend (PostGIS and SQLite).")
    return chosen


BACKENDS = _backends()


def _admin_url() -> str:
    url = os.environ.get("OPEN311_TEST_DATABASE_URL", "")
    if not url:
        pytest.fail(
            "OPEN311_TEST_DATABASE_URL is not set, so the PostGIS tests cannot run. "
            "Use `make test` (it provisions PostgreSQL + PostGIS), or set "
            "OPEN311_TEST_BACKENDS=sqlite to run only the embedded backend on purpose.",
            pytrace=False,
        )
    return url


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgis_database() -> Iterator[str]:
    """A fresh, migrated PostGIS database for this session; its URL."""
    admin = _admin_url()
    name = f"open311_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    url = _with_database(admin, name)
    try:
        upgrade(Settings(db=DatabaseSettings(url=url)))
        yield url
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated embedded database file for this session."""
    path = tmp_path_factory.mktemp("embedded") / "open311.db"
    upgrade(Settings(db=DatabaseSettings(sqlite_path=path)))
    return path


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings for the backend under test (tests may copy and change them)."""
    if backend == "postgis":
        db = DatabaseSettings(url=request.getfixturevalue("postgis_database"), pool_size=5)
    else:
        db = DatabaseSettings(sqlite_path=request.getfixturevalue("sqlite_path"))
    # The worker never runs by itself in tests: they call it (app.domain.queue) explicitly.
    # Photos go to the test's own directory (the lifespan creates it).
    media = MediaSettings(local_dir=request.getfixturevalue("tmp_path") / "media")
    return Settings(environment="test", db=db, worker=WorkerSettings(in_process=False), media=media)


async def clear(engine: AsyncEngine) -> None:
    """Remove every row (a clean slate for one test)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in TABLES)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                await conn.execute(delete(table))


@dataclass
class Seed:
    """What the ``seeded`` fixture stored."""

    api_key: str
    api_key_id: int
    jurisdiction_pk: int
    jurisdiction_id: str
    service_pks: dict[str, int]
    catalog: dict[str, Any]


async def seed_catalog(engine: AsyncEngine, path: Path = CATALOG, code: str | None = None) -> Seed:
    """Store the test catalogue (optionally under another jurisdiction code) and a key."""
    catalog = read_catalog(path)
    if code is not None:
        catalog["jurisdiction"] = {**catalog["jurisdiction"], "jurisdiction_id": code}
    async with engine.begin() as conn:
        pk = await upsert_jurisdiction(conn, catalog["jurisdiction"])
        services = await upsert_services(conn, pk, catalog["services"])
        key, key_id = await create_key(conn, f"test app {uuid.uuid4().hex[:6]}")
    return Seed(key, key_id, pk, catalog["jurisdiction"]["jurisdiction_id"], services, catalog)


AppFactory = Callable[..., Any]


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[AppFactory]:
    """Clients on apps with changed settings: ``await make_client(multi_jurisdiction=True)``."""
    stack: list[Any] = []

    async def factory(**changes: Any) -> httpx.AsyncClient:
        app = create_app(settings.model_copy(update=changes))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        client.app = app  # type: ignore[attr-defined]
        stack.append((client, lifespan))
        return client

    yield factory
    for client, lifespan in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(make_client: AppFactory) -> httpx.AsyncClient:
    """A client on a fresh app over an emptied database."""
    http: httpx.AsyncClient = await make_client()
    await clear(engine_of(http))
    return http


def engine_of(client: httpx.AsyncClient) -> AsyncEngine:
    """The engine of the app behind a test client."""
    engine: AsyncEngine = client.app.state.open311.engine  # type: ignore[attr-defined]
    return engine


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> Seed:
    """The test catalogue (4 services of every type) and an API key."""
    return await seed_catalog(engine_of(client))
