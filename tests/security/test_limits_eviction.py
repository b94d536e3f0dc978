"""Finding 8: the anonymous limiter forgets fairly when it tracks too many addresses.

It used to wipe every counter once its table was full, so a flood of new addresses reset a
client that was being limited. Now the buckets that will be full again soonest go first: a
limited client, which owes the most, is remembered while the flood is forgotten. The table
size is the setting ``rate_limits.max_tracked_clients`` (small here, so the flood is too).
"""

from __future__ import annotations

import httpx

from app.settings import HttpSettings, RateLimitSettings
from tests.conftest import AppFactory
from tests.security.limits_support import BASE, assert_too_many

TRACKED = 50
LIMIT = 2


async def test_a_flood_of_new_addresses_does_not_reset_a_limited_client(
    make_client: AppFactory,
) -> None:
    # Addresses come from X-Forwarded-For, believed from the test transport's 127.0.0.1.
    client: httpx.AsyncClient = await make_client(
        http=HttpSettings(trusted_proxies=["127.0.0.1"]),
        rate_limits=RateLimitSettings(anonymous_per_minute=LIMIT, max_tracked_clients=TRACKED),
    )

    async def get(address: str) -> httpx.Response:
        return await client.get(f"{BASE}/discovery.json", headers={"X-Forwarded-For": address})

    limited = "198.51.100.1"
    for _ in range(LIMIT):
        assert (await get(limited)).status_code == 200
    assert_too_many(await get(limited))
    # Three times as many new addresses as the table holds, one call each.
    for n in range(3 * TRACKED):
        flood = await get(f"10.{n // 250}.{n % 250}.1")
        assert flood.status_code == 200, n
    # Still limited: the flood did not wipe or push out its bucket.
    assert_too_many(await get(limited))
    # And the table stayed bounded (every new address was still served above).
    assert len(client.app.state.open311.limiter.memory) <= TRACKED  # type: ignore[attr-defined]
