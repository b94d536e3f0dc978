"""Finding 9: the Host header is not echoed into discovery or the Link header.

Without ``discovery.public_url`` links are built from the Host only when it names one of
``http.allowed_hosts`` (default: localhost, 127.0.0.1, ::1); any other Host is replaced by the
address the connection arrived at. With a public URL, that URL is used everywhere.
"""

from __future__ import annotations

import httpx
import pytest

from app.settings import DiscoverySettings, HttpSettings, RequestsSettings
from tests.conftest import AppFactory, Seed
from tests.security.limits_support import BASE

EVIL = "attacker.example"
FORM = {"service_code": "LITTER.BIN", "lat": "43.6534", "long": "-79.3841"}


async def _links(client: httpx.AsyncClient, seeded: Seed, host: str) -> tuple[str, str]:
    """(discovery endpoint URL, next-page Link) as answered to a call with Host ``host``."""
    discovery = await client.get(f"{BASE}/discovery.json", headers={"Host": host})
    assert discovery.status_code == 200
    urls = {e["url"] for e in discovery.json()["endpoints"]}  # GeoReport and extensions
    assert len(urls) == 1, urls
    (endpoint,) = urls
    for _ in range(2):
        created = await client.post(
            f"{BASE}/requests.json", data={"api_key": seeded.api_key, **FORM}
        )
        assert created.status_code == 200, created.text
    page = await client.get(f"{BASE}/requests.json?status=open", headers={"Host": host})
    assert page.status_code == 200
    return endpoint, page.headers["link"]


@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:8000", "evil.localhost", "[2001:db8::1]"])
async def test_an_unknown_host_is_not_echoed(
    make_client: AppFactory, seeded: Seed, host: str
) -> None:
    client = await make_client(requests=RequestsSettings(max_results=1))
    endpoint, link = await _links(client, seeded, host)
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    assert name not in endpoint
    assert name not in link
    # The address the connection arrived at (the test transport's server: testserver:80).
    assert endpoint == f"http://testserver{BASE}"
    assert link.startswith(f"<http://testserver{BASE}/requests.json?")
    assert link.endswith('>; rel="next"')
    assert "cursor=" in link


async def test_allowed_hosts_are_used(make_client: AppFactory, seeded: Seed) -> None:
    client = await make_client(requests=RequestsSettings(max_results=1))
    endpoint, link = await _links(client, seeded, "localhost:8000")
    assert endpoint == f"http://localhost:8000{BASE}"
    assert link.startswith(f"<http://localhost:8000{BASE}/requests.json?status=open&cursor=")
    named = await make_client(
        requests=RequestsSettings(max_results=1),
        http=HttpSettings(allowed_hosts=["api.example-city.gov"]),
    )
    endpoint, link = await _links(named, seeded, "API.example-city.gov")  # any case
    assert endpoint.lower() == f"http://api.example-city.gov{BASE}"
    assert link.lower().startswith(f"<http://api.example-city.gov{BASE}/requests.json?")


async def test_a_public_url_wins_over_any_host(make_client: AppFactory, seeded: Seed) -> None:
    client = await make_client(
        requests=RequestsSettings(max_results=1),
        discovery=DiscoverySettings(public_url="https://api.example-city.gov/"),
    )
    for host in (EVIL, "localhost"):
        endpoint, link = await _links(client, seeded, host)
        assert endpoint == f"https://api.example-city.gov{BASE}"
        assert link.startswith(f"<https://api.example-city.gov{BASE}/requests.json?")
