"""Finding 9: /metrics and /health/ready are not public; /health/live is.

They answer callers on loopback that came through no proxy (the container's healthcheck, a
Prometheus on the same host) and callers sending ``Authorization: Bearer <metrics.api_key>``;
anyone else gets a 403 GeoReport error document.
"""

from __future__ import annotations

import httpx
import pytest

from app.settings import MetricsSettings
from tests.conftest import AppFactory
from tests.security.limits_support import caller, georeport_errors

GUARDED = ("/metrics", "/health/ready")
SECRET = "scrape-secret-4f9c2a7e1b"  # noqa: S105 - a test value, not a secret


@pytest.mark.parametrize("path", GUARDED)
async def test_remote_callers_are_refused(client: httpx.AsyncClient, path: str) -> None:
    async with caller(client, "203.0.113.9") as remote:
        (description,) = georeport_errors(await remote.get(path), 403)
        assert "OPEN311_METRICS__API_KEY" in description
        live = await remote.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
    # A caller on loopback may look, unless it came through a proxy (which makes everyone
    # look local).
    assert (await client.get(path)).status_code == 200
    proxied = await client.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
    georeport_errors(proxied, 403)


@pytest.mark.parametrize("path", GUARDED)
async def test_the_metrics_key_opens_them_from_anywhere(make_client: AppFactory, path: str) -> None:
    client = await make_client(metrics=MetricsSettings(api_key=SECRET))
    async with caller(client, "203.0.113.9") as remote:
        opened = await remote.get(path, headers={"Authorization": f"Bearer {SECRET}"})
        assert opened.status_code == 200
        for wrong in (f"Bearer {SECRET}x", f"Basic {SECRET}", "Bearer ", SECRET):
            georeport_errors(await remote.get(path, headers={"Authorization": wrong}), 403)
