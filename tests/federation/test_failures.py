"""Partner failures (httpx.MockTransport upstreams): slow, down, garbage, circuit breaker."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.domain.catalog_files import read_catalog
from app.domain.catalog_import import upsert_services
from app.federation.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable
from app.federation.partners import add_remote
from app.store.tables import FederationForward, FederationPartner, Submission
from tests.conftest import CATALOG, engine_of, seed_catalog
from tests.federation.conftest import (
    BASE,
    PARTNER_HOST,
    PARTNER_JURISDICTION,
    PARTNER_URL,
    Partner,
    invalidate,
)
from tests.federation.test_partner import POTHOLE

QUEUE = Submission.__table__
FORWARD = FederationForward.__table__
PARTNER = FederationPartner.__table__
SLOW = "slow.example.net"
HEALTHY = "healthy.example.net"
BAD = "bad.example.net"


async def _mock_remote(
    client: httpx.AsyncClient, code: str, host: str, fmt: str = "json", mirror: bool = True
) -> int:
    """A remote jurisdiction at ``host`` whose services we mirror from the test catalogue."""
    engine = engine_of(client)
    pk = await add_remote(
        engine, code=code, name=code, url=f"http://{host}/open311/v2", fmt=fmt, partner_key="k"
    )
    if mirror:
        async with engine.begin() as conn:
            await upsert_services(conn, pk, read_catalog(CATALOG)["services"])
    invalidate(client)
    return pk


async def _status(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    listing = (await client.get(f"{BASE}/jurisdictions.json")).json()
    return next(i for i in listing if i["jurisdiction_id"] == code)


async def test_slow_partner_is_retried_later_without_slowing_a_healthy_one(
    client: httpx.AsyncClient, partner: Partner, make_federation, our_key: str
) -> None:
    healthy_pk = await add_remote(
        engine_of(client),
        code=HEALTHY,
        name="Healthy",
        url=PARTNER_URL,
        partner_key=partner.seed.api_key,
        partner_jurisdiction=PARTNER_JURISDICTION,
    )
    await _mock_remote(client, SLOW, "slow.test")
    state = {"slow": True, "calls": 0}

    async def slow(request: httpx.Request) -> httpx.Response:
        state["calls"] += 1
        if state["slow"]:
            await asyncio.sleep(30)
        if request.method == "POST":
            return httpx.Response(200, json=[{"service_request_id": "777"}])
        return httpx.Response(404, json=[{"code": 404, "description": "not here"}])

    federation = make_federation(
        {PARTNER_HOST: partner.transport, "http://slow.test": httpx.MockTransport(slow)},
        timeout_s=0.5,
    )
    assert (await federation.refresh(HEALTHY))[0].error is None
    invalidate(client)
    tokens = {}
    for code in (SLOW, HEALTHY, SLOW, HEALTHY):
        posted = await client.post(
            f"{BASE}/requests.json", data={**POTHOLE, "api_key": our_key, "jurisdiction_id": code}
        )
        assert posted.status_code == 200, posted.text
        tokens.setdefault(code, []).append(posted.json()[0]["token"])

    started = time.monotonic()
    assert await federation.forward_due() == 4
    elapsed = time.monotonic() - started
    # One timeout for the slow partner (its second submission is not even tried), in parallel
    # with the healthy partner's forwards.
    assert elapsed < 0.5 + 1.5, elapsed
    assert state["calls"] == 1
    for token in tokens[HEALTHY]:
        resolved = await client.get(
            f"{BASE}/tokens/{token}.json", params={"jurisdiction_id": HEALTHY}
        )
        assert resolved.json()[0]["service_request_id"] is not None
    async with engine_of(client).connect() as conn:
        rows = (
            await conn.execute(
                select(QUEUE.c.state, FORWARD.c.last_error, FORWARD.c.target_jurisdiction_id)
                .join(FORWARD, FORWARD.c.submission_id == QUEUE.c.id)
                .where(FORWARD.c.target_jurisdiction_id != healthy_pk)
            )
        ).all()
    assert [r[0] for r in rows] == ["forward", "forward"]  # kept, not lost
    assert "no answer within 0.5 s" in rows[0][1]
    assert (await _status(client, SLOW))["status"] == "degraded"

    # The partner recovers: the next due pass forwards both; the tokens resolve.
    state["slow"] = False
    await asyncio.sleep(0.3)
    assert await federation.forward_due() == 2
    for token in tokens[SLOW]:
        resolved = await client.get(f"{BASE}/tokens/{token}.json", params={"jurisdiction_id": SLOW})
        assert resolved.json()[0]["service_request_id"] is not None
    assert (await _status(client, SLOW))["status"] == "ok"


GARBAGE: dict[str, tuple[str, bytes, str]] = {
    "html": ("json", b"<!doctype html><html><body>Maintenance</body></html>", "text/html"),
    "invalid-xml": ("xml", b"<?xml version='1.0'?><services><service>", "text/xml"),
    "xxe": (
        "xml",
        b'<?xml version="1.0"?><!DOCTYPE services [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<services><service><service_code>&x;</service_code><service_name>x</service_name>"
        b"</service></services>",
        "text/xml",
    ),
    "entity-bomb": (
        "xml",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><services>&b;</services>',
        "text/xml",
    ),
    "wrong-shape-json": ("json", b'{"services": "none", "status": "ok"}', "application/json"),
    "json-list-of-numbers": ("json", b"[1, 2, 3]", "application/json"),
}


@pytest.mark.parametrize("kind", GARBAGE)
async def test_garbage_is_a_recorded_502_never_a_crash(
    client: httpx.AsyncClient, make_federation, kind: str, admin_key: str
) -> None:
    fmt, body, media = GARBAGE[kind]
    await _mock_remote(client, BAD, "bad.test", fmt, mirror=False)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": media})

    federation = make_federation({"http://bad.test": httpx.MockTransport(handler)})
    [report] = await federation.refresh(BAD)
    assert isinstance(report.error, UpstreamBadResponse)
    assert report.error.status_code == 502
    item = await _status(client, BAD)
    assert item["status"] == "degraded"
    assert item["last_synced_at"] is None
    services = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": BAD})
    assert services.json() == []
    assert services.headers["X-Federation-Synced-At"] == "never"
    async with engine_of(client).connect() as conn:
        error = (await conn.execute(select(PARTNER.c.last_error))).scalar_one()
    assert "root:" not in error
    # The same garbage through the live probe: a spec-shaped 502 in both formats.
    client.app.state.federation_mounts = {"http://bad.test": httpx.MockTransport(handler)}  # type: ignore[attr-defined]
    check = {"check": "true", "api_key": admin_key}
    probe = await client.get(f"{BASE}/jurisdictions/{BAD}.json", params=check)
    assert probe.status_code == 502
    assert probe.json()[0]["code"] == 502
    probe_xml = await client.get(f"{BASE}/jurisdictions/{BAD}.xml", params=check)
    assert probe_xml.status_code == 502
    assert ET.fromstring(probe_xml.content).tag == "errors"  # noqa: S314 - parses this server's own response


async def test_garbage_answer_to_a_forward_is_retried_not_lost(
    client: httpx.AsyncClient, make_federation, our_key: str
) -> None:
    await _mock_remote(client, BAD, "bad.test", "xml")
    answers = [b"<html>oops", b'{"json": "in an xml partner"}']

    def handler(request: httpx.Request) -> httpx.Response:
        body = answers.pop(0) if answers else None
        if body is not None:
            return httpx.Response(200, content=body)
        if request.method == "POST":
            return httpx.Response(
                200,
                content=b"<?xml version='1.0'?><service_requests><request>"
                b"<service_request_id>XYZ-1</service_request_id></request></service_requests>",
            )
        return httpx.Response(500)

    federation = make_federation({"http://bad.test": httpx.MockTransport(handler)})
    posted = await client.post(
        f"{BASE}/requests.xml", data={**POTHOLE, "api_key": our_key, "jurisdiction_id": BAD}
    )
    assert posted.status_code == 200
    for _ in range(3):
        await federation.forward_due()
        await asyncio.sleep(0.25)
    async with engine_of(client).connect() as conn:
        state, partner_id = (
            await conn.execute(
                select(QUEUE.c.state, FORWARD.c.partner_request_id).join(
                    FORWARD, FORWARD.c.submission_id == QUEUE.c.id
                )
            )
        ).one()
    assert (state, partner_id) == ("done", "XYZ-1")


async def test_partner_rejection_fails_the_submission_with_its_description(
    client: httpx.AsyncClient, make_federation, our_key: str
) -> None:
    await _mock_remote(client, BAD, "bad.test")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json=[{"code": 400, "description": "attribute[SIZE] is not allowed here"}]
        )

    federation = make_federation({"http://bad.test": httpx.MockTransport(handler)})
    posted = await client.post(
        f"{BASE}/requests.json", data={**POTHOLE, "api_key": our_key, "jurisdiction_id": BAD}
    )
    assert await federation.forward_due() == 1
    async with engine_of(client).connect() as conn:
        state, error = (await conn.execute(select(QUEUE.c.state, QUEUE.c.error))).one()
    assert state == "failed"
    assert "attribute[SIZE] is not allowed here" in error
    token = posted.json()[0]["token"]
    pending = await client.get(f"{BASE}/tokens/{token}.json", params={"jurisdiction_id": BAD})
    assert pending.json()[0]["service_request_id"] is None


async def test_circuit_opens_after_repeated_failures_and_answers_503_fast(
    client: httpx.AsyncClient, make_federation, admin_key: str
) -> None:
    await _mock_remote(client, BAD, "bad.test", mirror=False)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503, text="Service Unavailable")

    federation = make_federation(
        {"http://bad.test": httpx.MockTransport(handler)}, breaker_failures=2, breaker_reset_s=60
    )
    first, second = (await federation.refresh(BAD))[0], (await federation.refresh(BAD))[0]
    assert isinstance(first.error, UpstreamUnavailable)
    assert isinstance(second.error, UpstreamUnavailable)
    assert len(calls) == 2
    assert (await _status(client, BAD))["status"] == "down"

    started = time.monotonic()
    [third] = await federation.refresh(BAD)
    assert time.monotonic() - started < 0.5
    assert isinstance(third.error, UpstreamUnavailable)
    assert "circuit open" in str(third.error)
    assert len(calls) == 2  # the partner was not called

    started = time.monotonic()
    probe = await client.get(
        f"{BASE}/jurisdictions/{BAD}.json",
        params={"check": "true"},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert time.monotonic() - started < 0.5
    assert probe.status_code == 503
    assert 1 <= int(probe.headers["Retry-After"]) <= 60
    assert probe.headers["content-type"] == "application/json; charset=utf-8"
    [error] = probe.json()
    assert error["code"] == 503
    assert len(calls) == 2


async def test_live_probe_of_a_slow_partner_is_a_504_within_the_bound(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    await _mock_remote(client, SLOW, "slow.test", mirror=False)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=[])

    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    settings.federation.timeout_s = 0.4
    client.app.state.federation_mounts = {"http://slow.test": httpx.MockTransport(slow)}  # type: ignore[attr-defined]
    started = time.monotonic()
    probe = await client.get(
        f"{BASE}/jurisdictions/{SLOW}.xml", params={"check": "true", "api_key": admin_key}
    )
    assert time.monotonic() - started < 1.5
    assert probe.status_code == 504
    assert probe.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(probe.content)  # noqa: S314 - parses this server's own response
    assert root.tag == "errors"
    assert root.find("error/code").text == "504"  # type: ignore[union-attr]
    assert UpstreamTimeout.status_code == 504


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_jurisdictions_listing_shows_kinds_and_statuses(
    client: httpx.AsyncClient, partner: Partner, make_federation, fmt: str
) -> None:
    await seed_catalog(engine_of(client))  # a local jurisdiction
    await add_remote(
        engine_of(client),
        code=HEALTHY,
        name="Healthy",
        url=PARTNER_URL,
        partner_key=partner.seed.api_key,
        partner_jurisdiction=PARTNER_JURISDICTION,
    )
    await _mock_remote(client, BAD, "bad.test", mirror=False)
    await _mock_remote(client, "never.example.net", "never.test", mirror=False)
    from app.federation.partners import add_region

    await add_region(engine_of(client), code="region.example.net", name="Region")
    federation = make_federation(
        {
            PARTNER_HOST: partner.transport,
            "http://bad.test": httpx.MockTransport(lambda r: httpx.Response(500)),
        }
    )
    await federation.refresh(HEALTHY)
    await federation.refresh(BAD)
    response = await client.get(f"{BASE}/jurisdictions.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        items = response.json()
    else:
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        root = ET.fromstring(response.content)  # noqa: S314 - parses this server's own response
        assert root.tag == "jurisdictions"
        items = [{child.tag: child.text for child in item} for item in root.findall("jurisdiction")]
    by_code = {i["jurisdiction_id"]: i for i in items}
    assert {k: (v["kind"], v["status"]) for k, v in by_code.items()} == {
        "test.example.org": ("local", "ok"),
        HEALTHY: ("remote", "ok"),
        BAD: ("remote", "degraded"),
        "never.example.net": ("remote", "unknown"),
        "region.example.net": ("region", "unknown"),
    }
    assert by_code[HEALTHY]["partner_url"] == PARTNER_URL
    assert by_code[HEALTHY]["last_synced_at"] is not None
    assert by_code["test.example.org"]["partner_url"] in (None, "")
    assert by_code[BAD]["last_synced_at"] in (None, "")
    discovery = await client.get(f"{BASE}/discovery.json")
    specifications = [e["specification"] for e in discovery.json()["endpoints"]]
    assert "urn:open311-server:extension:jurisdictions:v1" in specifications
