"""Hostile input never breaks anything: injection strings, markup, extreme numbers, load."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from app.api.middleware import Edge
from app.store.tables import ServiceRequest
from tests.conftest import AppFactory, Seed, engine_of
from tests.support import JSON_TYPE, XML_TYPE, error_descriptions, xml_to_value

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE service_request; --",
    '" OR 1=1 --',
    "1) UNION SELECT email, phone FROM service_request --",
    "%' AND pg_sleep(5) --",
    "<script>alert(1)</script>",
    "]]><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
    "${jndi:ldap://127.0.0.1/x}",
]
GET_PARAMS = [
    "service_request_id",
    "service_code",
    "status",
    "start_date",
    "end_date",
    "jurisdiction_id",
    "ward",
    "updated_after",
    "page",
    "page_size",
    "cursor",
    "extensions",
]


async def count(client: httpx.AsyncClient) -> int:
    async with engine_of(client).connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(ServiceRequest))).scalar_one()
        )


async def test_injection_strings_in_every_parameter(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    created = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": seeded.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.65",
            "long": "-79.38",
        },
    )
    assert created.status_code == 200
    before = await count(client)
    for value in INJECTIONS:
        for name in GET_PARAMS:
            for fmt in ("json", "xml"):
                response = await client.get(f"/open311/v2/requests.{fmt}", params={name: value})
                assert response.status_code in (200, 400, 404), (name, value, response.text)
                assert response.headers["content-type"] == (
                    JSON_TYPE if fmt == "json" else XML_TYPE
                )
        for path in (f"requests/{value}", f"services/{value}", f"tokens/{value}"):
            response = await client.get(f"/open311/v2/{path}.json")
            assert response.status_code in (400, 404), (path, response.text)
            error_descriptions(response.json())
        response = await client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": value,
                "service_code": value,
                "lat": value,
                "long": value,
                "jurisdiction_id": value,
                f"attribute[{value}]": value,
            },
        )
        assert response.status_code in (400, 403, 404), response.text
        error_descriptions(response.json())
    assert await count(client) == before  # nothing written, nothing dropped
    listed = await client.get("/open311/v2/requests.json")
    assert len(listed.json()) == 1


async def test_markup_is_stored_verbatim_and_escaped_in_xml(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    text = "<b>bold</b> & <script>alert('x')</script> ]]> &amp; \"quotes\" 'apos'"
    created = await client.post(
        "/open311/v2/requests.xml",
        data={
            "api_key": seeded.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.65",
            "long": "-79.38",
            "description": text,
            "address_string": "<i>Main</i> & 1st",
        },
    )
    assert created.status_code == 200, created.text
    _, created_value = xml_to_value(created.content)
    request_id = created_value[0]["service_request_id"]
    xml = await client.get(f"/open311/v2/requests/{request_id}.xml")
    assert b"<script>" not in xml.content
    assert b"<b>" not in xml.content
    _, value = xml_to_value(xml.content)
    assert value[0]["description"] == text
    assert value[0]["address"] == "<i>Main</i> & 1st"
    js = await client.get(f"/open311/v2/requests/{request_id}.json")
    assert js.json()[0]["description"] == text


@pytest.mark.parametrize(
    ("lat", "long"),
    [
        ("1e308", "0"),
        ("NaN", "0"),
        ("0", "-Infinity"),
        ("9" * 400, "0"),
        ("0x10", "0"),
        ("43.6", "nan"),
        ("-0.0e999999", "1e-999999"),
        ("43.6\u0000", "-79.3"),
    ],
)
async def test_extreme_numbers_are_400(
    client: httpx.AsyncClient, seeded: Seed, lat: str, long: str
) -> None:
    before = await count(client)
    for fmt in ("json", "xml"):
        response = await client.post(
            f"/open311/v2/requests.{fmt}",
            data={
                "api_key": seeded.api_key,
                "service_code": "LITTER.BIN",
                "lat": lat,
                "long": long,
            },
        )
        # Underflow to zero is a valid coordinate; everything else is refused.
        assert response.status_code in (200, 400), response.text
        if lat.startswith("-0.0e"):
            continue
        assert response.status_code == 400, (lat, long, response.text)
    if not lat.startswith("-0.0e"):
        assert await count(client) == before


async def test_huge_query_string_is_refused_cleanly(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    value = "x" * 60_000  # near httpx's URL limit; uvicorn caps request lines itself
    for fmt in ("json", "xml"):
        response = await client.get(f"/open311/v2/requests.{fmt}", params={"service_code": value})
        assert response.status_code in (200, 400, 414), response.status_code


async def test_security_headers_and_cors(client: httpx.AsyncClient, seeded: Seed) -> None:
    response = await client.get(
        "/open311/v2/services.json", headers={"Origin": "https://app.example.org"}
    )
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = await client.options(
        "/open311/v2/requests.json",
        headers={
            "Origin": "https://app.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Idempotency-Key, Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    page = await client.get("/")
    if page.headers.get("content-type", "").startswith("text/html"):
        assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_error_bodies_carry_no_internals(client: httpx.AsyncClient, seeded: Seed) -> None:
    for path in (
        "/open311/v2/requests/99999999999999999999.json",
        "/open311/v2/requests.json?page=-1",
    ):
        response = await client.get(path)
        assert response.status_code in (400, 404)
        body = response.text
        for leak in ("Traceback", "sqlalchemy", "asyncpg", 'File "', "SELECT "):
            assert leak not in body


async def test_load_shedding_answers_fast_503_beyond_capacity() -> None:
    release = asyncio.Event()
    both_started = asyncio.Event()
    started = 0

    async def slow_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    from prometheus_client import CollectorRegistry, generate_latest

    from app.observability import InFlight, _InFlightGauge
    from app.settings import HttpSettings, Settings

    in_flight = InFlight()
    registry = CollectorRegistry()
    registry.register(_InFlightGauge(in_flight))
    shedder = Edge(slow_app, Settings(http=HttpSettings(max_in_flight=2)), in_flight)
    transport = httpx.ASGITransport(app=shedder)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        busy = [asyncio.create_task(client.get("/open311/v2/services.json")) for _ in range(2)]
        await asyncio.wait_for(both_started.wait(), 5.0)
        assert b"open311_http_requests_in_flight 2.0" in generate_latest(registry)
        shed_json = await asyncio.wait_for(client.get("/open311/v2/services.json"), 1.0)
        shed_xml = await asyncio.wait_for(client.get("/open311/v2/services.xml"), 1.0)
        health = asyncio.create_task(client.get("/health/live"))
        await asyncio.sleep(0.01)
        release.set()
        done = await asyncio.gather(*busy, health)
    assert [r.status_code for r in done] == [200, 200, 200]
    assert shed_json.status_code == 503
    assert shed_json.headers["retry-after"] == "1"
    assert shed_json.headers["content-type"] == JSON_TYPE
    assert "capacity" in error_descriptions(shed_json.json())[0]
    assert shed_xml.status_code == 503
    assert xml_to_value(shed_xml.content)[0] == "errors"
    # Shed calls still carry the edge's headers (request id, security headers).
    assert shed_json.headers["x-request-id"]
    assert shed_json.headers["x-content-type-options"] == "nosniff"
    assert shedder.in_flight.calls == 0


async def test_load_shedding_is_configured(make_client: AppFactory) -> None:
    from app.settings import HttpSettings

    client = await make_client(http=HttpSettings(max_in_flight=0))
    response = await client.get("/open311/v2/discovery.json")
    assert response.status_code == 200
