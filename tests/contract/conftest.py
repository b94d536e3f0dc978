"""Fixtures of the contract tests: the app on a seeded database, loaded by schemathesis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from schemathesis.python import asgi as schemathesis_asgi

from app.domain.api_keys import create_key
from app.main import create_app
from app.settings import RateLimitSettings, Settings
from tests.conftest import Seed, engine_of

BASE = "/open311/v2"
# A key with a known value, so generated POSTs can carry a valid one (see the before_call hook).
CONTRACT_KEY = "contract-tests-key-2c1f9e7a"


def contract_settings(settings: Settings) -> Settings:
    """The settings of the app under contract test: rate limits out of the fuzzer's way."""
    return settings.model_copy(
        update={
            "rate_limits": RateLimitSettings(per_key_per_minute=1_000_000, anonymous_per_minute=0)
        }
    )


async def _post(client: httpx.AsyncClient, fields: list[tuple[str, str]]) -> Any:
    response = await client.post(f"{BASE}/requests.json", data=dict(fields))
    assert response.status_code == 200, response.text
    return response.json()[0]


@pytest.fixture
async def contract_app(
    client: httpx.AsyncClient, seeded: Seed, settings: Settings
) -> AsyncIterator[FastAPI]:
    """A fresh app over the test catalogue, a known key and a few stored requests.

    Schemathesis runs the app (and its lifespan) in its own event loop thread, so the app of
    the ``client`` fixture, bound to the test loop, only seeds the data.
    """
    async with engine_of(client).begin() as conn:
        await create_key(conn, "contract tests", CONTRACT_KEY)
    common = [("api_key", seeded.api_key), ("lat", "43.6534"), ("long", "-79.3841")]
    await _post(client, [*common, ("service_code", "LITTER.BIN"), ("description", "Full bin")])
    await _post(client, [*common, ("service_code", "GRAFFITI")])
    await _post(client, [*common, ("service_code", "FEEDBACK"), ("address_string", "City Hall")])
    app = create_app(contract_settings(settings))
    yield app
    # Stop the lifespan schemathesis started for this app (it would live until exit).
    schemathesis_asgi.shutdown_lifespans()
