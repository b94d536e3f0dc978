"""Federation against a second instance of our own server (in process, real HTTP via ASGI)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import select

from app.domain.boundaries import AreaInput
from app.domain.queue import QueueProcessor
from app.federation.headers import SYNCED_AT
from app.federation.partners import add_region, add_remote
from app.store.tables import FederationForward, FederationRequest, ServiceRequest, Submission
from tests.conftest import engine_of
from tests.federation.conftest import (
    BASE,
    PARTNER_HOST,
    PARTNER_JURISDICTION,
    PARTNER_URL,
    REMOTE,
    Partner,
    invalidate,
)

FORMATS = ("json", "xml")
MAPPING = FederationRequest.__table__
FORWARD = FederationForward.__table__
QUEUE = Submission.__table__
REQUEST = ServiceRequest.__table__
POTHOLE = {
    "service_code": "POTHOLE",
    "lat": "43.6534",
    "long": "-79.3841",
    "attribute[SIZE]": "LARGE",
    "attribute[DEPTH]": "12",
    "attribute[LANES][]": "N",
    "description": "Forwarded pothole by City Hall",
    "email": "reporter@example.org",
}


async def _remote(client: httpx.AsyncClient, partner: Partner, fmt: str, code: str = REMOTE) -> int:
    pk = await add_remote(
        engine_of(client),
        code=code,
        name=f"Partner {code}",
        url=PARTNER_URL,
        fmt=fmt,
        partner_key=partner.seed.api_key,
        partner_jurisdiction=PARTNER_JURISDICTION,
        timezone="America/Toronto",
    )
    invalidate(client)
    return pk


@pytest.mark.parametrize("fmt", FORMATS)
async def test_add_remote_and_refresh_mirrors_services_and_definitions(
    client: httpx.AsyncClient, partner: Partner, make_federation, fmt: str
) -> None:
    await _remote(client, partner, fmt)
    federation = make_federation({PARTNER_HOST: partner.transport})
    [report] = await federation.refresh(REMOTE)
    assert report.error is None, report.error
    assert report.services == 4
    assert report.warnings == []
    invalidate(client)

    ours = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": REMOTE})
    theirs = await partner.http.get(f"{BASE}/services.json")
    assert ours.status_code == 200
    assert ours.json() == theirs.json()
    assert datetime.fromisoformat(ours.headers[SYNCED_AT]).tzinfo is not None
    for code in ("POTHOLE", "GRAFFITI", "LITTER.BIN"):
        mine = await client.get(f"{BASE}/services/{code}.{fmt}", params={"jurisdiction_id": REMOTE})
        original = await partner.http.get(f"{BASE}/services/{code}.{fmt}")
        assert mine.status_code == 200
        assert mine.content == original.content
    # A local jurisdiction's responses carry no freshness header.
    listing = await client.get(f"{BASE}/jurisdictions.json")
    [item] = listing.json()
    assert item["kind"] == "remote"
    assert item["status"] == "ok"
    assert item["partner_url"] == PARTNER_URL


@pytest.mark.parametrize("fmt", FORMATS)
async def test_post_is_queued_forwarded_and_token_resolves_to_our_copy(
    client: httpx.AsyncClient, partner: Partner, make_federation, our_key: str, fmt: str
) -> None:
    await _remote(client, partner, fmt)
    federation = make_federation({PARTNER_HOST: partner.transport})
    assert (await federation.refresh(REMOTE))[0].error is None
    invalidate(client)

    started = time.monotonic()
    posted = await client.post(
        f"{BASE}/requests.{fmt}", data={**POTHOLE, "api_key": our_key, "jurisdiction_id": REMOTE}
    )
    assert posted.status_code == 200, posted.text
    assert time.monotonic() - started < 2
    if fmt == "json":
        [created] = posted.json()
        token = created["token"]
        assert "service_request_id" not in created
    else:
        assert b"<token>" in posted.content
        token = posted.text.split("<token>")[1].split("</token>")[0]
    params = {"jurisdiction_id": REMOTE}
    pending = await client.get(f"{BASE}/tokens/{token}.json", params=params)
    assert pending.json() == [{"service_request_id": None, "token": token}]
    # The partner has nothing yet: POST never waits on the partner.
    assert (await partner.http.get(f"{BASE}/requests.json")).json() == []

    assert await federation.forward_due() == 1
    resolved = (await client.get(f"{BASE}/tokens/{token}.json", params=params)).json()
    ours_id = resolved[0]["service_request_id"]
    assert ours_id is not None

    [at_partner] = (await partner.http.get(f"{BASE}/requests.json")).json()
    assert at_partner["description"] == POTHOLE["description"]
    async with engine_of(client).connect() as conn:
        mapped = (
            await conn.execute(
                select(MAPPING.c.partner_request_id).where(
                    MAPPING.c.service_request_id == int(ours_id)
                )
            )
        ).scalar_one()
        state = (await conn.execute(select(QUEUE.c.state))).scalar_one()
    assert mapped == at_partner["service_request_id"]
    assert state == "done"

    mine = await client.get(f"{BASE}/requests/{ours_id}.json", params=params)
    assert mine.status_code == 200
    assert SYNCED_AT in mine.headers
    [copy] = mine.json()
    assert copy["service_request_id"] == ours_id
    for name in ("description", "service_code", "service_name", "requested_datetime", "lat"):
        assert copy[name] == at_partner[name], name
    # Nothing more to do: a second pass forwards nothing again.
    assert await federation.forward_due() == 0
    assert len((await partner.http.get(f"{BASE}/requests.json")).json()) == 1


async def test_partner_batch_token_is_polled_until_it_yields_an_id(
    client: httpx.AsyncClient, partner: Partner, make_federation, our_key: str
) -> None:
    await _remote(client, partner, "json")
    federation = make_federation({PARTNER_HOST: partner.transport})
    assert (await federation.refresh(REMOTE))[0].error is None
    invalidate(client)
    posted = await client.post(
        f"{BASE}/requests.json",
        data={
            "service_code": "GRAFFITI",
            "address_string": "100 Queen St W",
            "attribute[SURFACE]": "WALL",
            "api_key": our_key,
        },
    )
    [created] = posted.json()
    assert await federation.forward_due() == 1
    async with engine_of(client).connect() as conn:
        forward = (await conn.execute(select(FORWARD.c.partner_token))).scalar_one()
    assert forward is not None  # the partner answered a token of its own
    # The partner's worker has not run: polling yields nothing yet, the token stays pending.
    await asyncio.sleep(0.1)
    await federation.forward_due()
    token_url = f"{BASE}/tokens/{created['token']}.json"
    assert (await client.get(token_url)).json()[0]["service_request_id"] is None
    assert await QueueProcessor(partner.engine, partner.settings).run_once() == 1
    await asyncio.sleep(0.1)
    assert await federation.forward_due() == 1
    ours_id = (await client.get(token_url)).json()[0]["service_request_id"]
    assert ours_id is not None
    [copy] = (await client.get(f"{BASE}/requests/{ours_id}.json")).json()
    assert copy["address"] == "100 Queen St W"
    assert copy["service_code"] == "GRAFFITI"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sync_pulls_requests_created_directly_on_the_partner(
    client: httpx.AsyncClient, partner: Partner, make_federation, fmt: str
) -> None:
    await _remote(client, partner, fmt)
    federation = make_federation({PARTNER_HOST: partner.transport})
    direct = await partner.http.post(
        f"{BASE}/requests.json",
        data={**POTHOLE, "description": "Filed at the partner", "api_key": partner.seed.api_key},
    )
    partner_id = direct.json()[0]["service_request_id"]
    [report] = await federation.refresh(REMOTE)
    assert report.error is None
    assert (report.added, report.updated) == (1, 0)
    invalidate(client)

    listed = await client.get(f"{BASE}/requests.{fmt}", params={"jurisdiction_id": REMOTE})
    assert listed.status_code == 200
    assert SYNCED_AT in listed.headers
    assert b"Filed at the partner" in listed.content
    [mine] = (await client.get(f"{BASE}/requests.json")).json()
    [theirs] = (await partner.http.get(f"{BASE}/requests.json")).json()
    assert {k: v for k, v in mine.items() if k != "service_request_id"} == {
        k: v for k, v in theirs.items() if k != "service_request_id"
    }
    # A second sync updates the same copy: our id is stable, nothing is duplicated.
    [again] = await federation.refresh(REMOTE)
    assert (again.added, again.updated) == (0, 1)
    [still] = (await client.get(f"{BASE}/requests.json")).json()
    assert still["service_request_id"] == mine["service_request_id"]
    async with engine_of(client).connect() as conn:
        assert (await conn.execute(select(MAPPING.c.partner_request_id))).scalar_one() == str(
            partner_id
        )


def _square(code: str, west: float) -> AreaInput:
    return AreaInput(
        code=code, name=code, geometry=MultiPolygon([box(west, 43.0, west + 1.0, 44.0)])
    )


async def test_region_routes_posts_by_location(
    client: httpx.AsyncClient, partner: Partner, make_federation, our_key: str
) -> None:
    # Two partner cities (both served by the partner instance under two of our codes).
    a_pk = await _remote(client, partner, "json", "a.example.net")
    b_pk = await add_remote(
        engine_of(client),
        code="b.example.net",
        name="Partner B",
        url="http://partner-b.test/open311/v2",
        fmt="xml",
        partner_key=partner.seed.api_key,
        partner_jurisdiction=PARTNER_JURISDICTION,
    )
    region_pk = await add_region(
        engine_of(client),
        code="region.example.net",
        name="The Region",
        areas=[_square("A.example.net", -80.0), _square("b.example.net", -79.0)],
    )
    federation = make_federation(
        {PARTNER_HOST: partner.transport, "http://partner-b.test": partner.transport}
    )
    reports = await federation.refresh()
    assert [r.error for r in reports] == [None, None, None]
    invalidate(client)
    services = await client.get(
        f"{BASE}/services.json", params={"jurisdiction_id": "region.example.net"}
    )
    assert {s["service_code"] for s in services.json()} == {
        "POTHOLE",
        "GRAFFITI",
        "FEEDBACK",
        "LITTER.BIN",
    }

    async def post(lat: str, lon: str) -> httpx.Response:
        return await client.post(
            f"{BASE}/requests.json",
            data={
                **POTHOLE,
                "lat": lat,
                "long": lon,
                "api_key": our_key,
                "jurisdiction_id": "region.example.net",
            },
        )

    in_a, in_b, outside = (
        await post("43.5", "-79.5"),
        await post("43.5", "-78.5"),
        await post("45.5", "-78.5"),
    )
    assert in_a.status_code == in_b.status_code == 200
    assert outside.status_code == 400
    [error] = outside.json()
    assert error["code"] == 400
    assert "outside every partner city" in error["description"]
    async with engine_of(client).connect() as conn:
        targets = (
            await conn.execute(
                select(QUEUE.c.token, QUEUE.c.jurisdiction_id, FORWARD.c.target_jurisdiction_id)
                .join(FORWARD, FORWARD.c.submission_id == QUEUE.c.id)
                .order_by(QUEUE.c.id)
            )
        ).all()
    assert [(t[1], t[2]) for t in targets] == [(region_pk, a_pk), (region_pk, b_pk)]
    assert await federation.forward_due() == 2
    for (token, _, target), response in zip(targets, (in_a, in_b), strict=True):
        assert response.json()[0]["token"] == token
        resolved = await client.get(
            f"{BASE}/tokens/{token}.json", params={"jurisdiction_id": "region.example.net"}
        )
        ours_id = resolved.json()[0]["service_request_id"]
        async with engine_of(client).connect() as conn:
            where = (
                await conn.execute(
                    select(REQUEST.c.jurisdiction_id).where(REQUEST.c.id == int(ours_id))
                )
            ).scalar_one()
        assert where == target
    assert len((await partner.http.get(f"{BASE}/requests.json")).json()) == 2
    # A region without lat/long cannot be routed.
    no_point = await client.post(
        f"{BASE}/requests.json",
        data={
            **{k: v for k, v in POTHOLE.items() if k not in ("lat", "long")},
            "address_string": "somewhere",
            "api_key": our_key,
            "jurisdiction_id": "region.example.net",
        },
    )
    assert no_point.status_code == 400
    assert datetime.now(UTC).year >= 2024


async def test_several_worker_loops_refresh_a_partner_once(
    client: httpx.AsyncClient, partner: Partner, make_federation
) -> None:
    # Every server process runs a worker loop by default: a due partner is refreshed by one.
    await _remote(client, partner, "json")
    loops = [make_federation({PARTNER_HOST: partner.transport}) for _ in range(3)]
    done = await asyncio.gather(*(loop.refresh_due() for loop in loops))
    assert sorted(done) == [0, 0, 1]
    invalidate(client)
    ours = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": REMOTE})
    assert len(ours.json()) == 4
    # Refreshed now: due again only after refresh_interval_s.
    assert await asyncio.gather(*(loop.refresh_due() for loop in loops)) == [0, 0, 0]
