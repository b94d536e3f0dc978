"""Finding 9: forged cursors and huge id lists are a 400, never a database error.

A cursor carrying a 30-digit id was a 500 (on PostgreSQL a 503, as if the database were
down); more than 32,766 ids overflowed SQLite's bound-parameter limit (500). Every list
filter now takes at most ``requests.max_results`` values.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from app.settings import RequestsSettings
from tests.conftest import AppFactory, Seed
from tests.security.limits_support import BASE, georeport_errors, raw_get


def _cursor(**fields: object) -> str:
    values = {"k": "r", "t": "2024-05-01T12:00:00+00:00", "i": 7, **fields}
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


FORGED = {
    "30-digit id": _cursor(i=123456789012345678901234567890),
    "id beyond 64 bits": _cursor(i=2**63),
    "negative id": _cursor(i=-(2**63) - 1),
    "id as text": _cursor(i="123456789012345678901234567890"),
    "time before year 1 in UTC": _cursor(t="0001-01-01T00:00:00+14:00"),
    "time after 9999 in UTC": _cursor(t="9999-12-31T23:59:59-14:00"),
    "very long": "A" * 5000,
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("name", FORGED)
async def test_forged_cursor_is_a_400(
    client: httpx.AsyncClient, seeded: Seed, name: str, fmt: str
) -> None:
    response = await client.get(f"{BASE}/requests.{fmt}", params={"cursor": FORGED[name]})
    (description,) = georeport_errors(response, 400)
    assert "cursor" in description


async def test_a_real_cursor_still_pages(make_client: AppFactory, seeded: Seed) -> None:
    small = await make_client(requests=RequestsSettings(max_results=1))
    for _ in range(2):
        form = {"api_key": seeded.api_key, "service_code": "LITTER.BIN"}
        created = await small.post(
            f"{BASE}/requests.json", data={**form, "lat": "43.6534", "long": "-79.3841"}
        )
        assert created.status_code == 200, created.text
    first = await small.get(f"{BASE}/requests.json")
    assert len(first.json()) == 1
    second = await small.get(
        f"{BASE}/requests.json", params={"cursor": first.headers["x-next-cursor"]}
    )
    assert second.status_code == 200
    assert second.json()[0]["service_request_id"] != first.json()[0]["service_request_id"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_more_ids_than_sqlite_can_bind_are_refused(
    client: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    ids = ",".join(str(n) for n in range(1, 32_768)).encode()
    response = await raw_get(client, f"{BASE}/requests.{fmt}", b"service_request_id=" + ids)
    # 400 for the list (or 414 where the URL itself is too long): never a 500.
    assert response.status_code in (400, 414), response.text[:300]
    georeport_errors(response, response.status_code)


@pytest.mark.parametrize("parameter", ["service_request_id", "service_code", "ward"])
async def test_every_list_filter_is_bounded_at_max_results(
    client: httpx.AsyncClient, seeded: Seed, parameter: str
) -> None:
    limit = 1000  # requests.max_results (default)
    values = ",".join(str(n) for n in range(1, limit + 2))
    (description,) = georeport_errors(
        await client.get(f"{BASE}/requests.json", params={parameter: values}), 400
    )
    assert parameter in description
    # At the bound (and with repeats beyond it) the list is served.
    at_bound = ",".join(str(n) for n in range(1, limit + 1)) + ",1,2,3"
    served = await client.get(f"{BASE}/requests.json", params={parameter: at_bound})
    assert served.status_code == 200, served.text[:300]
