"""Findings 4 and 6: no key reaches what it does not own.

- An ``update`` key changes only requests its own app submitted (a sandbox key, or another
  app's key, can neither close a real public request nor write its public notes).
- An admin key restricted to one jurisdiction cannot mint an unrestricted key, change other
  cities' requests or reset other cities' sandboxes; every key it creates inherits its
  restriction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.domain.api_keys import create_key, verify_key
from app.store.tables import ServiceRequest
from tests.conftest import Seed, engine_of, seed_catalog
from tests.factories import make_request

BASE = "/open311/v2"
REQUEST = ServiceRequest.__table__
OTHER_CITY = "other.example.org"


async def _key(client: httpx.AsyncClient, app: str, **options: Any) -> str:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, app, app=app, **options)
    return key


async def _app_id(client: httpx.AsyncClient, key: str) -> int:
    async with engine_of(client).connect() as conn:
        app_id = (await verify_key(conn, key)).app_id
    assert app_id is not None
    return app_id


async def _row(client: httpx.AsyncClient, request_id: int) -> Any:
    async with engine_of(client).connect() as conn:
        return (
            await conn.execute(
                select(REQUEST.c.status, REQUEST.c.status_notes).where(REQUEST.c.id == request_id)
            )
        ).first()


def _update_form(seed: Seed, key: str, request_id: int) -> dict[str, str]:
    return {
        "api_key": key,
        "jurisdiction_id": seed.jurisdiction_id,
        "service_request_id": str(request_id),
        "update_id": uuid.uuid4().hex,
        "updated_datetime": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "CLOSED",
        "description": "Closed by someone who does not own it.",
    }


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_update_keys_change_only_their_apps_requests(
    client: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    owner = await _key(client, "Owner app", scopes=["submit", "update"])
    stranger = await _key(client, "Another app", scopes=["submit", "update"])
    owners_sandbox = await _key(client, "Owner app", scopes=["update"], sandbox=True)
    public = await make_request(
        engine_of(client),
        seeded.jurisdiction_pk,
        seeded.service_pks["POTHOLE"],
        app_id=await _app_id(client, owner),
    )
    for intruder, refused in ((stranger, 403), (owners_sandbox, 404)):
        response = await client.post(
            f"{BASE}/servicerequestupdates.{fmt}", data=_update_form(seeded, intruder, public)
        )
        assert response.status_code == refused, response.text
        assert f"{refused}" in response.text  # a GeoReport error document
        assert tuple(await _row(client, public)) == ("open", None)
    feed = await client.get(
        f"{BASE}/servicerequestupdates.json",
        params={"jurisdiction_id": seeded.jurisdiction_id},
    )
    assert feed.json() == []
    # The owner's own update goes through.
    response = await client.post(
        f"{BASE}/servicerequestupdates.{fmt}", data=_update_form(seeded, owner, public)
    )
    assert response.status_code == 200, response.text
    assert (await _row(client, public))[0] == "closed"


@pytest.fixture
async def two_cities(client: httpx.AsyncClient, seeded: Seed) -> tuple[Seed, Seed, str]:
    """Our test city, a second city, and an admin key restricted to the second city."""
    other = await seed_catalog(engine_of(client), code=OTHER_CITY)
    restricted = await _key(client, "Other city ops", scopes=["admin"], jurisdiction=OTHER_CITY)
    return seeded, other, restricted


async def test_restricted_admin_keys_inherit_their_restriction(
    client: httpx.AsyncClient, two_cities: tuple[Seed, Seed, str]
) -> None:
    city, other, restricted = two_cities
    bearer = {"Authorization": f"Bearer {restricted}"}
    # Minting an admin key without naming a jurisdiction: it is restricted to the admin's.
    minted = await client.post(
        "/admin/v1/keys.json", json={"app": "Minted", "scopes": ["admin"]}, headers=bearer
    )
    assert minted.status_code == 201, minted.text
    async with engine_of(client).connect() as conn:
        info = await verify_key(conn, minted.json()["key"])
    assert info.jurisdiction_pk == other.jurisdiction_pk
    # Naming another city is refused.
    elsewhere = await client.post(
        "/admin/v1/keys.json",
        json={"app": "Minted 2", "scopes": ["admin"], "jurisdiction_id": city.jurisdiction_id},
        headers=bearer,
    )
    assert elsewhere.status_code == 403
    # The unrestricted keys of other cities are neither listed nor reachable.
    listed = await client.get("/admin/v1/keys.json", headers=bearer)
    assert listed.status_code == 200
    assert {k["jurisdiction_id"] for k in listed.json()} == {OTHER_CITY}
    async with engine_of(client).begin() as conn:
        _, city_key_id = await create_key(conn, "City app", app="City app")
    for action in ("rotate", "revoke"):
        response = await client.post(f"/admin/v1/keys/{city_key_id}/{action}.json", headers=bearer)
        assert response.status_code == 404, response.text


async def test_restricted_admin_cannot_change_other_cities_requests_or_sandboxes(
    client: httpx.AsyncClient, two_cities: tuple[Seed, Seed, str]
) -> None:
    city, other, restricted = two_cities
    bearer = {"Authorization": f"Bearer {restricted}"}
    engine = engine_of(client)
    public = await make_request(engine, city.jurisdiction_pk, city.service_pks["POTHOLE"])
    city_sandbox = await make_request(
        engine, city.jurisdiction_pk, city.service_pks["POTHOLE"], sandbox=True
    )
    own_sandbox = await make_request(
        engine, other.jurisdiction_pk, other.service_pks["POTHOLE"], sandbox=True
    )
    changed = await client.post(
        f"/admin/v1/requests/{public}/updates.json",
        params={"jurisdiction_id": city.jurisdiction_id},
        json={"status": "closed", "status_notes": "Not yours to close."},
        headers=bearer,
    )
    assert changed.status_code == 403, changed.text
    assert tuple(await _row(client, public)) == ("open", None)
    history = await client.get(
        f"/admin/v1/requests/{public}/updates.json",
        params={"jurisdiction_id": city.jurisdiction_id},
        headers=bearer,
    )
    assert history.status_code == 403
    reset = await client.post("/admin/v1/sandbox/reset.json", json={}, headers=bearer)
    assert reset.status_code == 200
    assert reset.json()["deleted"] == 1
    assert await _row(client, city_sandbox) is not None
    assert await _row(client, own_sandbox) is None


async def test_a_sandbox_key_cannot_be_an_admin_key(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    admin = await _key(client, "ops", scopes=["admin"])
    response = await client.post(
        "/admin/v1/keys.json",
        json={"app": "Sandboxed ops", "scopes": ["admin"], "sandbox": True},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 403, response.text
