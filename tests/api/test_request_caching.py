"""HTTP caching of single requests (issue 20, point 4): GET requests/{id} carries a strong
ETag, Last-Modified (the request's updated_datetime, or a later change of its catalogue) and
the operator's Cache-Control; a conditional GET whose copy is current answers 304 without a
body. Both backends, both formats; an answer with the reporter's fields is never public."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest
from sqlalchemy import update

from app.domain.api_keys import create_key, verify_key
from app.settings import CacheSettings
from app.store.tables import ServiceRequest
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.factories import make_request

BASE = "/open311/v2"
REQUEST = ServiceRequest.__table__
FORMATS = ["json", "xml"]
UPDATED = datetime(2024, 3, 5, 14, 7, 9, 250_000, tzinfo=UTC)


async def _request(client: httpx.AsyncClient, seed: Seed, **values: object) -> int:
    return await make_request(
        engine_of(client),
        seed.jurisdiction_pk,
        seed.service_pks["POTHOLE"],
        requested_at=UPDATED - timedelta(days=1),
        updated_at=UPDATED,
        **values,
    )


@pytest.mark.parametrize("fmt", FORMATS)
async def test_validators_and_304(client: httpx.AsyncClient, seeded: Seed, fmt: str) -> None:
    pk = await _request(client, seeded)
    url = f"{BASE}/requests/{pk}.{fmt}"
    first = await client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert first.headers["cache-control"] == "no-cache"
    modified = parsedate_to_datetime(first.headers["last-modified"])
    # The request's update time (to the second), unless its catalogue changed later.
    assert modified >= UPDATED.replace(microsecond=0)

    for condition in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}):
        cached = await client.get(url, headers=condition)
        assert cached.status_code == 304, condition
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert cached.headers["cache-control"] == "no-cache"
        assert "content-type" not in cached.headers
    since = await client.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    older = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    assert (await client.get(url, headers={"If-Modified-Since": older})).status_code == 200
    other = await client.get(url, headers={"If-None-Match": '"not-it"'})
    assert other.status_code == 200
    assert other.content == first.content
    # If-None-Match wins over If-Modified-Since.
    both = {"If-None-Match": '"not-it"', "If-Modified-Since": first.headers["last-modified"]}
    assert (await client.get(url, headers=both)).status_code == 200

    # The request changes: a new tag, and the old copy is no longer current.
    async with engine_of(client).begin() as conn:
        await conn.execute(
            update(REQUEST)
            .where(REQUEST.c.id == pk)
            .values(status="closed", updated_at=UPDATED + timedelta(hours=1))
        )
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert parsedate_to_datetime(changed.headers["last-modified"]) >= modified


async def test_each_format_and_extensions_have_their_own_tag(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    pk = await _request(client, seeded)
    tags = {
        (await client.get(f"{BASE}/requests/{pk}.{fmt}", params=params)).headers["etag"]
        for fmt in FORMATS
        for params in ({}, {"extensions": "true"})
    }
    assert len(tags) == 4


async def test_an_answer_with_reporter_fields_is_private(
    make_client: AppFactory,
) -> None:
    client: httpx.AsyncClient = await make_client(
        cache=CacheSettings(request_control="public, max-age=30")
    )
    await clear(engine_of(client))
    seed = await seed_catalog(engine_of(client))
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "reader", app="reader", scopes=["read_private"])
    async with engine_of(client).connect() as conn:
        app_id = (await verify_key(conn, key)).app_id
    pk = await _request(client, seed, app_id=app_id, email="r@example.org")
    public = await client.get(f"{BASE}/requests/{pk}.json")
    assert public.headers["cache-control"] == "public, max-age=30"
    private = await client.get(f"{BASE}/requests/{pk}.json", params={"api_key": key})
    assert "reporter" in private.json()[0]
    assert private.headers["cache-control"] == "private, no-cache"
    assert private.headers["etag"] != public.headers["etag"]


async def test_errors_carry_no_validators(client: httpx.AsyncClient, seeded: Seed) -> None:
    missing = await client.get(f"{BASE}/requests/999999.json", headers={"If-None-Match": "*"})
    assert missing.status_code == 404
    assert "etag" not in missing.headers
