"""GET requests: bbox=, lat/long/radius= and q= (issue 18, points 2 and 7).

The same points and texts are stored on both backends (the ``client`` fixture runs each test
on PostGIS and on SQLite); the expected answers come from how the points were placed (their
distance and bearing from a centre), never from the server's own code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.settings import RequestsSettings
from tests.api.test_get_requests import expect_error, fetch_requests, list_ids, store
from tests.conftest import AppFactory, Seed

CENTRE = (43.6534, -79.3841)
# A sphere a little different from the server's: the margins below are far larger.
R = 6_371_000.0


def destination(distance_m: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``distance_m`` from CENTRE on ``bearing_deg`` (great circle)."""
    lat1, lon1 = map(math.radians, CENTRE)
    angle, bearing = distance_m / R, math.radians(bearing_deg)
    lat2 = math.asin(
        math.sin(lat1) * math.cos(angle) + math.cos(lat1) * math.sin(angle) * math.cos(bearing)
    )
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(angle) * math.cos(lat1),
        math.cos(angle) - math.sin(lat1) * math.sin(lat2),
    )
    return math.degrees(lat2), math.degrees(lon2)


# (distance m, bearing deg): inside 300 m, just outside, far.
PLACES = [
    (40, 0),
    (120, 45),
    (200, 100),
    (280, 200),
    (285, 300),
    (320, 10),
    (330, 135),
    (600, 250),
    (1500, 90),
    (9000, 180),
]
RECENT = datetime.now(UTC) - timedelta(days=1)


async def store_places(client: httpx.AsyncClient, seed: Seed) -> dict[tuple[int, int], str]:
    """One request at each place (alternating services and statuses), by place."""
    ids = {}
    for index, place in enumerate(PLACES):
        lat, lon = destination(*place)
        ids[place] = await store(
            client,
            seed,
            RECENT - timedelta(minutes=index),
            code="POTHOLE" if index % 2 == 0 else "GRAFFITI",
            status="open" if index % 3 else "closed",
            lat=lat,
            lon=lon,
        )
    # Not located: never in a box or a circle.
    await store(client, seed, RECENT, lat=None, lon=None, address="1 Nowhere Rd")
    return ids


def circle(lat: float, lon: float, radius: float) -> dict[str, Any]:
    return {"lat": str(lat), "long": str(lon), "radius": str(radius)}


async def test_radius_finds_the_points_within_it_newest_first(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ids = await store_places(client, seeded)
    found = await list_ids(client, circle(*CENTRE, 300))
    inside = [ids[p] for p in PLACES if p[0] < 300]
    assert found == inside  # newest first: PLACES is in the order they were requested
    assert await list_ids(client, circle(*CENTRE, 10)) == []
    wide = await list_ids(client, circle(*CENTRE, 2000))
    assert wide == [ids[p] for p in PLACES if p[0] < 2000]


async def test_bbox_finds_the_points_in_it(client: httpx.AsyncClient, seeded: Seed) -> None:
    ids = await store_places(client, seeded)
    # The box from 250 m south-west to 250 m north-east of the centre (at its corners' lat/long).
    south, west = destination(250, 225)
    north, east = destination(250, 45)
    found = await list_ids(client, {"bbox": f"{west},{south},{east},{north}"})
    expected = []
    for place in PLACES:
        lat, lon = destination(*place)
        if west <= lon <= east and south <= lat <= north:
            expected.append(ids[place])
    assert expected == [ids[(40, 0)], ids[(120, 45)]]
    assert found == expected
    # A box holding nothing, and one holding everything located.
    assert await list_ids(client, {"bbox": "10,10,10.5,10.5"}) == []
    everything = await list_ids(client, {"bbox": "-80,43,-79,44"})
    assert everything == [ids[p] for p in PLACES]


async def test_where_combines_with_filters_and_paging(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ids = await store_places(client, seeded)
    by_service = await list_ids(client, {**circle(*CENTRE, 700), "service_code": "POTHOLE"})
    wanted = [ids[p] for i, p in enumerate(PLACES) if p[0] < 700 and i % 2 == 0]
    assert by_service == wanted
    both = await list_ids(
        client,
        {**circle(*CENTRE, 700), "bbox": "-79.3841,43,-79,44", "status": "open"},
    )
    east_open = []
    for index, place in enumerate(PLACES):
        _lat, lon = destination(*place)
        if place[0] < 700 and lon >= -79.3841 and index % 3:
            east_open.append(ids[place])
    assert both == east_open
    # Paging: three pages of two, through the cursor of each full page.
    seen: list[str] = []
    params: dict[str, Any] = {**circle(*CENTRE, 700), "page_size": "2"}
    for _ in range(5):
        response = await client.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 200
        seen += [item["service_request_id"] for item in response.json()]
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            break
        params["cursor"] = cursor
    assert seen == [ids[p] for p in PLACES if p[0] < 700]


async def test_where_parameters_are_checked(client: httpx.AsyncClient, seeded: Seed) -> None:
    limits = RequestsSettings()
    for bbox in ("1,2,3", "a,b,c,d", "1,2,3,4,5", "nan,1,2,3", "1,2,,4"):
        await expect_error(client, "requests", {"bbox": bbox}, 400, "bbox")
    await expect_error(client, "requests", {"bbox": "-200,0,1,1"}, 400, "longitudes")
    await expect_error(client, "requests", {"bbox": "0,95,1,96"}, 400, "latitudes")
    await expect_error(client, "requests", {"bbox": "1,0,0,1"}, 400, "minLong <= maxLong")
    await expect_error(client, "requests", {"bbox": "0,0,10,10"}, 400, "too large")
    await expect_error(client, "requests", {"lat": "43", "long": "-79"}, 400, "together")
    await expect_error(client, "requests", circle(43, -79, 0), 400, "radius")
    await expect_error(client, "requests", circle(43, -79, limits.radius_max_m + 1), 400, "radius")
    await expect_error(client, "requests", circle(91, -79, 10), 400, "lat must be")
    await expect_error(client, "requests", circle(43, 181, 10), 400, "long must be")
    await expect_error(
        client, "requests", {**circle(43, -79, 10), "radius": "1e999"}, 400, "radius"
    )
    # Every problem at once.
    response = await client.get(
        "/open311/v2/requests.json", params={"bbox": "x", **circle(99, -79, -1)}
    )
    assert response.status_code == 400
    assert len(response.json()) >= 3


# ---------------------------------------------------------------------------------------
# q=


async def store_texts(client: httpx.AsyncClient, seed: Seed) -> list[str]:
    texts = [
        ("POTHOLE", "Deep hole near the school gate", "100 Queen St W"),
        ("POTHOLE", "Broken curb", "12 King St E"),
        ("GRAFFITI", "Paint on the school wall", "5 Spadina Ave"),
        ("GRAFFITI", "Tags on a bridge", "Queen St W & Spadina Ave"),
        ("FEEDBACK", "Thanks for the quick fix", None),
    ]
    ids = []
    for index, (code, description, address) in enumerate(texts):
        ids.append(
            await store(
                client,
                seed,
                RECENT - timedelta(minutes=index),
                code=code,
                description=description,
                address=address,
            )
        )
    return ids


async def test_q_matches_description_address_and_service_name(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ids = await store_texts(client, seeded)
    assert await list_ids(client, {"q": "school"}) == [ids[0], ids[2]]
    assert await list_ids(client, {"q": "SCHOOL gate"}) == [ids[0]]  # every word, any case
    assert await list_ids(client, {"q": "queen"}) == [ids[0], ids[3]]  # the address
    assert await list_ids(client, {"q": "spadina"}) == [ids[2], ids[3]]
    # The service's name ("Graffiti", "Pothole"), and words found nowhere.
    assert await list_ids(client, {"q": "graffiti"}) == [ids[2], ids[3]]
    assert await list_ids(client, {"q": "pothole"}) == [ids[0], ids[1]]
    assert await list_ids(client, {"q": "school elephant"}) == []
    assert await list_ids(client, {"q": "scho"}) == []  # whole words
    # Punctuation is not syntax: only the words count.
    assert await list_ids(client, {"q": '"school" -gate* (NEAR'}) == [ids[0]]
    # With other filters.
    assert await list_ids(client, {"q": "school", "service_code": "GRAFFITI"}) == [ids[2]]
    assert await list_ids(client, {"q": "queen", "page_size": "1"}) == [ids[0]]


async def test_q_follows_edits_and_deletes(client: httpx.AsyncClient, seeded: Seed) -> None:
    """The full-text index follows the rows (SQLite: its triggers)."""
    from sqlalchemy import delete, update

    from app.store.tables import ServiceRequest
    from tests.conftest import engine_of

    table = ServiceRequest.__table__
    ids = await store_texts(client, seeded)
    async with engine_of(client).begin() as conn:
        await conn.execute(
            update(table).where(table.c.id == int(ids[1])).values(description="School bus stop")
        )
        await conn.execute(delete(table).where(table.c.id == int(ids[2])))
    assert await list_ids(client, {"q": "school"}) == [ids[0], ids[1]]
    assert await list_ids(client, {"q": "curb"}) == []


async def test_q_is_bounded(client: httpx.AsyncClient, seeded: Seed) -> None:
    limits = RequestsSettings()
    await expect_error(client, "requests", {"q": "x" * (limits.q_max_length + 1)}, 400, "long")
    many = " ".join(f"w{i}" for i in range(limits.q_max_words + 1))
    await expect_error(client, "requests", {"q": many}, 400, "words")
    await expect_error(client, "requests", {"q": "?! -- **"}, 400, "word")
    both = await fetch_requests(client, "requests", {"q": "nothing"})
    assert both.json == []


# ---------------------------------------------------------------------------------------
# GET requests/nearby


async def test_nearby_lists_open_requests_of_the_service_nearest_first(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    limits = RequestsSettings()
    radius = limits.nearby_radius_m
    now = datetime.now(UTC)
    expected = []
    # Inside the radius, stored farthest first (so nearest first is not the storage order).
    for distance in (0.9 * radius, 0.5 * radius, 0.1 * radius):
        lat, lon = destination(distance, 60)
        pk = await store(client, seeded, now - timedelta(days=1), lat=lat, lon=lon)
        expected.insert(0, (pk, distance))
    lat, lon = destination(0.3 * radius, 200)
    # Left out: closed, another service, too far, too old, not located.
    await store(client, seeded, now - timedelta(days=1), lat=lat, lon=lon, status="closed")
    await store(client, seeded, now - timedelta(days=1), code="GRAFFITI", lat=lat, lon=lon)
    far = destination(1.2 * radius, 0)
    await store(client, seeded, now - timedelta(days=1), lat=far[0], lon=far[1])
    old = now - timedelta(days=limits.nearby_max_age_days + 1)
    await store(client, seeded, old, lat=lat, lon=lon)
    await store(client, seeded, now, lat=None, lon=None, address="1 Nowhere Rd")

    params = {"service_code": "POTHOLE", "lat": str(CENTRE[0]), "long": str(CENTRE[1])}
    for fmt in ("json", "xml"):
        response = await client.get(f"/open311/v2/requests/nearby.{fmt}", params=params)
        assert response.status_code == 200, response.text
    both = await fetch_requests_nearby(client, params)
    assert [item["service_request_id"] for item in both] == [pk for pk, _ in expected]
    for item, (_, distance) in zip(both, expected, strict=True):
        assert abs(item["distance_m"] - distance) < 1.0, (item["distance_m"], distance)
        assert item["status"] == "open"
    # An unknown service has none; extensions=true adds the extended attributes.
    assert await fetch_requests_nearby(client, {**params, "service_code": "NOPE"}) == []
    extended = await fetch_requests_nearby(client, {**params, "extensions": "true"})
    assert all("extended_attributes" in item for item in extended)


async def test_nearby_is_bounded(
    client: httpx.AsyncClient, seeded: Seed, make_client: AppFactory
) -> None:
    now = datetime.now(UTC)
    ids = []
    for index in range(5):
        lat, lon = destination(10 + index, 90)
        ids.append(await store(client, seeded, now - timedelta(minutes=index), lat=lat, lon=lon))
    capped = await make_client(requests=RequestsSettings(nearby_max_results=3, nearby_radius_m=100))
    params = {"service_code": "POTHOLE", "lat": str(CENTRE[0]), "long": str(CENTRE[1])}
    items = await fetch_requests_nearby(capped, params)
    assert [item["service_request_id"] for item in items] == ids[:3]


async def fetch_requests_nearby(client: httpx.AsyncClient, params: dict[str, str]) -> Any:
    """GET requests/nearby in both formats (same content); the JSON items."""
    from tests.support import fetch_both

    both = await fetch_both(client, "requests/nearby", params)
    assert both.xml_root == "service_requests"
    return both.json


async def test_nearby_parameters_are_checked(client: httpx.AsyncClient, seeded: Seed) -> None:
    base = {"service_code": "POTHOLE", "lat": "43.65", "long": "-79.38"}
    await expect_error(client, "requests/nearby", {**base, "service_code": ""}, 400, "service_code")
    await expect_error(client, "requests/nearby", {"service_code": "POTHOLE"}, 400, "lat and long")
    await expect_error(client, "requests/nearby", {**base, "lat": "91"}, 400, "lat must be")
    await expect_error(client, "requests/nearby", {**base, "long": "x"}, 400, "long")


async def page_through(client: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    """Every id of a GET requests query, page by page through X-Next-Cursor."""
    seen: list[str] = []
    params = dict(params)
    for _ in range(100):
        response = await client.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 200, response.text
        seen += [item["service_request_id"] for item in response.json()]
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return seen
        params["cursor"] = cursor
    raise AssertionError("more pages than requests")


async def test_dense_and_selective_boxes_page_alike(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """A box holding most requests (SQLite walks the list's index with the exact test) and a
    box holding few (SQLite reads the R*Tree's candidates) answer the rows the placement
    says, newest first and ties by id, over every page: the plan never changes the answer."""
    stored: list[tuple[datetime, int, str, float, float, str]] = []
    for index in range(24):
        lat, lon = destination(50 + 40 * index, 15 * index)
        # Pairs share their time: the order among them is the id's.
        at = RECENT - timedelta(minutes=index // 2)
        code = "POTHOLE" if index % 3 else "GRAFFITI"
        words = "Deep crater" + (" marmalade" if index == 7 else "")
        pk = await store(client, seeded, at, code=code, lat=lat, lon=lon, description=words)
        stored.append((at, int(pk), pk, lat, lon, code))
    for index in range(3):  # far away: in no box below
        lat, lon = destination(20_000 + index, 90)
        await store(client, seeded, RECENT, lat=lat, lon=lon, description="Far away")
    newest_first = sorted(stored, key=lambda s: (s[0], s[1]), reverse=True)
    south, west = destination(1500, 225)
    north, east = destination(1500, 45)
    dense = f"{west},{south},{east},{north}"
    small_south, small_west = destination(200, 225)
    small_north, small_east = destination(200, 45)
    selective = f"{small_west},{small_south},{small_east},{small_north}"

    def inside(box: str, code: str | None = None) -> list[str]:
        w, s, e, n = map(float, box.split(","))
        return [
            pk
            for _at, _n, pk, lat, lon, service in newest_first
            if w <= lon <= e and s <= lat <= n and code in (None, service)
        ]

    assert len(inside(dense)) == 24
    assert 0 < len(inside(selective)) <= 4
    for box in (dense, selective):
        for size in ("1", "2", "5"):
            assert await page_through(client, {"bbox": box, "page_size": size}) == inside(box)
        assert await page_through(
            client, {"bbox": box, "page_size": "3", "service_code": "POTHOLE"}
        ) == inside(box, "POTHOLE")
    # A circle around the centre holding every stored point but the far ones.
    everything_near = await page_through(client, {**circle(*CENTRE, 1200), "page_size": "4"})
    assert everything_near == [s[2] for s in newest_first]
    # q=: a word every request holds (SQLite looks its matches up along the list's index)
    # and a word one holds (SQLite reads its match), alone and with a box.
    assert await page_through(client, {"q": "crater", "page_size": "2"}) == [
        s[2] for s in newest_first
    ]
    assert await page_through(client, {"q": "marmalade", "page_size": "2"}) == [stored[7][2]]
    for box in (dense, selective):
        assert await page_through(client, {"q": "crater", "bbox": box, "page_size": "2"}) == inside(
            box
        )
