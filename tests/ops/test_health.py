"""Health endpoints, request ids and the per-request log line (in process)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.main import create_app
from app.observability import JsonFormatter, TextFormatter, sane_request_id
from app.settings import DatabaseSettings, Settings, WorkerSettings
from tests.ops.test_metrics import scrape, value

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/health/ready"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"
    # Outside the GeoReport base path, and not GeoReport documents.
    assert (await client.get("/open311/v2/health/live")).status_code == 404


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose PostgreSQL server does not exist (nothing listens on port 1)."""
    settings = Settings(
        environment="test",
        db=DatabaseSettings(url="postgresql://x:y@127.0.0.1:1/none"),
        worker=WorkerSettings(in_process=False),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_not_ready_without_a_database(unreachable: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await unreachable.get("/health/ready")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert int(response.headers["retry-after"]) > 0
    live = await unreachable.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    # Metrics still answer, saying the database gauges are missing.
    samples = await scrape(unreachable)
    assert value(samples, "open311_database_up") == 0
    assert not any(name == "open311_queue_depth" for name, _ in samples)


async def test_request_ids(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "edge-7f3a:42"})
    assert given.headers["x-request-id"] == "edge-7f3a:42"
    made = {(await client.get("/health/live")).headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3
    assert all(HEX_ID.match(i) for i in made)
    # Ids unsafe to log or too long are replaced, on errors too.
    for bad in ("has space", "x" * 200, "<script>", "-leading-dash"):
        response = await client.get("/open311/v2/nope.json", headers={"X-Request-ID": bad})
        assert response.status_code == 404
        assert HEX_ID.match(response.headers["x-request-id"]), bad
    assert sane_request_id("a" * 128) == "a" * 128
    assert sane_request_id("") is None
    assert sane_request_id("abc\n") is None
    assert sane_request_id("a" * 129) is None


async def test_one_structured_line_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="open311.access")
    response = await client.get(
        "/open311/v2/services.json?x=1", headers={"X-Request-ID": "trace-1"}
    )
    assert response.status_code in (200, 404)
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == "trace-1"]
    assert len(lines) == 1
    record = lines[0]
    assert record.name == "open311.access"
    data = json.loads(JsonFormatter().format(record))
    assert data["level"] == "info"
    assert data["request_id"] == "trace-1"
    assert (data["method"], data["path"], data["status"]) == (
        "GET",
        "/open311/v2/services.json",
        response.status_code,
    )
    assert data["endpoint"] == "/open311/v2/services.{format}"
    assert isinstance(data["duration_ms"], float)
    assert data["duration_ms"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", data["time"])
    text = TextFormatter().format(record)
    assert "[trace-1] GET /open311/v2/services.json" in text
    assert f"status={response.status_code}" in text
    assert "\n" not in text
