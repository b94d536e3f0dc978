"""Errors in the GeoReport shape, jurisdiction rules (single and multi) and the base path.

Every failure must be an ``errors`` document in the requested format, with ``code`` equal to
the HTTP status, never FastAPI's ``{"detail": ...}`` and never a 422 (issue 2, spec §1.10, §12).
``jurisdiction_id``: single mode accepts absent/empty/matching (case-insensitive) and answers
404 to anything else; multi mode answers 400 when absent and 404 when unknown, and scopes
every method to the jurisdiction (spec §1.7).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from app.domain.queue import QueueProcessor
from app.store.tables import Jurisdiction
from tests.conftest import CATALOG, AppFactory, Seed, engine_of, seed_catalog
from tests.support import (
    JSON_TYPE,
    XML_TYPE,
    Both,
    error_descriptions,
    fetch_both,
    xml_to_value,
)

BASE = "/open311/v2"
FORMATS = ("json", "xml")
TEST_CODE = "test.example.org"
OTHER_CODE = "other.example.org"
UNKNOWN_CODE = "nowhere.example.org"
TEST_SERVICES = {"POTHOLE", "GRAFFITI", "FEEDBACK", "LITTER.BIN"}
# The second jurisdiction's catalogue: two of the test services, renamed, and no POTHOLE.
OTHER_SERVICES = {"GRAFFITI", "LITTER.BIN"}
OTHER_PREFIX = "Other city: "
LOCATION = {"lat": "43.6534", "long": "-79.3841"}


# ---------------------------------------------------------------------------------------
# helpers


def content_type(fmt: str) -> str:
    """The exact Content-Type the server must send for a format."""
    return JSON_TYPE if fmt == "json" else XML_TYPE


def assert_error_document(response: httpx.Response, status: int, fmt: str) -> list[str]:
    """Check one error response (status, exact Content-Type, spec shape, code == status)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == content_type(fmt)
    if fmt == "json":
        value = response.json()
        descriptions = error_descriptions(value)  # a list of {code, description}, no "detail"
        assert [item["code"] for item in value] == [status] * len(value), value
        return descriptions
    root, value = xml_to_value(response.content)
    assert root == "errors", root
    assert isinstance(value, list), value
    assert value, "an error document has at least one error"
    for item in value:
        assert isinstance(item, dict), item
        assert set(item) == {"code", "description"}, item
        assert item["code"] == str(status), item
        assert item["description"], item
    return [item["description"] for item in value]


async def errors_both(
    client: httpx.AsyncClient,
    path: str,
    status: int,
    *,
    method: str = "GET",
    params: Any = None,
    data: Any = None,
    base: str = BASE,
) -> list[str]:
    """Call ``path.json`` and ``path.xml``; both must be the same error document."""
    found: dict[str, list[str]] = {}
    for fmt in FORMATS:
        response = await client.request(method, f"{base}/{path}.{fmt}", params=params, data=data)
        found[fmt] = assert_error_document(response, status, fmt)
    assert found["json"] == found["xml"]
    return found["json"]


def jurisdiction_param(value: str | None) -> dict[str, str]:
    """``jurisdiction_id`` as a parameter dict (absent when None)."""
    return {} if value is None else {"jurisdiction_id": value}


async def post_request(
    client: httpx.AsyncClient, seed: Seed, service_code: str, jurisdiction: str | None = None
) -> dict[str, Any]:
    """POST one request (JSON) and return its response item."""
    data = {"api_key": seed.api_key, "service_code": service_code, **LOCATION}
    data.update(jurisdiction_param(jurisdiction))
    response = await client.post(f"{BASE}/requests.json", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert isinstance(body, list), body
    assert len(body) == 1, body
    item: dict[str, Any] = body[0]
    return item


@dataclass
class World:
    """A jurisdiction with one realtime request and one batch token stored through the API."""

    seed: Seed
    code: str
    request_id: str
    token: str


async def make_world(
    client: httpx.AsyncClient, seed: Seed, jurisdiction: str | None = None
) -> World:
    """POST a realtime request (LITTER.BIN) and a batch one (GRAFFITI) to a jurisdiction."""
    realtime = await post_request(client, seed, "LITTER.BIN", jurisdiction)
    batch = await post_request(client, seed, "GRAFFITI", jurisdiction)
    assert realtime["service_request_id"], realtime
    assert batch["token"], batch
    # The batch submission becomes a request when the worker runs.
    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    await QueueProcessor(engine_of(client), settings).run_once()
    return World(seed, seed.jurisdiction_id, realtime["service_request_id"], batch["token"])


def other_catalog(tmp_path: Path) -> Path:
    """A catalogue for the second jurisdiction that differs visibly from the test one."""
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    catalog["jurisdiction"] = {
        **catalog["jurisdiction"],
        "jurisdiction_id": OTHER_CODE,
        "name": "Other City",
    }
    catalog["services"] = [
        {**s, "service_name": OTHER_PREFIX + s["service_name"]}
        for s in catalog["services"]
        if s["service_code"] in OTHER_SERVICES
    ]
    path = tmp_path / "other_catalog.json"
    path.write_text(json.dumps(catalog), encoding="utf-8")
    return path


async def seed_two(client: httpx.AsyncClient, tmp_path: Path) -> tuple[Seed, Seed]:
    """The test jurisdiction and a second one (multi-jurisdiction mode)."""
    engine = engine_of(client)
    first = await seed_catalog(engine)
    second = await seed_catalog(engine, other_catalog(tmp_path), code=OTHER_CODE)
    return first, second


# The six GeoReport methods that take jurisdiction_id.
ENDPOINTS = ("services", "definition", "requests", "request", "token", "post")


async def call_endpoint(
    client: httpx.AsyncClient,
    world: World,
    endpoint: str,
    jurisdiction: str | None,
    expect: int,
) -> Both:
    """Call one method in both formats, ``jurisdiction_id`` in the query (GET) or body (POST)."""
    extra = jurisdiction_param(jurisdiction)
    if endpoint == "post":
        data = {"api_key": world.seed.api_key, "service_code": "LITTER.BIN", **LOCATION, **extra}
        return await fetch_both(client, "requests", method="POST", data=data, expect=expect)
    path = {
        "services": "services",
        "definition": "services/LITTER.BIN",
        "requests": "requests",
        "request": f"requests/{world.request_id}",
        "token": f"tokens/{world.token}",
    }[endpoint]
    return await fetch_both(client, path, params=extra, expect=expect)


def check_success(both: Both, endpoint: str, world: World) -> None:
    """The body of a successful call, from what the test stored."""
    if endpoint == "services":
        assert both.xml_root == "services"
        assert {s["service_code"] for s in both.json} == TEST_SERVICES
    elif endpoint == "definition":
        assert both.xml_root == "service_definition"
        assert both.json["service_code"] == "LITTER.BIN"
        assert both.json["attributes"] == []
    elif endpoint == "requests":
        assert both.xml_root == "service_requests"
        assert world.request_id in [r["service_request_id"] for r in both.json]
    elif endpoint == "request":
        assert both.xml_root == "service_requests"
        assert [r["service_request_id"] for r in both.json] == [world.request_id]
    elif endpoint == "token":
        assert both.xml_root == "service_requests"
        assert [r["token"] for r in both.json] == [world.token]
    else:
        assert both.xml_root == "service_requests"
        for body in (both.json, xml_to_value(both.xml_response.content)[1]):
            assert len(body) == 1
            assert body[0]["service_request_id"]
            assert body[0]["service_request_id"] != world.request_id


async def expect_jurisdiction_error(
    client: httpx.AsyncClient, world: World, endpoint: str, jurisdiction: str | None, status: int
) -> None:
    """A method refuses ``jurisdiction_id`` with ``status`` and says why, in both formats."""
    both = await call_endpoint(client, world, endpoint, jurisdiction, status)
    for response, fmt in ((both.json_response, "json"), (both.xml_response, "xml")):
        descriptions = assert_error_document(response, status, fmt)
        assert any("jurisdiction_id" in d for d in descriptions), descriptions


# ---------------------------------------------------------------------------------------
# routes, methods and formats

UNKNOWN_ROUTES = [
    ("GET", f"{BASE}/nothing.json", "json"),
    ("GET", f"{BASE}/services/POTHOLE/extra.json", "json"),
    ("POST", f"{BASE}/nothing.json", "json"),
    ("GET", f"{BASE}/nothing.xml", "xml"),
    ("GET", f"{BASE}/nothing", "xml"),
    ("GET", f"{BASE}/services", "xml"),
    ("GET", f"{BASE}/requests/", "xml"),
    ("GET", "/elsewhere", "xml"),
    ("GET", "/open311", "xml"),
]  # "/" is the public map page (tests/ops).


async def test_unknown_route_is_a_404_errors_document(client: httpx.AsyncClient) -> None:
    for method, path, fmt in UNKNOWN_ROUTES:
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path, response.status_code)
        assert_error_document(response, 404, fmt)


# (method, path without suffix, every method the resource supports)
WRONG_METHODS = [
    ("DELETE", "services", {"GET"}),
    ("PUT", "services", {"GET"}),
    ("POST", "services", {"GET"}),
    ("PATCH", "services/POTHOLE", {"GET"}),
    ("DELETE", "requests", {"GET", "POST"}),
    ("PUT", "requests", {"GET", "POST"}),
    ("DELETE", "requests/1", {"GET"}),
    ("POST", "tokens/abc", {"GET"}),
    ("PUT", "discovery", {"GET"}),
]


def allow_header(response: httpx.Response) -> set[str]:
    """The methods named by the Allow header (which must be present)."""
    assert "allow" in response.headers, dict(response.headers)
    return {m.strip().upper() for m in response.headers["allow"].split(",") if m.strip()}


async def test_wrong_method_is_a_405_errors_document_with_allow(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    for method, path, _ in WRONG_METHODS:
        for fmt in FORMATS:
            response = await client.request(method, f"{BASE}/{path}.{fmt}")
            assert response.status_code == 405, (method, path, fmt, response.status_code)
            assert_error_document(response, 405, fmt)
            methods = allow_header(response)
            assert methods, (method, path)
            assert method not in methods, (method, path, methods)


async def test_405_allow_lists_every_method_of_the_resource(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    # RFC 9110 §15.5.6: a 405 carries Allow with the target resource's supported methods;
    # requests.{fmt} supports both GET (search) and POST (submit).
    for method, path, allowed in WRONG_METHODS:
        for fmt in FORMATS:
            response = await client.request(method, f"{BASE}/{path}.{fmt}")
            assert_error_document(response, 405, fmt)
            assert allowed <= allow_header(response), (method, path, response.headers["allow"])


UNKNOWN_SUFFIXES = [
    ("GET", "services.html"),
    ("GET", "services.yaml"),
    ("GET", "services.jsonx"),
    ("GET", "services/POTHOLE.txt"),
    ("GET", "requests.csv"),
    ("GET", "requests/1.rss"),
    ("GET", "tokens/abc.txt"),
    ("GET", "discovery.html"),
    ("POST", "requests.csv"),
]


async def test_unknown_format_suffix_is_a_404_xml_errors_document(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    data = {"api_key": seeded.api_key, "service_code": "LITTER.BIN", **LOCATION}
    for method, path in UNKNOWN_SUFFIXES:
        response = await client.request(
            method, f"{BASE}/{path}", data=data if method == "POST" else None
        )
        assert response.status_code == 404, (method, path, response.status_code)
        # Spec §12 #36: an unknown suffix is a 404 with an XML errors document.
        descriptions = assert_error_document(response, 404, "xml")
        assert any(".json" in d and ".xml" in d for d in descriptions), (path, descriptions)
    # The refused POST stored nothing.
    assert (await fetch_both(client, "requests")).json == []


# ---------------------------------------------------------------------------------------
# unknown resources, bad key, validation


async def test_unknown_resources_are_404(client: httpx.AsyncClient, seeded: Seed) -> None:
    for path in ("services/NOPE", "requests/999999", "requests/not-a-number", "tokens/nope"):
        await errors_both(client, path, 404)
    data = {"api_key": seeded.api_key, "service_code": "NOPE", **LOCATION}
    descriptions = await errors_both(client, "requests", 404, method="POST", data=data)
    assert any("NOPE" in d for d in descriptions), descriptions
    assert (await fetch_both(client, "requests")).json == []


async def test_bad_api_key_is_a_403(client: httpx.AsyncClient, seeded: Seed) -> None:
    for api_key in (None, "", "not-a-real-key", seeded.api_key + "x"):
        data = {"service_code": "LITTER.BIN", **LOCATION}
        if api_key is not None:
            data["api_key"] = api_key
        descriptions = await errors_both(client, "requests", 403, method="POST", data=data)
        assert any("api_key" in d for d in descriptions), (api_key, descriptions)
    assert (await fetch_both(client, "requests")).json == []


# (POST fields besides api_key, a word the description must contain)
POST_400 = [
    ({**LOCATION}, "service_code"),
    ({"service_code": "LITTER.BIN"}, "address"),
    ({"service_code": "LITTER.BIN", "lat": "91", "long": "-79.3841"}, "lat"),
    ({"service_code": "LITTER.BIN", "lat": "43.6534"}, "long"),
    ({"service_code": "POTHOLE", **LOCATION, "attribute[SIZE]": "SMALL"}, "DEPTH"),
]
# (GET requests parameters, a word the description must contain)
GET_400 = [
    ({"status": "pending"}, "status"),
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2024-13-45T00:00:00Z"}, "end_date"),
    ({"start_date": "2024-03-05T00:00:00Z", "end_date": "2024-03-01T00:00:00Z"}, "end_date"),
]


async def test_validation_failures_are_400(client: httpx.AsyncClient, seeded: Seed) -> None:
    for fields, named in POST_400:
        data = {"api_key": seeded.api_key, **fields}
        descriptions = await errors_both(client, "requests", 400, method="POST", data=data)
        assert any(named in d for d in descriptions), (fields, descriptions)
    for params, named in GET_400:
        descriptions = await errors_both(client, "requests", 400, params=params)
        assert any(named in d for d in descriptions), (params, descriptions)
    assert (await fetch_both(client, "requests")).json == []


# ---------------------------------------------------------------------------------------
# server error

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|NotFound)\b")
LEAKS = ("traceback", 'file "', "line ", "select", "insert", "from ", "sqlalchemy", "zoneinfo")


async def test_server_error_is_a_clean_500(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    async with engine_of(client).begin() as conn:
        await conn.execute(
            insert(Jurisdiction.__table__).values(
                code="broken.example.org",
                name="Broken City",
                timezone="Not/AZone",
                created_at=now,
                updated_at=now,
            )
        )
    for path in ("services", "services/POTHOLE", "requests", "discovery"):
        both = await fetch_both(client, path, expect=500)
        for response, fmt in ((both.json_response, "json"), (both.xml_response, "xml")):
            for description in assert_error_document(response, 500, fmt):
                assert not CLASS_NAME.search(description), description
                assert "Not/AZone" not in description, description
                for leak in LEAKS:
                    assert leak not in description.lower(), (leak, description)


# ---------------------------------------------------------------------------------------
# single-jurisdiction mode


async def test_single_mode_accepts_absent_empty_or_matching(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    world = await make_world(client, seeded)
    for jurisdiction in (None, "", TEST_CODE, TEST_CODE.upper()):
        for endpoint in ENDPOINTS:
            both = await call_endpoint(client, world, endpoint, jurisdiction, 200)
            check_success(both, endpoint, world)


async def test_single_mode_other_value_is_a_404(client: httpx.AsyncClient, seeded: Seed) -> None:
    world = await make_world(client, seeded)
    for jurisdiction in (OTHER_CODE, "example.org", "test.example.org.evil"):
        for endpoint in ENDPOINTS:
            await expect_jurisdiction_error(client, world, endpoint, jurisdiction, 404)
    listed = await fetch_both(client, "requests")
    assert world.request_id in [r["service_request_id"] for r in listed.json]
    assert len(listed.json) == 2  # only the two requests make_world stored


# ---------------------------------------------------------------------------------------
# multi-jurisdiction mode


async def test_multi_mode_requires_a_known_jurisdiction(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    first, _ = await seed_two(client, tmp_path)
    world = await make_world(client, first, TEST_CODE)
    for jurisdiction, status in ((None, 400), ("", 400), (UNKNOWN_CODE, 404)):
        for endpoint in ENDPOINTS:
            await expect_jurisdiction_error(client, world, endpoint, jurisdiction, status)
    listed = await fetch_both(client, "requests", params={"jurisdiction_id": TEST_CODE})
    assert len(listed.json) == 2  # no refused POST stored anything


async def test_multi_mode_serves_a_named_jurisdiction(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    first, _ = await seed_two(client, tmp_path)
    world = await make_world(client, first, TEST_CODE)
    for jurisdiction in (TEST_CODE, TEST_CODE.upper()):
        for endpoint in ENDPOINTS:
            both = await call_endpoint(client, world, endpoint, jurisdiction, 200)
            check_success(both, endpoint, world)


async def test_multi_mode_services_are_per_jurisdiction(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, second = await seed_two(client, tmp_path)
    test = await fetch_both(client, "services", params={"jurisdiction_id": TEST_CODE})
    other = await fetch_both(client, "services", params={"jurisdiction_id": OTHER_CODE})
    assert {s["service_code"] for s in test.json} == TEST_SERVICES
    assert {s["service_code"] for s in other.json} == OTHER_SERVICES
    assert all(s["service_name"].startswith(OTHER_PREFIX) for s in other.json)
    assert not any(s["service_name"].startswith(OTHER_PREFIX) for s in test.json)
    # A definition only exists in the jurisdiction that has the service.
    pothole = await fetch_both(client, "services/POTHOLE", params={"jurisdiction_id": TEST_CODE})
    assert pothole.json["service_code"] == "POTHOLE"
    await errors_both(client, "services/POTHOLE", 404, params={"jurisdiction_id": OTHER_CODE})
    # ... and POST only knows the services of the jurisdiction it names.
    data = {
        "api_key": second.api_key,
        "service_code": "POTHOLE",
        **LOCATION,
        "jurisdiction_id": OTHER_CODE,
    }
    await errors_both(client, "requests", 404, method="POST", data=data)
    for code in (TEST_CODE, OTHER_CODE):
        assert (await fetch_both(client, "requests", params={"jurisdiction_id": code})).json == []


async def worlds(client: httpx.AsyncClient, tmp_path: Path) -> tuple[World, World]:
    """Two jurisdictions, each with a request and a token POSTed to it."""
    first, second = await seed_two(client, tmp_path)
    return (
        await make_world(client, first, TEST_CODE),
        await make_world(client, second, OTHER_CODE),
    )


async def scoped_list(client: httpx.AsyncClient, mine: World, theirs: World) -> None:
    listed = await fetch_both(client, "requests", params={"jurisdiction_id": mine.code})
    ids = [r["service_request_id"] for r in listed.json]
    assert mine.request_id in ids
    assert theirs.request_id not in ids
    assert len(ids) == 2  # the realtime and the batch request of this jurisdiction


async def scoped_id_filter(client: httpx.AsyncClient, mine: World, theirs: World) -> None:
    params = {
        "jurisdiction_id": mine.code,
        "service_request_id": f"{mine.request_id},{theirs.request_id}",
    }
    listed = await fetch_both(client, "requests", params=params)
    assert [r["service_request_id"] for r in listed.json] == [mine.request_id]


async def scoped_read(client: httpx.AsyncClient, mine: World, theirs: World) -> None:
    params = {"jurisdiction_id": mine.code}
    own = await fetch_both(client, f"requests/{mine.request_id}", params=params)
    assert [r["service_request_id"] for r in own.json] == [mine.request_id]
    await errors_both(client, f"requests/{theirs.request_id}", 404, params=params)


async def scoped_token(client: httpx.AsyncClient, mine: World, theirs: World) -> None:
    params = {"jurisdiction_id": mine.code}
    own = await fetch_both(client, f"tokens/{mine.token}", params=params)
    assert [r["token"] for r in own.json] == [mine.token]
    await errors_both(client, f"tokens/{theirs.token}", 404, params=params)


async def scoped_post(client: httpx.AsyncClient, mine: World, theirs: World) -> None:
    new_id = (await post_request(client, mine.seed, "LITTER.BIN", mine.code))["service_request_id"]
    own = await fetch_both(client, f"requests/{new_id}", params={"jurisdiction_id": mine.code})
    assert [r["service_request_id"] for r in own.json] == [new_id]
    await errors_both(client, f"requests/{new_id}", 404, params={"jurisdiction_id": theirs.code})
    listed = await fetch_both(client, "requests", params={"jurisdiction_id": theirs.code})
    assert new_id not in [r["service_request_id"] for r in listed.json]


# In this order: the list check counts requests, and the POST check adds some.
SCOPED_CHECKS = (scoped_list, scoped_id_filter, scoped_read, scoped_token, scoped_post)


async def test_multi_mode_scopes_each_method(client: httpx.AsyncClient, tmp_path: Path) -> None:
    test, other = await worlds(client, tmp_path)
    for check in SCOPED_CHECKS:
        await check(client, test, other)
        await check(client, other, test)


# ---------------------------------------------------------------------------------------
# settings


async def test_forced_multi_mode_with_one_jurisdiction_requires_it(
    client: httpx.AsyncClient, seeded: Seed, make_client: AppFactory
) -> None:
    world = await make_world(client, seeded)
    multi: httpx.AsyncClient = await make_client(multi_jurisdiction=True)
    for endpoint in ENDPOINTS:
        await expect_jurisdiction_error(multi, world, endpoint, None, 400)
        await expect_jurisdiction_error(multi, world, endpoint, UNKNOWN_CODE, 404)
        both = await call_endpoint(multi, world, endpoint, TEST_CODE, 200)
        check_success(both, endpoint, world)


async def test_default_jurisdiction_setting_serves_it_when_absent(
    client: httpx.AsyncClient, tmp_path: Path, make_client: AppFactory
) -> None:
    test, other = await worlds(client, tmp_path)
    served: httpx.AsyncClient = await make_client(default_jurisdiction=OTHER_CODE)
    for params in ({}, {"jurisdiction_id": OTHER_CODE}):
        services = await fetch_both(served, "services", params=params)
        assert {s["service_code"] for s in services.json} == OTHER_SERVICES
        listed = await fetch_both(served, "requests", params=params)
        ids = {r["service_request_id"] for r in listed.json}
        assert other.request_id in ids
        assert test.request_id not in ids
        token = await fetch_both(served, f"tokens/{other.token}", params=params)
        assert [r["token"] for r in token.json] == [other.token]
        await errors_both(served, f"requests/{test.request_id}", 404, params=params)
        await errors_both(served, f"tokens/{test.token}", 404, params=params)
    created = await fetch_both(
        served,
        "requests",
        method="POST",
        data={"api_key": other.seed.api_key, "service_code": "GRAFFITI", **LOCATION},
    )
    # Both formats POSTed a batch request; their tokens belong to the default jurisdiction.
    tokens = [created.json[0]["token"], created.xml[0]["token"]]
    for token in tokens:
        resolved = await fetch_both(
            client, f"tokens/{token}", params={"jurisdiction_id": OTHER_CODE}
        )
        assert [r["token"] for r in resolved.json] == [token]
        await errors_both(client, f"tokens/{token}", 404, params={"jurisdiction_id": TEST_CODE})
    await errors_both(served, "services/POTHOLE", 404)


# ---------------------------------------------------------------------------------------
# base path


async def test_configured_base_path(
    client: httpx.AsyncClient, seeded: Seed, make_client: AppFactory
) -> None:
    moved: httpx.AsyncClient = await make_client(base_path="/api/georeport")
    for fmt in FORMATS:
        response = await moved.get(f"/api/georeport/services.{fmt}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == content_type(fmt)
        if fmt == "json":
            codes = {s["service_code"] for s in response.json()}
        else:
            root, value = xml_to_value(response.content)
            assert root == "services"
            codes = {s["service_code"] for s in value}
        assert codes == TEST_SERVICES
        assert_error_document(await moved.get(f"{BASE}/services.{fmt}"), 404, fmt)
    assert_error_document(await moved.get(f"{BASE}/services"), 404, "xml")
    await errors_both(moved, "services/NOPE", 404, base="/api/georeport")
