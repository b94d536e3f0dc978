"""The database going away and coming back: spec-shaped 503s fast, recovery without restart.

A small TCP proxy on loopback sits between the app and PostgreSQL; cutting it (closing every
connection and refusing new ones) is the outage, restoring it is the database returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from app.main import create_app
from app.settings import DatabaseSettings, Settings, WorkerSettings
from tests.conftest import Seed, seed_catalog
from tests.support import JSON_TYPE, XML_TYPE, error_descriptions, xml_to_value


class Proxy:
    """A loopback TCP proxy that can be cut and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.up = True
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    def cut(self) -> None:
        """The database goes away: every connection drops, new ones are refused."""
        self.up = False
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    def restore(self) -> None:
        """The database is back."""
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.pipes):
            task.cancel()


@pytest.fixture
async def proxied(
    postgis_database: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, Proxy, Seed]]:
    parts = urlsplit(postgis_database)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await proxy.start()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    settings = Settings(
        environment="test",
        db=DatabaseSettings(url=url, pool_size=4, max_overflow=0),
        worker=WorkerSettings(in_process=False),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        from tests.conftest import clear

        engine = app.state.open311.engine
        await clear(engine)
        seed = await seed_catalog(engine)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, proxy, seed
    await proxy.close()


# (method, path, needs the database now). The catalogue is cached in process for a few
# seconds, so services and definitions may still be served during a short outage.
CALLS = [
    ("GET", "services", False),
    ("GET", "services/POTHOLE", False),
    ("GET", "requests", True),
    ("GET", "requests/1", True),
    ("GET", "tokens/abc", True),
    ("POST", "requests", True),
]


async def _call(client: httpx.AsyncClient, method: str, path: str, fmt: str, seed: Seed):
    data = None
    if method == "POST":
        data = {
            "api_key": seed.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.6534",
            "long": "-79.3841",
        }
    return await client.request(method, f"/open311/v2/{path}.{fmt}", data=data)


async def test_outage_gives_fast_503_then_recovers(
    proxied: tuple[httpx.AsyncClient, Proxy, Seed],
) -> None:
    client, proxy, seed = proxied
    # Warm up: every call works and the pool holds live connections.
    for method, path, _ in CALLS:
        response = await _call(client, method, path, "json", seed)
        assert response.status_code < 500, response.text

    proxy.cut()
    for method, path, needs_db in CALLS:
        for fmt in ("json", "xml"):
            started = time.monotonic()
            response = await _call(client, method, path, fmt, seed)
            elapsed = time.monotonic() - started
            if not needs_db and response.status_code == 200:
                continue  # answered from the in-process catalogue cache
            assert response.status_code == 503, (method, path, fmt, response.text)
            assert elapsed < 1.0, (method, path, fmt, elapsed)
            assert response.headers["retry-after"] == "1"
            if fmt == "json":
                assert response.headers["content-type"] == JSON_TYPE
                (description,) = error_descriptions(response.json())
                assert "unavailable" in description
                assert response.json()[0]["code"] == 503
            else:
                assert response.headers["content-type"] == XML_TYPE
                root, value = xml_to_value(response.content)
                assert root == "errors"
                assert value[0]["code"] == "503"

    proxy.restore()
    started = time.monotonic()
    while True:
        response = await _call(client, "GET", "services", "json", seed)
        if response.status_code == 200:
            break
        assert time.monotonic() - started < 2.0, "no recovery within 2 s of the database's return"
        await asyncio.sleep(0.05)
    for method, path, _ in CALLS:
        response = await _call(client, method, path, "xml", seed)
        assert response.status_code < 500, (method, path, response.text)
