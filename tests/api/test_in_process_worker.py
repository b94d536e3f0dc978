"""The server runs the worker itself by default, on both backends (issue 21, point 1).

A newcomer who follows the README (``open311 migrate`` then ``open311 serve``) runs no
separate worker: batch-service tokens must still resolve. Docker compose runs a dedicated
worker and turns the in-process loop off (checked in tests/ops/test_compose.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from app.settings import DatabaseSettings, Settings, WorkerSettings
from app.store.engine import make_engine
from app.worker import Worker
from tests.conftest import AppFactory, engine_of, seed_catalog
from tests.ops.server import free_port
from tests.support import fetch_both


def test_the_worker_runs_in_process_by_default() -> None:
    assert WorkerSettings().in_process is True
    assert Settings(db={"url": "postgresql://u:p@db/open311"}).worker.in_process is True


async def test_a_batch_token_resolves_with_only_the_server_running(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    # ``client`` emptied the database (before any worker loop runs: TRUNCATE would wait on it).
    seed = await seed_catalog(engine_of(client))
    # The default worker settings (only the idle poll shortened); the test never calls it.
    http = await make_client(worker=WorkerSettings(poll_seconds=0.1))

    posted = await http.post(
        "/open311/v2/requests.json",
        data={
            "api_key": seed.api_key,
            "service_code": "GRAFFITI",
            "lat": "43.6534",
            "long": "-79.3841",
            "description": "Tag on the bridge",
        },
    )
    assert posted.status_code == 200, posted.text
    [answer] = posted.json()
    token = answer["token"]
    assert token
    assert answer.get("service_request_id") is None

    deadline = time.monotonic() + 30
    while True:
        # One format while waiting: the worker may resolve the token between two calls.
        polled = await http.get(f"/open311/v2/tokens/{token}.json")
        request_id = polled.json()[0]["service_request_id"]
        if request_id is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert request_id is not None, "the token stayed pending: no worker ran in the server"
    both = await fetch_both(http, f"tokens/{token}")
    assert both.xml == both.json == [{"service_request_id": request_id, "token": token}]

    request = await fetch_both(http, f"requests/{request_id}")
    assert request.json[0]["service_code"] == "GRAFFITI"
    assert request.json[0]["description"] == "Tag on the bridge"


async def test_a_database_outage_is_logged_once_not_every_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every server process runs the loop now: an outage must not print a traceback per poll.
    settings = Settings(
        db=DatabaseSettings(url=f"postgresql://u:p@127.0.0.1:{free_port()}/db"),
        worker=WorkerSettings(poll_seconds=0.01),
    )
    engine = make_engine(settings, null_pool=True)
    stop = asyncio.Event()
    try:
        with caplog.at_level(logging.INFO, logger="open311.worker"):
            task = asyncio.create_task(Worker(engine, settings).run(stop))
            await asyncio.sleep(1.0)  # dozens of failed passes
            stop.set()
            await asyncio.wait_for(task, 10)
    finally:
        await engine.dispose()
    records = [r for r in caplog.records if r.name == "open311.worker"]
    assert [(r.levelname, r.getMessage()) for r in records] == [("ERROR", "worker pass failed")]
    assert records[0].exc_info is not None
