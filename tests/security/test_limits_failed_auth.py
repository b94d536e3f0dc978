"""Finding 8: calls refused for a bad credential are limited per client address.

POST requests / servicerequestupdates / webhooks and DELETE webhooks with an unknown or
revoked api_key, and admin API calls without a valid key, count against the caller's address;
beyond ``rate_limits.failed_auth_per_minute`` that address's keyed calls are a 429 (GeoReport
error document, Retry-After) before any key is looked at. Other addresses are not affected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from app.domain.api_keys import create_key, revoke_key
from app.settings import RateLimitSettings
from tests.conftest import AppFactory, Seed, engine_of
from tests.security.limits_support import BASE, assert_too_many, caller, georeport_errors

LIMIT = 3
UNKNOWN = "0123abcd.never-issued-by-this-server-xyz"
LOCATION = {"service_code": "LITTER.BIN", "lat": "43.6534", "long": "-79.3841"}

Call = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def _post_request(http: httpx.AsyncClient, key: str, fmt: str = "json") -> httpx.Response:
    return await http.post(f"{BASE}/requests.{fmt}", data={"api_key": key, **LOCATION})


async def _post_update(http: httpx.AsyncClient, key: str) -> httpx.Response:
    data = {"api_key": key, "service_request_id": "1", "status": "closed"}
    return await http.post(f"{BASE}/servicerequestupdates.xml", data=data)


async def _post_webhook(http: httpx.AsyncClient, key: str) -> httpx.Response:
    data = {"api_key": key, "url": "https://receiver.example.org/hook"}
    return await http.post(f"{BASE}/webhooks.json", data=data)


async def _delete_webhook(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.delete(f"{BASE}/webhooks/1.json", params={"api_key": key})


async def _admin(http: httpx.AsyncClient, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await http.get("/admin/v1/keys.json", headers=headers)


SURFACES: dict[str, Call] = {
    "POST requests": _post_request,
    "POST servicerequestupdates": _post_update,
    "POST webhooks": _post_webhook,
    "DELETE webhooks": _delete_webhook,
    "admin API": _admin,
}


@pytest.fixture
async def limited(make_client: AppFactory, seeded: Seed) -> httpx.AsyncClient:
    """An app allowing LIMIT bad credentials a minute per address."""
    http: httpx.AsyncClient = await make_client(
        rate_limits=RateLimitSettings(failed_auth_per_minute=LIMIT)
    )
    return http


@pytest.mark.parametrize("surface", SURFACES)
async def test_bad_keys_are_limited_per_address(
    limited: httpx.AsyncClient, seeded: Seed, surface: str
) -> None:
    call = SURFACES[surface]
    async with engine_of(limited).begin() as conn:
        revoked, revoked_id = await create_key(conn, "Revoked app", "submit update admin")
        await revoke_key(conn, revoked_id)
    bad_keys = ["", UNKNOWN, revoked] if surface == "admin API" else [UNKNOWN, revoked, UNKNOWN]
    async with caller(limited, "198.51.100.20") as guesser:
        for key in bad_keys:
            georeport_errors(await call(guesser, key), 403)
        # Beyond the limit: refused before any key is read, whichever key it is.
        for key in (UNKNOWN, revoked, seeded.api_key):
            assert_too_many(await call(guesser, key))
    # Another address is not affected: its good key still works.
    async with caller(limited, "198.51.100.21") as neighbour:
        created = await _post_request(neighbour, seeded.api_key)
        assert created.status_code == 200, created.text
        georeport_errors(await call(neighbour, UNKNOWN), 403)


async def test_the_refusal_speaks_the_format_asked_for(
    limited: httpx.AsyncClient, seeded: Seed
) -> None:
    async with caller(limited, "198.51.100.30") as guesser:
        for _ in range(LIMIT):
            georeport_errors(await _post_request(guesser, UNKNOWN, "xml"), 403)
        for fmt in ("xml", "json"):
            refused = await _post_request(guesser, UNKNOWN, fmt)
            assert_too_many(refused)
            assert refused.url.path.endswith(fmt)


async def test_good_keys_and_reads_do_not_count(limited: httpx.AsyncClient, seeded: Seed) -> None:
    async with caller(limited, "198.51.100.40") as app:
        for _ in range(LIMIT + 2):
            assert (await _post_request(app, seeded.api_key)).status_code == 200
            # A GET with a bad key is served anonymously (and limited as anonymous).
            listed = await app.get(f"{BASE}/requests.json", params={"api_key": UNKNOWN})
            assert listed.status_code == 200
        georeport_errors(await _post_request(app, UNKNOWN), 403)
