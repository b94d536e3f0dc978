"""Wards over HTTP and on the command line (issue 3).

* POST requests geocodes the location to a ward of the jurisdiction's current ward set;
  GET requests shows it only with ``extensions=true`` (``extended_attributes``), so strict
  clients keep the 17 core fields; locations outside every ward are a 400 unless the
  jurisdiction accepts them; the Steeles Avenue points ~1 m outside Toronto use the tolerance.
* GET requests ``ward=`` filter, GET ``areas.{fmt}`` (the areas extension) and discovery.
* ``open311 boundaries import|list|activate|reassign`` as real processes.

The lookup rule itself (boundaries, agreement of PostGIS and Shapely) is tested in
tests/geo/test_wards.py; here expected wards come from the shipped maps' documented facts.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import Point, box, mapping, shape
from sqlalchemy import event, func, select, update

from app.demo.loader import BOUNDARIES, REQUESTS_FILE, WARD_MAPS, load_demo
from app.domain.boundaries import AreaInput, import_boundary_set, read_geojson
from app.domain.discovery import AREAS_SPECIFICATION
from app.settings import DatabaseSettings, Settings, WardSettings
from app.store.engine import make_engine
from app.store.tables import Area, BoundarySet, Jurisdiction, ServiceRequest, ServiceType
from tests.conftest import AppFactory, Seed, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import (
    JSON_TYPE,
    REQUEST_FIELDS,
    XML_TYPE,
    assert_parity,
    error_descriptions,
    fetch_both,
    validate_schema,
)

BASE = "/open311/v2"
TORONTO = "toronto.ca"
CHICAGO = "cityofchicago.org"
REQUEST = ServiceRequest.__table__
JURISDICTION = Jurisdiction.__table__
BOUNDARY_SET = BoundarySet.__table__
AREA = Area.__table__

CORE_FIELDS = list(REQUEST_FIELDS)
AREA_FIELDS = ["code", "name", "kind", "boundary_set", "current"]

# City halls and their wards (issue 3; shared/data/README.md).
CITY_HALLS = {TORONTO: (43.6534, -79.3841, "10"), CHICAGO: (41.8837, -87.6319, "42")}
# One of the five located demo requests at Steeles Ave that lie ~1.0 m outside every Toronto
# ward, and its nearest ward (shared/data/README.md).
STEELES_REQUEST, STEELES_WARD = "101005570066", "22"
# The window of the 1000 captured Toronto requests (2018-09-26 .. 2018-10-28).
WINDOW = {
    "start_date": "2018-09-26T00:00:00-04:00",
    "end_date": "2018-10-29T00:00:00-04:00",
}
Params = list[tuple[str, str]]


# ---------------------------------------------------------------------------------------
# Helpers


@dataclass(frozen=True)
class ShippedArea:
    """An area of a shipped ward map, in file order."""

    code: str
    name: str
    geometry: Any


@cache
def shipped(jurisdiction: str) -> tuple[ShippedArea, ...]:
    """The wards of the map shipped for a jurisdiction, as the file has them."""
    document = json.loads((BOUNDARIES / WARD_MAPS[jurisdiction][1]).read_text(encoding="utf-8"))
    return tuple(
        ShippedArea(
            f["properties"]["ward_code"], f["properties"]["ward_name"], shape(f["geometry"])
        )
        for f in document["features"]
    )


def ward_name(jurisdiction: str, code: str) -> str:
    """The name of a ward in the shipped file."""
    (name,) = [a.name for a in shipped(jurisdiction) if a.code == code]
    return name


@cache
def demo_record(request_id: str) -> dict[str, Any]:
    """A captured request of the demo file."""
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    (record,) = [r for r in records if str(r["service_request_id"]) == request_id]
    return dict(record)


def invalidate(client: httpx.AsyncClient) -> None:
    """Forget the app's cached jurisdictions (and their current ward sets)."""
    client.app.state.open311.jurisdictions.invalidate()  # type: ignore[attr-defined]


@cache
def shipped_inputs(jurisdiction: str) -> tuple[AreaInput, ...]:
    """The shipped ward map of a city, read and validated once per session."""
    path = BOUNDARIES / WARD_MAPS[jurisdiction][1]
    return tuple(read_geojson(path, code_field="ward_code", name_field="ward_name"))


async def city(client: httpx.AsyncClient, code: str) -> Seed:
    """The test catalogue and a key under ``code``, plus the shipped ward map as current set.

    What ``load_ward_map`` does for a city without requests (that one is exercised by
    ``load_demo`` below), minus re-reading the multi-megabyte file in every test.
    """
    engine = engine_of(client)
    seed = await seed_catalog(engine, code=code)
    set_name, file_name, _, _ = WARD_MAPS[code]
    await import_boundary_set(
        engine, jurisdiction=code, name=set_name, areas=shipped_inputs(code), source=file_name
    )
    invalidate(client)
    return seed


def scope(jurisdiction: str | None) -> Params:
    """The jurisdiction_id parameter when one must be given."""
    return [("jurisdiction_id", jurisdiction)] if jurisdiction else []


def post_form(seed: Seed, location: Params, jurisdiction: str | None = None) -> Params:
    """A POST body for the realtime, attribute-free service LITTER.BIN."""
    return [
        ("api_key", seed.api_key),
        ("service_code", "LITTER.BIN"),
        *location,
        *scope(jurisdiction),
    ]


def at(lat: float, lon: float) -> Params:
    """A lat/long location."""
    return [("lat", repr(lat)), ("long", repr(lon))]


async def post_both(client: httpx.AsyncClient, form: Params) -> list[str]:
    """POST the same request as .json and .xml; the two new ids."""
    both = await fetch_both(client, "requests", method="POST", data=dict(form))
    validate_schema("post", both.json)
    assert both.xml_root == "service_requests"
    ids = [both.json[0]["service_request_id"], both.xml[0]["service_request_id"]]
    assert len(set(ids)) == 2
    return ids


async def post_refused(client: httpx.AsyncClient, form: Params, jurisdiction: str) -> str:
    """POST in both formats, expecting the 400 'outside'; the description."""
    both = await fetch_both(client, "requests", method="POST", data=dict(form), expect=400)
    (description,) = error_descriptions(both.json)
    assert both.xml_root == "errors"
    assert [e["description"] for e in both.xml] == [description]
    assert [e["code"] for e in both.xml] == ["400"]
    assert "outside" in description
    assert jurisdiction in description
    return description


async def extended(
    client: httpx.AsyncClient, request_id: str, jurisdiction: str | None = None
) -> dict[str, Any]:
    """GET requests/{id} with extensions=true in both formats; the ward fields of its
    extended_attributes (the channel fields are tested with the service promise)."""
    both = await fetch_both(
        client, f"requests/{request_id}", [("extensions", "true"), *scope(jurisdiction)]
    )
    (item,) = both.json
    assert list(item) == [*CORE_FIELDS, "extended_attributes"]
    assert item["service_request_id"] == request_id
    return {k: item["extended_attributes"][k] for k in ("ward", "ward_name")}


async def stored_rows(client: httpx.AsyncClient) -> int:
    """How many service requests are stored."""
    async with engine_of(client).connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(REQUEST))).scalar_one())


def ward_xml(code: str | None, name: str | None) -> bytes:
    """The XML of the start of extended_attributes (the ward fields) as the codec writes it."""
    if code is None:
        return b"<extended_attributes><ward/><ward_name/>"
    return f"<extended_attributes><ward>{code}</ward><ward_name>{name}</ward_name>".encode()


# ---------------------------------------------------------------------------------------
# POST requests: the ward of a new request, shown only with extensions=true


async def check_ward_shown_only_with_extensions(
    client: httpx.AsyncClient, request_id: str, ward: str, name: str, given: str | None
) -> None:
    """extended_attributes carry the ward with extensions=true; without, the 17 core fields."""
    assert await extended(client, request_id, given) == {"ward": ward, "ward_name": name}
    response = await client.get(
        f"{BASE}/requests/{request_id}.xml", params=[("extensions", "true"), *scope(given)]
    )
    assert ward_xml(ward, name) in response.content
    core = await fetch_both(client, f"requests/{request_id}", scope(given))
    validate_schema("requests", core.json)
    assert [list(item) for item in core.json] == [CORE_FIELDS]
    assert b"extended_attributes" not in core.xml_response.content
    assert b"<ward>" not in core.xml_response.content


@pytest.mark.parametrize("jurisdiction", [TORONTO, CHICAGO])
async def test_city_hall_gets_its_ward(client: httpx.AsyncClient, jurisdiction: str) -> None:
    seed = await city(client, jurisdiction)
    lat, lon, ward = CITY_HALLS[jurisdiction]

    ids = await post_both(client, post_form(seed, at(lat, lon)))

    for request_id in ids:
        await check_ward_shown_only_with_extensions(
            client, request_id, ward, ward_name(jurisdiction, ward), None
        )


async def test_each_city_uses_its_own_wards(client: httpx.AsyncClient) -> None:
    # Two cities stored: multi-jurisdiction mode, jurisdiction_id on every call.
    seeds = {code: await city(client, code) for code in (TORONTO, CHICAGO)}
    for code, (lat, lon, ward) in CITY_HALLS.items():
        ids = await post_both(client, post_form(seeds[code], at(lat, lon), code))
        for request_id in ids:
            await check_ward_shown_only_with_extensions(
                client, request_id, ward, ward_name(code, ward), code
            )
    # Toronto City Hall is in no ward of Chicago.
    lat, lon, _ = CITY_HALLS[TORONTO]
    await post_refused(client, post_form(seeds[CHICAGO], at(lat, lon), CHICAGO), CHICAGO)
    assert await stored_rows(client) == 4


@contextlib.contextmanager
def statements(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs (each one a round trip): those
    through SQLAlchemy, and one entry per statement of the store's own path (asyncpg, or
    one hop of the embedded store)."""
    sent: list[str] = []
    engine = engine_of(client).sync_engine
    store = client.app.state.open311.store  # type: ignore[attr-defined]
    before = store.statements

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)
        sent += ["(direct)"] * (store.statements - before)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_post_with_ward_and_idempotency_key_is_one_statement(
    client: httpx.AsyncClient, fmt: str
) -> None:
    seed = await city(client, TORONTO)
    lat, lon, ward = CITY_HALLS[TORONTO]
    postgis = engine_of(client).dialect.name == "postgresql"
    form = dict(post_form(seed, at(lat, lon)))
    # A first POST fills the caches (jurisdiction, catalogue, verified key), as on any server
    # that has been up for more than a moment.
    assert (await client.post(f"{BASE}/requests.{fmt}", data=form)).status_code == 200
    # Outside every ward: a 400, nothing stored and the key not used up.
    with statements(client) as sent:
        refused = await client.post(
            f"{BASE}/requests.{fmt}",
            data=dict(post_form(seed, at(0.0, 0.0))),
            headers={"Idempotency-Key": f"one-trip-{fmt}"},
        )
    assert refused.status_code == 400, refused.text
    assert await stored_rows(client) == 1
    if postgis:
        assert len(sent) == 1, sent
    with statements(client) as sent:
        created = await client.post(
            f"{BASE}/requests.{fmt}", data=form, headers={"Idempotency-Key": f"one-trip-{fmt}"}
        )
    assert created.status_code == 200, created.text
    if postgis:
        # Rate-limit token, key claim with its outcome, ward lookup and INSERT: one statement.
        assert len(sent) == 1, sent
    request_id = (
        created.json()[0]["service_request_id"]
        if fmt == "json"
        else (ET.fromstring(created.content).findtext("request/service_request_id"))  # noqa: S314 - parses this server's own response
    )
    assert request_id
    assert (await extended(client, request_id))["ward"] == ward
    # The same key again: the same answer, nothing new stored.
    replayed = await client.post(
        f"{BASE}/requests.{fmt}", data=form, headers={"Idempotency-Key": f"one-trip-{fmt}"}
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == created.content
    assert await stored_rows(client) == 2
    # Another body under the same key: 422.
    other = await client.post(
        f"{BASE}/requests.{fmt}",
        data={**form, "description": "another request"},
        headers={"Idempotency-Key": f"one-trip-{fmt}"},
    )
    assert other.status_code == 422, other.text


@pytest.mark.parametrize(
    ("jurisdiction", "lat", "lon"),
    [(CHICAGO, 41.964, -87.812), (TORONTO, 0.0, 0.0)],
    ids=["chicago-enclave", "null-island"],
)
async def test_location_outside_is_refused_unless_accepted(
    client: httpx.AsyncClient, jurisdiction: str, lat: float, lon: float
) -> None:
    seed = await city(client, jurisdiction)
    form = post_form(seed, at(lat, lon))

    await post_refused(client, form, jurisdiction)
    assert await stored_rows(client) == 0

    async with engine_of(client).begin() as conn:
        await conn.execute(
            update(Jurisdiction)
            .where(JURISDICTION.c.code == jurisdiction)
            .values(accepts_outside=True)
        )
    invalidate(client)
    ids = await post_both(client, form)
    assert await stored_rows(client) == 2
    for request_id in ids:
        assert await extended(client, request_id) == {"ward": None, "ward_name": None}
        response = await client.get(f"{BASE}/requests/{request_id}.xml?extensions=true")
        assert ward_xml(None, None) in response.content


async def test_steeles_point_uses_the_tolerance(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    seed = await city(client, TORONTO)
    record = demo_record(STEELES_REQUEST)
    form = post_form(seed, at(record["lat"], record["long"]))
    ward = STEELES_WARD

    # Default tolerance (5 m): the nearest ward.
    ids = await post_both(client, form)
    for new_id in ids:
        assert await extended(client, new_id) == {
            "ward": ward,
            "ward_name": ward_name(TORONTO, ward),
        }

    # No tolerance: ~1 m outside the city is outside.
    strict = await make_client(wards=WardSettings(tolerance_m=0))
    await post_refused(strict, form, TORONTO)
    assert await stored_rows(client) == 2


async def test_address_only_requests_have_no_ward(client: httpx.AsyncClient) -> None:
    seed = await city(client, TORONTO)
    for location in ([("address_string", "100 Queen St W, Toronto")], [("address_id", "13448495")]):
        ids = await post_both(client, post_form(seed, location))
        for request_id in ids:
            assert await extended(client, request_id) == {"ward": None, "ward_name": None}
    assert await stored_rows(client) == 4


# ---------------------------------------------------------------------------------------
# GET requests: ward filter


async def listed(client: httpx.AsyncClient, params: Params) -> list[dict[str, Any]]:
    """GET requests in both formats (parity checked); the JSON items."""
    both = await fetch_both(client, "requests", params)
    assert both.xml_root == "service_requests"
    if both.json:
        validate_schema("requests", both.json)
    return list(both.json)


async def test_ward_filter_on_the_demo_requests(client: httpx.AsyncClient) -> None:
    # One demo load for every case: loading 1000 requests is the costly part.
    await load_demo(engine_of(client), original_dates=True)
    window = list(WINDOW.items())
    everything = await listed(client, [*window, ("extensions", "true")])
    assert len(everything) == 1000
    wards = {item["service_request_id"]: item["extended_attributes"]["ward"] for item in everything}
    assert len(set(wards.values()) - {None}) == 25
    for item in everything:
        attributes = item["extended_attributes"]
        if attributes["ward"] is not None:
            assert attributes["ward_name"] == ward_name(TORONTO, attributes["ward"])

    def expected(codes: set[str], **fields: str) -> list[str]:
        return [
            item["service_request_id"]
            for item in everything
            if wards[item["service_request_id"]] in codes
            and all(item[k] == v for k, v in fields.items())
        ]

    cases: list[tuple[Params, list[str]]] = [
        ([("ward", "10")], expected({"10"})),
        ([("ward", "10,11")], expected({"10", "11"})),
        ([("ward", "10"), ("ward", "11")], expected({"10", "11"})),
        ([("ward", " 10 , 11 ")], expected({"10", "11"})),
        ([("ward", "99")], []),
        ([("ward", "Spadina-Fort York")], []),
        ([("ward", "10"), ("status", "open")], expected({"10"}, status="open")),
        (
            [("ward", "10,11"), ("service_code", "CSROWR-12")],
            expected({"10", "11"}, service_code="CSROWR-12"),
        ),
        (
            [("ward", "11"), ("status", "closed"), ("service_code", "CSROWR-12")],
            expected({"11"}, status="closed", service_code="CSROWR-12"),
        ),
    ]
    assert len(cases[0][1]) > 0
    assert len(cases[1][1]) > len(cases[0][1])
    assert 0 < len(cases[6][1]) < len(cases[0][1])
    for params, ids in cases:
        items = await listed(client, [*window, *params])
        assert [item["service_request_id"] for item in items] == ids, params
        assert all(list(item) == CORE_FIELDS for item in items), params
    # With extensions the filtered items carry their (matching) ward.
    items = await listed(client, [*window, ("ward", "10"), ("extensions", "true")])
    assert {item["extended_attributes"]["ward"] for item in items} == {"10"}


# ---------------------------------------------------------------------------------------
# GET areas (extension)


@dataclass
class AreasBoth:
    """GET areas in both formats: JSON items and XML items (leaf texts)."""

    json: list[dict[str, Any]]
    xml: list[dict[str, Any]]
    json_response: httpx.Response
    xml_response: httpx.Response


def decode_areas_xml(body: bytes) -> list[dict[str, Any]]:
    """The items of an ``<areas>`` XML document (stdlib parser, not the app's codec)."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:60]
    root = ET.fromstring(body)  # noqa: S314 - parses this server's own response
    assert root.tag == "areas"
    items = []
    for element in root:
        assert element.tag == "area"
        names = [child.tag for child in element]
        assert len(names) == len(set(names))
        assert all(len(child) == 0 for child in element)
        items.append({child.tag: child.text for child in element})
    return items


async def fetch_areas(
    client: httpx.AsyncClient, params: Params | None = None, expect: int = 200
) -> AreasBoth:
    """GET areas.json and areas.xml; status, exact Content-Type and field parity checked."""
    responses = {}
    for fmt in ("json", "xml"):
        response = await client.get(f"{BASE}/areas.{fmt}", params=params)
        assert response.status_code == expect, (fmt, response.text[:300])
        assert response.headers["content-type"] == (JSON_TYPE if fmt == "json" else XML_TYPE)
        responses[fmt] = response
    json_items = responses["json"].json()
    xml_items = decode_areas_xml(responses["xml"].content)
    assert len(json_items) == len(xml_items)
    for j, x in zip(json_items, xml_items, strict=True):
        assert list(j) == list(x)
        if "geometry" in j:
            # JSON carries a GeoJSON object, XML the same GeoJSON as text.
            assert json.loads(x["geometry"]) == j["geometry"]
            j = {k: v for k, v in j.items() if k != "geometry"}
            x = {k: v for k, v in x.items() if k != "geometry"}
        assert_parity(j, x)
    return AreasBoth(json_items, xml_items, responses["json"], responses["xml"])


def area_items(
    areas: Sequence[ShippedArea], boundary_set: str, current: bool, kind: str = "ward"
) -> list[dict[str, Any]]:
    """The expected items of GET areas for the areas of one set, in import order."""
    return [
        {
            "code": a.code,
            "name": a.name,
            "kind": kind,
            "boundary_set": boundary_set,
            "current": current,
        }
        for a in areas
    ]


def write_geojson(path: Path, features: list[tuple[str, str, Any]]) -> Path:
    """A GeoJSON FeatureCollection of (code, name, shapely geometry)."""
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(g)}
            for c, n, g in features
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# Two boxes over Toronto: a small second ward map (west / centre of the city).
TWO_BOXES = [
    ("W", "West", box(-79.70, 43.50, -79.40, 43.90)),
    ("C", "Centre", box(-79.40, 43.50, -79.30, 43.90)),
]


async def import_boxes(
    client: httpx.AsyncClient, tmp_path: Path, name: str, kind: str = "ward"
) -> list[ShippedArea]:
    """Import TWO_BOXES as a new current set of Toronto; the areas as imported."""
    areas = read_geojson(write_geojson(tmp_path / f"{name}.geojson", TWO_BOXES))
    await import_boundary_set(
        engine_of(client), jurisdiction=TORONTO, name=name, areas=areas, kind=kind
    )
    invalidate(client)
    return [ShippedArea(c, n, g) for c, n, g in TWO_BOXES]


async def test_areas_lists_the_current_wards_in_import_order(client: httpx.AsyncClient) -> None:
    await city(client, TORONTO)
    expected = area_items(shipped(TORONTO), "toronto-wards-2018", True)
    assert len(expected) == 25

    both = await fetch_areas(client)
    assert both.json == expected
    assert [item["code"] for item in both.xml] == [str(n) for n in range(1, 26)]
    assert all(item["current"] == "true" for item in both.xml)

    assert (await fetch_areas(client, [("kind", "ward")])).json == expected
    assert (await fetch_areas(client, [("kind", "neighbourhood")])).json == []


async def test_areas_geometry_is_geojson_in_both_formats(client: httpx.AsyncClient) -> None:
    await city(client, TORONTO)
    both = await fetch_areas(client, [("geometry", "true")])
    assert [list(item) for item in both.json] == [[*AREA_FIELDS, "geometry"]] * 25
    for item, area in zip(both.json, shipped(TORONTO), strict=True):
        assert item["code"] == area.code
        assert item["geometry"]["type"] == "MultiPolygon"
        served = shape(item["geometry"])
        assert served.is_valid
        assert shapely.equals_exact(
            shapely.normalize(served), shapely.normalize(area.geometry), tolerance=1e-7
        ), area.code
    # Without geometry=true there is none.
    plain = await fetch_areas(client, [("geometry", "false")])
    assert [list(item) for item in plain.json] == [AREA_FIELDS] * 25


async def test_areas_of_an_older_or_unknown_boundary_set(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    seed = await city(client, TORONTO)
    boxes = await import_boxes(client, tmp_path, "toronto-boxes")
    # New requests get a ward of the new current set.
    (request_id, _) = await post_both(client, post_form(seed, at(*CITY_HALLS[TORONTO][:2])))
    assert await extended(client, request_id) == {"ward": "C", "ward_name": "Centre"}

    # Import order (W before C), not code order.
    assert (await fetch_areas(client)).json == area_items(boxes, "toronto-boxes", True)
    old = await fetch_areas(client, [("boundary_set", "toronto-wards-2018")])
    assert old.json == area_items(shipped(TORONTO), "toronto-wards-2018", False)
    assert all(item["current"] == "false" for item in old.xml)
    named = await fetch_areas(client, [("boundary_set", "toronto-boxes"), ("kind", "ward")])
    assert named.json == area_items(boxes, "toronto-boxes", True)

    # An unknown set is a 404 errors document.
    missing = await fetch_both(client, "areas", [("boundary_set", "no-such-set")], expect=404)
    (description,) = error_descriptions(missing.json)
    assert "no-such-set" in description
    assert missing.xml_root == "errors"
    assert missing.xml == [{"code": "404", "description": description}]


async def test_areas_kind_filter(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await city(client, TORONTO)
    boxes = await import_boxes(client, tmp_path, "toronto-districts", kind="district")
    districts = area_items(boxes, "toronto-districts", True, kind="district")
    wards = area_items(shipped(TORONTO), "toronto-wards-2018", True)

    everything = (await fetch_areas(client)).json
    assert sorted(everything, key=repr) == sorted(districts + wards, key=repr)
    assert (await fetch_areas(client, [("kind", "ward")])).json == wards
    assert (await fetch_areas(client, [("kind", "district")])).json == districts


async def test_jurisdiction_without_boundary_sets_has_no_areas(
    client: httpx.AsyncClient,
) -> None:
    seed = await seed_catalog(engine_of(client), code=TORONTO)
    both = await fetch_areas(client)
    assert both.json == []
    assert both.xml == []
    assert both.xml_response.content.endswith(b"<areas/>")
    # Requests of such a jurisdiction have no ward, and the filter finds none.
    ids = await post_both(client, post_form(seed, at(*CITY_HALLS[TORONTO][:2])))
    assert await extended(client, ids[0]) == {"ward": None, "ward_name": None}
    assert await listed(client, [("ward", "10")]) == []


async def test_discovery_lists_the_areas_extension_after_georeport(
    client: httpx.AsyncClient,
) -> None:
    await seed_catalog(engine_of(client), code=TORONTO)
    both = await fetch_both(client, "discovery")
    specifications = [e["specification"] for e in both.json["endpoints"]]
    georeport = specifications.index("http://wiki.open311.org/GeoReport_v2")
    assert specifications.count(AREAS_SPECIFICATION) == 1
    areas = specifications.index(AREAS_SPECIFICATION)
    assert areas > georeport
    endpoint = both.json["endpoints"][areas]
    assert endpoint["url"] == f"http://testserver{BASE}"
    # XML and JSON, and GeoJSON (areas.geojson): the resources it lists.
    assert endpoint["formats"] == ["text/xml", "application/json", "application/geo+json"]
    assert endpoint["resources"] == ["areas.{format}", "areas.geojson"]
    # The advertised URL serves the areas (none here: no boundary set yet).
    for fmt in ("json", "xml"):
        response = await client.get(f"{endpoint['url']}/areas.{fmt}")
        assert response.status_code == 200
        assert response.headers["content-type"] == (JSON_TYPE if fmt == "json" else XML_TYPE)


# ---------------------------------------------------------------------------------------
# The open311 boundaries command, as real processes on an embedded database


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "OPEN311_DB__SQLITE_PATH": str(tmp_path / "cli.db")}
    env.pop("OPEN311_DB__URL", None)
    return env


def run_cli(tmp_path: Path, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``open311`` commands concurrently (each start costs ~2 s)."""
    processes = [
        subprocess.Popen(  # noqa: S603 - our own program, fixed arguments, no shell
            [sys.executable, "-m", "app", *args],
            env=_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must succeed."""
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def listing(output: str) -> dict[str, list[str]]:
    """``boundaries list`` lines by set name: [jurisdiction, kind, name, areas, flag]."""
    rows = [line.split("\t") for line in output.strip().splitlines()]
    assert all(len(row) == 5 for row in rows), output
    return {row[2]: row for row in rows}


# A bow-tie: its ring crosses itself, so the polygon is invalid until repaired.
BOW_TIE = {
    "type": "Polygon",
    "coordinates": [[[-79.5, 43.7], [-79.4, 43.8], [-79.4, 43.7], [-79.5, 43.8], [-79.5, 43.7]]],
}
# Requests stored straight into the CLI database: in box W, in box C, and in Toronto (ward
# map) but in neither box.
CLI_POINTS = [(43.70, -79.50), CITY_HALLS[TORONTO][:2], (43.78, -79.20)]


async def store_cli_requests(path: Path) -> None:
    """Store CLI_POINTS as Toronto requests in the CLI's database (ward not yet assigned)."""
    engine = make_engine(Settings(db=DatabaseSettings(sqlite_path=path)))
    try:
        async with engine.connect() as conn:
            pk = (
                await conn.execute(select(JURISDICTION.c.id).where(JURISDICTION.c.code == TORONTO))
            ).scalar_one()
            service = (
                await conn.execute(
                    select(func.min(ServiceType.__table__.c.id)).where(
                        ServiceType.__table__.c.jurisdiction_id == pk
                    )
                )
            ).scalar_one()
        for lat, lon in CLI_POINTS:
            await make_request(engine, pk, service, lat=lat, lon=lon)
    finally:
        await engine.dispose()


async def cli_state(path: Path) -> tuple[dict[str, bool], list[str | None]]:
    """(current flag by set name, ward code of each stored request by id)."""
    engine = make_engine(Settings(db=DatabaseSettings(sqlite_path=path)))
    try:
        async with engine.connect() as conn:
            flags = dict(
                (await conn.execute(select(BOUNDARY_SET.c.name, BOUNDARY_SET.c.current))).all()
            )
            wards = (
                await conn.execute(
                    select(AREA.c.code)
                    .select_from(REQUEST.outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id))
                    .order_by(REQUEST.c.id)
                )
            ).scalars()
            return flags, list(wards)
    finally:
        await engine.dispose()


def import_command(path: Path, name: str, *flags: str) -> list[str]:
    """``boundaries import`` of a file as a new, not current Toronto set."""
    return ["boundaries", "import", str(path), "--jurisdiction", TORONTO, "--name", name,
            "--no-current", *flags]  # fmt: skip


async def test_boundaries_command(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    good = write_geojson(tmp_path / "boxes.geojson", TWO_BOXES)
    broken = tmp_path / "broken.geojson"
    broken.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"code": "X"}, "geometry": BOW_TIE}],
            }
        ),
        encoding="utf-8",
    )
    # The third request point is in a ward of the shipped map but in neither box.
    outside_boxes = Point(CLI_POINTS[2][1], CLI_POINTS[2][0])
    assert any(area.geometry.covers(outside_boxes) for area in shipped(TORONTO))
    assert not any(geometry.covers(outside_boxes) for _, _, geometry in TWO_BOXES)

    # The demo, and (concurrently: it never opens the database) the refused broken file.
    demo, refused = run_cli(
        tmp_path, ["demo", "--no-requests", "--no-sudbury"], import_command(broken, "bow-tie")
    )
    assert TORONTO in ok(demo)
    assert refused.returncode != 0
    assert "--repair" in refused.stderr
    assert "broken.geojson" in refused.stderr
    assert "Traceback" not in refused.stderr

    await store_cli_requests(database)

    # A valid file, not current; and (read-only, concurrently) an unknown jurisdiction.
    imported, unknown = run_cli(
        tmp_path,
        import_command(good, "test-set"),
        ["boundaries", "reassign", "nowhere.example"],
    )
    assert "2 areas" in ok(imported)
    assert "not current" in imported.stdout
    assert unknown.returncode != 0
    assert "No jurisdiction 'nowhere.example'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    repaired, listed_sets = run_cli(
        tmp_path, import_command(broken, "bow-tie", "--repair"), ["boundaries", "list"]
    )
    assert "1 repaired" in ok(repaired)
    sets = listing(ok(listed_sets))
    assert sets["toronto-wards-2018"] == [TORONTO, "ward", "toronto-wards-2018", "25 areas",
                                          "current"]  # fmt: skip
    assert sets["test-set"] == [TORONTO, "ward", "test-set", "2 areas", "-"]
    flags, wards = await cli_state(database)
    assert flags == {"toronto-wards-2018": True, "test-set": False, "bow-tie": False}
    assert wards == [None, None, None]

    (activated,) = run_cli(
        tmp_path, ["boundaries", "activate", "test-set", "--jurisdiction", TORONTO]
    )
    assert "test-set" in ok(activated)
    (reassigned,) = run_cli(tmp_path, ["boundaries", "reassign", TORONTO])
    # Under the shipped map all three would be in a ward; under test-set only two are.
    assert "3 requests processed, 2 in a ward." in ok(reassigned)
    flags, wards = await cli_state(database)
    assert flags == {"toronto-wards-2018": False, "test-set": True, "bow-tie": False}
    assert wards == ["W", "C", None]
