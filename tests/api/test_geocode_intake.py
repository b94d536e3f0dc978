"""Addresses to places at intake (POST requests), on both backends and in both formats.

The Toronto jurisdiction with its shipped ward map and the demo's gazetteer (the captured
requests' own addresses and points, ``app.demo.loader.load_address_points``): an address-only
POST gets the captured point and the ward the shipped map puts it in (worked out here with
Shapely from the file); a located POST without an address gets the captured address by
reverse lookup; an address nobody knows is still accepted, without a point.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from shapely.geometry import Point, shape
from werkzeug import Request, Response

from app.demo.loader import BOUNDARIES, REQUESTS_FILE, WARD_MAPS, load_address_points
from app.geo.place import haversine_m
from app.geo.settings import GeocodeSettings
from tests.api.test_wards_api import TORONTO, city
from tests.conftest import AppFactory, Seed, clear, engine_of
from tests.support import xml_to_value

BASE = "/open311/v2"
FORMATS = ("json", "xml")
# A captured request whose address is written once in the file.
ADDRESS = "333 King St E"


@cache
def captured(street_part: str) -> tuple[str, float, float]:
    """The captured request's full address and point."""
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    (record,) = [
        r for r in records if r["address"] and r["address"].split(",")[0].strip() == street_part
    ]
    return str(record["address"]), float(record["lat"]), float(record["long"])


@cache
def ward_at(lat: float, lon: float) -> str | None:
    """The ward of the shipped Toronto map that contains the point (Shapely, the file)."""
    data = json.loads((BOUNDARIES / WARD_MAPS[TORONTO][1]).read_text(encoding="utf-8"))
    here = Point(lon, lat)
    found = [
        str(f["properties"]["ward_code"])
        for f in data["features"]
        if shape(f["geometry"]).covers(here)
    ]
    return found[0] if len(found) == 1 else None


async def toronto(make_client: AppFactory) -> tuple[httpx.AsyncClient, Seed]:
    client: httpx.AsyncClient = await make_client()
    await clear(engine_of(client))
    seed = await city(client, TORONTO)
    async with engine_of(client).begin() as conn:
        assert await load_address_points(conn, TORONTO) > 900
    return client, seed


def parse(response: httpx.Response, fmt: str) -> Any:
    assert response.status_code == 200, response.text[:500]
    return response.json() if fmt == "json" else xml_to_value(response.content)[1]


async def post_and_read(
    client: httpx.AsyncClient, seed: Seed, fmt: str, **fields: str
) -> dict[str, Any]:
    form = {
        "api_key": seed.api_key,
        "service_code": "LITTER.BIN",
        "jurisdiction_id": TORONTO,
        **fields,
    }
    (created,) = parse(await client.post(f"{BASE}/requests.{fmt}", data=form), fmt)
    read = await client.get(
        f"{BASE}/requests/{created['service_request_id']}.{fmt}",
        params={"jurisdiction_id": TORONTO, "extensions": "true"},
    )
    (item,) = parse(read, fmt)
    return dict(item)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_address_only_report_gets_the_gazetteers_point_and_ward(
    make_client: AppFactory, fmt: str
) -> None:
    client, seed = await toronto(make_client)
    _, lat, lon = captured(ADDRESS)
    item = await post_and_read(client, seed, fmt, address_string="333 King Street East")
    got_lat, got_lon = float(item["lat"]), float(item["long"])
    assert haversine_m(got_lat, got_lon, lat, lon) < 1.0
    assert item["address"] == "333 King Street East"  # as the reporter wrote it
    expected_ward = ward_at(got_lat, got_lon)
    assert expected_ward is not None
    assert item["extended_attributes"]["ward"] == expected_ward


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_located_report_without_an_address_gets_one(
    make_client: AppFactory, fmt: str
) -> None:
    client, seed = await toronto(make_client)
    full, lat, lon = captured(ADDRESS)
    item = await post_and_read(client, seed, fmt, lat=repr(lat), long=repr(lon))
    assert item["address"] is not None
    assert item["address"].startswith(ADDRESS)
    assert item["address"] in (full, ADDRESS)
    assert float(item["lat"]) == pytest.approx(lat)
    assert item["extended_attributes"]["ward"] == ward_at(lat, lon)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_address_that_cannot_be_found_is_accepted_without_a_point(
    make_client: AppFactory, fmt: str
) -> None:
    client, seed = await toronto(make_client)
    item = await post_and_read(client, seed, fmt, address_string="999 Nowhere Imaginary Blvd")
    assert item["address"] == "999 Nowhere Imaginary Blvd"
    assert item["lat"] is None
    assert item["long"] is None
    assert item["extended_attributes"]["ward"] is None


async def test_a_report_with_its_own_address_and_point_is_left_as_sent(
    make_client: AppFactory,
) -> None:
    client, seed = await toronto(make_client)
    _, lat, lon = captured(ADDRESS)
    item = await post_and_read(
        client, seed, "json", lat=repr(lat), long=repr(lon), address_string="Front of the Sun"
    )
    assert item["address"] == "Front of the Sun"
    assert item["lat"] == pytest.approx(lat)


# ---------------------------------------------------------------------------------------
# The HTTP geocoder (a fake Nominatim on loopback: upstream HTTP is what tests may fake)


@pytest.fixture(scope="module")
def nominatim() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def fake_nominatim(server: HTTPServer, *, delay_s: float = 0.0) -> None:
    """/search knows ADDRESS only; /reverse answers it for any point (after ``delay_s``)."""
    _, lat, lon = captured(ADDRESS)
    number, _, street = ADDRESS.partition(" ")
    item = {
        "place_id": 1,
        "lat": str(lat),
        "lon": str(lon),
        "category": "place",
        "type": "house",
        "place_rank": 30,
        "display_name": f"{ADDRESS}, Toronto, Ontario, Canada",
        "address": {"house_number": number, "road": street, "city": "Toronto"},
    }

    def search(request: Request) -> Response:
        time.sleep(delay_s)
        known = request.args.get("q", "").upper().startswith(ADDRESS.upper())
        return Response(json.dumps([item] if known else []), content_type="application/json")

    def reverse(request: Request) -> Response:
        time.sleep(delay_s)
        return Response(json.dumps(item), content_type="application/json")

    server.clear()
    server.expect_request("/search").respond_with_handler(search)
    server.expect_request("/reverse").respond_with_handler(reverse)


async def http_toronto(
    make_client: AppFactory, server: HTTPServer, **changes: Any
) -> tuple[httpx.AsyncClient, Seed]:
    geocode = GeocodeSettings(kind="http", base_url=server.url_for("/"), **changes)
    client: httpx.AsyncClient = await make_client(geocode=geocode)
    await clear(engine_of(client))
    return client, await city(client, TORONTO)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_http_geocoder_places_and_addresses_reports(
    make_client: AppFactory, nominatim: HTTPServer, fmt: str
) -> None:
    fake_nominatim(nominatim)
    client, seed = await http_toronto(make_client, nominatim)
    _, lat, lon = captured(ADDRESS)
    item = await post_and_read(client, seed, fmt, address_string=ADDRESS)
    assert haversine_m(float(item["lat"]), float(item["long"]), lat, lon) < 1.0
    assert item["extended_attributes"]["ward"] == ward_at(float(item["lat"]), float(item["long"]))
    located = await post_and_read(client, seed, fmt, lat="43.6515", long="-79.3659")
    assert located["address"] is not None
    assert located["address"].startswith(ADDRESS)
    unknown = await post_and_read(client, seed, fmt, address_string="1 Unknown Lane")
    assert unknown["lat"] is None
    assert unknown["address"] == "1 Unknown Lane"


async def test_a_slow_http_geocoder_does_not_hold_the_post(
    make_client: AppFactory, nominatim: HTTPServer
) -> None:
    fake_nominatim(nominatim, delay_s=3.0)
    client, seed = await http_toronto(
        make_client,
        nominatim,
        connect_timeout_s=0.3,
        read_timeout_s=0.5,
        total_timeout_s=0.6,
        cache_size=0,
    )
    started = time.monotonic()
    item = await post_and_read(client, seed, "json", address_string=ADDRESS)
    assert time.monotonic() - started < 2.5  # generous: the lookup gives up after 0.6 s
    assert item["lat"] is None
    assert item["address"] == ADDRESS
