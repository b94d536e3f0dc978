"""Fixtures of the contract tests: one app over a seeded database for a whole module.

Every operation's cases then run against the same server state, which grows as the cases
write, like a real server's; seeding once also keeps the suite fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from schemathesis.python import asgi as schemathesis_asgi

from app.domain.api_keys import create_key
from app.main import create_app
from app.settings import DatabaseSettings, RateLimitSettings, Settings, WorkerSettings
from app.store.engine import make_engine
from tests.conftest import BACKENDS, clear, seed_catalog

BASE = "/open311/v2"
# A key with a known value, so generated POSTs can carry a valid one (see the before_call hook).
CONTRACT_KEY = "contract-tests-key-2c1f9e7a"
# An admin key, sent as the Authorization header of the admin API's cases.
ADMIN_KEY = "contract-tests-admin-7d41b0c3"
# Ids of the keys the cases must not revoke or rotate away (filled in by the seeding).
PROTECTED_KEY_IDS: set[int] = set()
# Ids of the requests the seeding created.
SEEDED_REQUEST_IDS: set[str] = set()


@pytest.fixture(scope="module", params=BACKENDS)
def contract_settings(request: pytest.FixtureRequest) -> Settings:
    """Test settings on each backend (PostGIS first), rate limits out of the fuzzer's way, and
    no worker in the app (as in every other test): a background pass that resolves a batch
    token or refreshes rollups between a scenario and its replay changes the answers the
    state machine draws from (hypothesis: FlakyStrategyDefinition)."""
    if request.param == "postgis":
        db = DatabaseSettings(url=request.getfixturevalue("postgis_database"), pool_size=5)
    else:
        db = DatabaseSettings(sqlite_path=request.getfixturevalue("sqlite_path"))
    return Settings(
        environment="test",
        db=db,
        rate_limits=RateLimitSettings(
            per_key_per_minute=1_000_000, anonymous_per_minute=0, failed_auth_per_minute=0
        ),
        worker=WorkerSettings(in_process=False),
    )


async def _seed(settings: Settings) -> None:
    """The test catalogue, the known key and three requests (realtime, batch, blackbox)."""
    engine = make_engine(settings)
    try:
        await clear(engine)
        seed = await seed_catalog(engine)
        PROTECTED_KEY_IDS.clear()
        SEEDED_REQUEST_IDS.clear()
        async with engine.begin() as conn:
            for name, key, scopes in (
                ("contract tests", CONTRACT_KEY, ["submit"]),
                ("contract admin", ADMIN_KEY, ["admin"]),
            ):
                _, key_id = await create_key(conn, name, key, scopes=scopes)
                PROTECTED_KEY_IDS.add(key_id)
    finally:
        await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seed") as http:
            common = {"api_key": seed.api_key, "lat": "43.6534", "long": "-79.3841"}
            for fields in (
                {"service_code": "LITTER.BIN", "description": "Full bin"},
                {"service_code": "GRAFFITI"},
                {"service_code": "FEEDBACK", "address_string": "City Hall"},
            ):
                response = await http.post(f"{BASE}/requests.json", data={**common, **fields})
                assert response.status_code == 200, response.text
                SEEDED_REQUEST_IDS.update(
                    item["service_request_id"]
                    for item in response.json()
                    if item.get("service_request_id")
                )


@pytest.fixture(scope="module")
async def contract_app(contract_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app under test over the seeded database.

    Schemathesis runs it (and its lifespan) in its own event loop thread; the seeding above
    uses another app instance in the test loop.
    """
    await _seed(contract_settings)
    yield create_app(contract_settings)
    # Stop the lifespan schemathesis started for the app (it would live until exit).
    schemathesis_asgi.shutdown_lifespans()
