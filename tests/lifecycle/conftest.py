"""Fixtures of the lifecycle tests: the webhook receiver on loopback and the worker's HTTP
client that may reach it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.domain import webhooks
from app.settings import Settings
from tests.support import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver on a free loopback port."""
    state = Receiver()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The worker's real HTTP client, allowed to reach the receiver on loopback."""
    allowed = settings.webhooks.model_copy(update={"allow_private_targets": True})
    async with webhooks.delivery_client(
        settings.model_copy(update={"webhooks": allowed}), timeout=2.0
    ) as client:
        yield client
