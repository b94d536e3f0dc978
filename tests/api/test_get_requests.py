"""GET requests.{fmt}, GET requests/{id}.{fmt} and GET tokens/{token}.{fmt}.

Spec digest §6-§9 and the §12 decisions on filters, windows, ordering and tokens. Requests are
stored with exact timestamps through ``tests.factories.make_request``; the test jurisdiction's
zone is America/Toronto (-05:00 in winter, -04:00 in summer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from app.domain.queue import QueueProcessor
from app.settings import RequestsSettings
from app.store.tables import RequestToken
from tests.conftest import Seed, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import (
    REQUEST_FIELDS,
    W3C,
    Both,
    error_descriptions,
    fetch_both,
    validate_schema,
)

FIELDS = REQUEST_FIELDS

Params = dict[str, Any] | list[tuple[str, str]] | str | None


def utc(*parts: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*parts, tzinfo=UTC)


async def store(
    client: httpx.AsyncClient, seed: Seed, at: datetime, code: str = "POTHOLE", **fields: Any
) -> str:
    """Store one request of service ``code`` requested at ``at``; its public id."""
    fields.setdefault("updated_at", at)
    fields.setdefault("created_at", at)
    pk = await make_request(
        engine_of(client), seed.jurisdiction_pk, seed.service_pks[code], requested_at=at, **fields
    )
    return str(pk)


def check_items(items: Any) -> None:
    """Every request item: 17 fields in spec order, typed as the spec digest §9/§12 asks."""
    assert isinstance(items, list), items
    validate_schema("requests", items)
    for item in items:
        assert tuple(item) == FIELDS, list(item)
        assert "" not in item.values(), item
        assert isinstance(item["service_request_id"], str), item
        assert isinstance(item["service_code"], str), item
        assert item["status"] in ("open", "closed"), item
        assert W3C.match(item["requested_datetime"]), item
        assert W3C.match(item["updated_datetime"]), item
        assert item["expected_datetime"] is None or W3C.match(item["expected_datetime"]), item
        for key in ("lat", "long"):
            value = item[key]
            assert value is None or (
                isinstance(value, int | float) and not isinstance(value, bool)
            ), item


async def fetch_requests(client: httpx.AsyncClient, path: str, params: Params = None) -> Both:
    """GET a requests resource in both formats (200) and check every item."""
    both = await fetch_both(client, path, params)
    assert both.xml_root == "service_requests"
    check_items(both.json)
    return both


async def list_ids(client: httpx.AsyncClient, params: Params = None) -> list[str]:
    """The ids GET requests answers with, in response order."""
    both = await fetch_requests(client, "requests", params)
    return [item["service_request_id"] for item in both.json]


async def expect_error(
    client: httpx.AsyncClient, path: str, params: Params, status: int, mention: str = ""
) -> None:
    """Both formats answer an ``errors`` document with ``status``, naming ``mention``."""
    both = await fetch_both(client, path, params, expect=status)
    assert both.xml_root == "errors", both.xml_root
    descriptions = error_descriptions(both.json)
    assert all(item["code"] == status for item in both.json), both.json
    assert any(mention in d for d in descriptions), (mention, descriptions)


# ---------------------------------------------------------------------------------------
# The request object


async def test_items_carry_every_field_typed_and_zoned(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    full = await store(
        client,
        seeded,
        utc(2024, 7, 15, 16, 30),
        updated_at=utc(2024, 7, 16, 10, 0),
        expected_at=utc(2024, 11, 20, 15, 0),
        status="closed",
        status_notes="Filled on Tuesday.",
        description="Deep hole near the curb",
        agency_responsible="Transportation Services",
        service_notice="Crews usually respond within 3 business days.",
        address="100 Queen St W, Toronto",
        address_id="ADDR-1",
        zipcode="M5H 2N2",
        lat=43.6534,
        lon=-79.3841,
        media_url="https://img.example.org/p/1.jpg",
    )
    sparse = await store(
        client, seeded, utc(2024, 1, 15, 12, 0), code="LITTER.BIN", lat=None, lon=None
    )
    expected_full = {
        "service_request_id": full,
        "status": "closed",
        "status_notes": "Filled on Tuesday.",
        "service_name": "Pothole",
        "service_code": "POTHOLE",
        "description": "Deep hole near the curb",
        "agency_responsible": "Transportation Services",
        "service_notice": "Crews usually respond within 3 business days.",
        "requested_datetime": "2024-07-15T12:30:00-04:00",
        "updated_datetime": "2024-07-16T06:00:00-04:00",
        "expected_datetime": "2024-11-20T10:00:00-05:00",
        "address": "100 Queen St W, Toronto",
        "address_id": "ADDR-1",
        "zipcode": "M5H 2N2",
        "lat": 43.6534,
        "long": -79.3841,
        "media_url": "https://img.example.org/p/1.jpg",
    }
    expected_sparse = dict.fromkeys(FIELDS)
    expected_sparse.update(
        service_request_id=sparse,
        status="open",
        service_name="Overflowing litter bin – Straße",
        service_code="LITTER.BIN",
        requested_datetime="2024-01-15T07:00:00-05:00",
        updated_datetime="2024-01-15T07:00:00-05:00",
    )

    listed = await fetch_requests(client, "requests", {"service_request_id": f"{sparse},{full}"})
    assert listed.json == [expected_full, expected_sparse]
    assert isinstance(listed.json[0]["lat"], float)
    assert isinstance(listed.json[0]["long"], float)
    # The XML side: the same values, and unknown values as empty elements.
    assert listed.xml[1]["status_notes"] is None
    assert listed.xml[1]["lat"] is None
    assert b"<expected_datetime/>" in listed.xml_response.content

    for request_id, expected in ((full, expected_full), (sparse, expected_sparse)):
        single = await fetch_requests(client, f"requests/{request_id}")
        assert single.json == [expected]
        assert len(single.xml) == 1


async def test_stored_empty_text_is_rendered_as_null(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    request_id = await store(
        client,
        seeded,
        datetime.now(UTC) - timedelta(days=1),
        status_notes="",
        description="",
        address="",
        zipcode="",
        media_url="",
    )
    both = await fetch_requests(client, f"requests/{request_id}")
    for key in ("status_notes", "description", "address", "zipcode", "media_url"):
        assert both.json[0][key] is None, (key, both.json[0][key])


# ---------------------------------------------------------------------------------------
# Filters


async def test_service_request_id_list_overrides_every_other_filter(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    old = await store(client, seeded, utc(2023, 3, 1, 12, 0), status="closed")
    new = await store(client, seeded, utc(2023, 3, 2, 12, 0), status="closed")
    unrelated = await store(client, seeded, datetime.now(UTC) - timedelta(hours=1))
    wanted = f"{old},999999999, abc,{new}"
    cases: list[dict[str, str]] = [
        {},
        {"status": "open"},
        {"service_code": "GRAFFITI"},
        {"start_date": "2024-01-01T00:00:00Z", "end_date": "2024-02-01T00:00:00Z"},
        {"status": "open", "service_code": "FEEDBACK", "end_date": "2020-01-01T00:00:00Z"},
    ]
    for others in cases:
        ids = await list_ids(client, {"service_request_id": wanted, **others})
        assert ids == [new, old], others
    # Repeated parameters are merged like a comma list; only unknown ids → empty.
    assert await list_ids(client, [("service_request_id", old), ("service_request_id", new)]) == [
        new,
        old,
    ]
    assert await list_ids(client, {"service_request_id": "999999999,abc"}) == []
    assert await list_ids(client) == [unrelated]


async def test_service_code_filter(client: httpx.AsyncClient, seeded: Seed) -> None:
    now = datetime.now(UTC)
    pothole = await store(client, seeded, now - timedelta(hours=3), code="POTHOLE")
    graffiti = await store(client, seeded, now - timedelta(hours=2), code="GRAFFITI")
    litter = await store(client, seeded, now - timedelta(hours=1), code="LITTER.BIN")
    cases: list[tuple[Params, list[str]]] = [
        ({"service_code": "POTHOLE"}, [pothole]),
        ({"service_code": "LITTER.BIN"}, [litter]),
        ({"service_code": "POTHOLE,GRAFFITI"}, [graffiti, pothole]),
        ({"service_code": "POTHOLE, GRAFFITI"}, [graffiti, pothole]),
        ([("service_code", "POTHOLE"), ("service_code", "LITTER.BIN")], [litter, pothole]),
        ({"service_code": "NOPE,GRAFFITI"}, [graffiti]),
        ({"service_code": "NOPE"}, []),
        ({"service_code": "pothole"}, []),
    ]
    for params, expected in cases:
        assert await list_ids(client, params) == expected, params


async def test_status_filter(client: httpx.AsyncClient, seeded: Seed) -> None:
    now = datetime.now(UTC)
    opened = await store(client, seeded, now - timedelta(hours=2), status="open")
    closed = await store(client, seeded, now - timedelta(hours=1), status="closed")
    cases: list[tuple[Params, list[str]]] = [
        ({"status": "open"}, [opened]),
        ({"status": "closed"}, [closed]),
        ({"status": "OPEN"}, [opened]),
        ({"status": "Closed"}, [closed]),
        ({"status": "open,closed"}, [closed, opened]),
        ({"status": "open, closed"}, [closed, opened]),
        ([("status", "open"), ("status", "closed")], [closed, opened]),
    ]
    for params, expected in cases:
        assert await list_ids(client, params) == expected, params


async def test_invalid_status_is_400(client: httpx.AsyncClient, seeded: Seed) -> None:
    await store(client, seeded, datetime.now(UTC) - timedelta(hours=1))
    for value in ("pending", "open,bogus", "opened"):
        await expect_error(client, "requests", {"status": value}, 400, "status")


async def test_date_bounds_are_inclusive_in_any_zone(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    start, end = utc(2024, 1, 10, 5, 0), utc(2024, 1, 20, 5, 0)
    await store(client, seeded, start - timedelta(seconds=1))
    at_start = await store(client, seeded, start)
    middle = await store(client, seeded, utc(2024, 1, 15, 12, 0))
    at_end = await store(client, seeded, end)
    await store(client, seeded, end + timedelta(seconds=1))
    expected = [at_end, middle, at_start]
    cases: list[Params] = [
        {"start_date": "2024-01-10T05:00:00Z", "end_date": "2024-01-20T05:00:00Z"},
        {"start_date": "2024-01-10T00:00:00-05:00", "end_date": "2024-01-20T00:00:00-05:00"},
        {"start_date": "2024-01-10T07:00:00+02:00", "end_date": "2024-01-20T07:00:00+02:00"},
        {"start_date": "2024-01-10T05:00:00.000Z", "end_date": "2024-01-20T05:00:00.000Z"},
        # An unencoded '+' arrives as a space.
        "start_date=2024-01-10T07:00:00+02:00&end_date=2024-01-20T07:00:00+02:00",
        # A date alone is local midnight of the jurisdiction (America/Toronto: 05:00Z).
        {"start_date": "2024-01-10", "end_date": "2024-01-20T05:00:00Z"},
    ]
    for params in cases:
        assert await list_ids(client, params) == expected, params
    same_instant = {"start_date": "2024-01-10T05:00:00Z", "end_date": "2024-01-10T00:00:00-05:00"}
    assert await list_ids(client, same_instant) == [at_start]


async def test_malformed_or_reversed_dates_are_400(client: httpx.AsyncClient, seeded: Seed) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2024-13-01T00:00:00Z"}, "start_date"),
        ({"start_date": "2024-01-10T05:00:00"}, "start_date"),
        ({"end_date": "2024-01-10T25:00:00Z"}, "end_date"),
        ({"end_date": "10/01/2024"}, "end_date"),
        ({"start_date": "2024-01-20T00:00:00Z", "end_date": "2024-01-10T00:00:00Z"}, "end_date"),
    ]
    for params, mention in cases:
        await expect_error(client, "requests", params, 400, mention)


async def test_filters_are_anded(client: httpx.AsyncClient, seeded: Seed) -> None:
    at = utc(2024, 5, 1, 12, 0)
    match = await store(client, seeded, at, code="POTHOLE", status="open")
    await store(client, seeded, at, code="GRAFFITI", status="open")
    await store(client, seeded, at, code="POTHOLE", status="closed")
    await store(client, seeded, at - timedelta(days=30), code="POTHOLE", status="open")
    params = {
        "service_code": "POTHOLE,LITTER.BIN",
        "status": "open",
        "start_date": "2024-04-30T12:00:00Z",
        "end_date": "2024-05-02T12:00:00Z",
    }
    assert await list_ids(client, params) == [match]


# ---------------------------------------------------------------------------------------
# Defaults: windows, cap, ordering, empty results


async def test_default_window_is_the_last_90_days(client: httpx.AsyncClient, seeded: Seed) -> None:
    now = datetime.now(UTC)
    recent = await store(client, seeded, now - timedelta(hours=1), status="closed")
    edge = await store(client, seeded, now - timedelta(days=89), code="GRAFFITI")
    await store(client, seeded, now - timedelta(days=91))
    assert await list_ids(client) == [recent, edge]


async def test_one_sided_date_ranges_span_90_days(client: httpx.AsyncClient, seeded: Seed) -> None:
    start = utc(2023, 2, 1, 12, 0)
    await store(client, seeded, start - timedelta(days=1))
    from_start = await store(client, seeded, start)
    start_89 = await store(client, seeded, start + timedelta(days=89))
    await store(client, seeded, start + timedelta(days=91))
    end = utc(2021, 8, 1, 12, 0)
    await store(client, seeded, end - timedelta(days=91))
    end_89 = await store(client, seeded, end - timedelta(days=89))
    to_end = await store(client, seeded, end)
    await store(client, seeded, end + timedelta(days=1))
    assert await list_ids(client, {"start_date": "2023-02-01T12:00:00Z"}) == [start_89, from_start]
    assert await list_ids(client, {"end_date": "2021-08-01T08:00:00-04:00"}) == [to_end, end_89]


async def test_newest_first_ties_by_id_and_result_cap(
    make_client: Any, client: httpx.AsyncClient, seeded: Seed
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hours = [5, 1, 7, 3, 3, 6, 2]  # two requests share a timestamp (3 hours ago)
    ids = [await store(client, seeded, now - timedelta(hours=h)) for h in hours]
    by_age = sorted(zip(hours, ids, strict=True), key=lambda p: (p[0], -int(p[1])))
    newest_first = [request_id for _, request_id in by_age]
    assert await list_ids(client) == newest_first
    tied = [request_id for h, request_id in zip(hours, ids, strict=True) if h == 3]
    assert newest_first.index(tied[1]) < newest_first.index(tied[0])

    capped = await make_client(requests=RequestsSettings(max_results=5))
    assert await list_ids(capped) == newest_first[:5]


async def test_empty_result_is_an_empty_list(client: httpx.AsyncClient, seeded: Seed) -> None:
    for params in (None, {"service_code": "NOPE"}, {"service_request_id": "424242"}):
        both = await fetch_both(client, "requests", params)
        assert both.json == []
        assert both.json_response.text == "[]"
        assert both.xml_root == "service_requests"
        assert both.xml == []
        assert both.xml_response.content.rstrip().endswith(b"<service_requests/>")


async def test_empty_parameters_behave_as_absent(client: httpx.AsyncClient, seeded: Seed) -> None:
    now = datetime.now(UTC)
    first = await store(client, seeded, now - timedelta(hours=1))
    second = await store(client, seeded, now - timedelta(days=2), code="GRAFFITI", status="closed")
    await store(client, seeded, now - timedelta(days=91))
    assert await list_ids(client) == [first, second]
    empty = "status=&service_code=&start_date=&end_date=&service_request_id="
    assert await list_ids(client, empty) == [first, second]


async def test_a_repeated_parameter_must_say_one_thing(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """One rule for repeated keys (``app.georeport.params``), read once: a single-valued
    parameter may repeat its value, empty values are absent, and two different values are a
    400 naming it, whichever comes first (neither the first nor the last silently wins)."""
    now = datetime.now(UTC)
    newer = await store(client, seeded, now - timedelta(hours=1))
    older = await store(client, seeded, now - timedelta(hours=2), code="GRAFFITI")
    same = [("page_size", "1"), ("page_size", "1"), ("page", "2"), ("page", "2")]
    assert await list_ids(client, same) == [older]
    blank = [("jurisdiction_id", ""), ("jurisdiction_id", seeded.jurisdiction_id)]
    assert await list_ids(client, blank) == [newer, older]
    extended = [*blank, ("extensions", "true"), ("extensions", " "), ("extensions", "true")]
    response = await client.get("/open311/v2/requests.json", params=extended)
    assert response.status_code == 200, response.text
    assert all("extended_attributes" in item for item in response.json()), response.text
    cursor = (await fetch_requests(client, "requests", {"page_size": "1"})).json_response
    position = cursor.headers["X-Next-Cursor"]
    different: dict[str, tuple[str, str]] = {
        "page_size": ("1", "2"),
        "page": ("1", "2"),
        "cursor": (position, position + "x"),
        "start_date": ("2024-01-10T00:00:00Z", "2024-01-11T00:00:00Z"),
        "updated_after": ("2024-01-10T00:00:00Z", "2024-01-10T00:00:00-05:00"),
        "extensions": ("true", "false"),
        "jurisdiction_id": (seeded.jurisdiction_id, "elsewhere.example.org"),
        "api_key": (seeded.api_key, "not-a-key"),
    }
    for name, (one, other) in different.items():
        for pairs in ([(name, one), (name, other)], [(name, other), (name, one)]):
            await expect_error(client, "requests", pairs, 400, f"{name} was given more than once")
    for path in (f"requests/{newer}", "services", "areas", "servicerequestupdates"):
        twice = [("jurisdiction_id", seeded.jurisdiction_id), ("jurisdiction_id", "x.example")]
        await expect_error(client, path, twice, 400, "jurisdiction_id was given more than once")
    twice = [("extensions", "true"), ("extensions", "1")]
    await expect_error(client, f"requests/{newer}", twice, 400, "extensions")


# ---------------------------------------------------------------------------------------
# GET requests/{id}


async def test_unknown_or_malformed_request_id_is_404(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    known = await store(client, seeded, datetime.now(UTC))
    missing = str(int(known) + 1000)
    for request_id in (missing, "abc", "12abc", "-1", "99999999999999999999999"):
        await expect_error(client, f"requests/{request_id}", None, 404)
    assert len((await fetch_requests(client, f"requests/{known}")).json) == 1


async def test_other_jurisdictions_requests_are_not_visible(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    other = await seed_catalog(engine_of(client), code="other.example.org")
    now = datetime.now(UTC)
    mine = await store(client, seeded, now - timedelta(hours=2))
    theirs = await store(client, other, now - timedelta(hours=1))
    here = {"jurisdiction_id": seeded.jurisdiction_id}
    there = {"jurisdiction_id": other.jurisdiction_id}

    await expect_error(client, f"requests/{theirs}", here, 404)
    assert await list_ids(client, here) == [mine]
    assert await list_ids(client, {**here, "service_request_id": f"{mine},{theirs}"}) == [mine]
    # The same request is visible in its own jurisdiction.
    single = await fetch_requests(client, f"requests/{theirs}", there)
    assert [item["service_request_id"] for item in single.json] == [theirs]
    assert await list_ids(client, there) == [theirs]


# ---------------------------------------------------------------------------------------
# GET tokens/{token}


async def fetch_token(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    """GET tokens/{token} in both formats (200); the JSON list."""
    both = await fetch_both(client, f"tokens/{token}")
    assert both.xml_root == "service_requests"
    validate_schema("token", both.json)
    assert len(both.json) == 1
    assert list(both.json[0]) == ["service_request_id", "token"]
    assert both.xml[0]["token"] == token
    result: list[dict[str, Any]] = both.json
    return result


async def test_batch_token_resolves_to_the_request(client: httpx.AsyncClient, seeded: Seed) -> None:
    posted = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": seeded.api_key,
            "service_code": "GRAFFITI",
            "lat": "43.6534",
            "long": "-79.3841",
        },
    )
    assert posted.status_code == 200, posted.text
    token = posted.json()[0]["token"]
    assert isinstance(token, str)
    assert token

    # Queued: pending until the worker has run.
    [pending] = await fetch_token(client, token)
    assert pending == {"service_request_id": None, "token": token}
    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    assert await QueueProcessor(engine_of(client), settings).run_once() == 1

    [item] = await fetch_token(client, token)
    request_id = item["service_request_id"]
    assert item == {"service_request_id": request_id, "token": token}
    assert isinstance(request_id, str)
    assert request_id.isdigit()

    single = await fetch_requests(client, f"requests/{request_id}")
    assert [(i["service_request_id"], i["service_code"]) for i in single.json] == [
        (request_id, "GRAFFITI")
    ]
    assert (single.json[0]["lat"], single.json[0]["long"]) == (43.6534, -79.3841)


async def test_unknown_token_is_404(client: httpx.AsyncClient, seeded: Seed) -> None:
    for token in ("no-such-token", "x" * 100):
        await expect_error(client, f"tokens/{token}", None, 404)


async def test_pending_token_has_a_null_request_id(client: httpx.AsyncClient, seeded: Seed) -> None:
    token = "pending-token-1"  # noqa: S105 - a test value, not a secret
    async with engine_of(client).begin() as conn:
        await conn.execute(
            insert(RequestToken.__table__).values(
                token=token,
                jurisdiction_id=seeded.jurisdiction_pk,
                service_request_id=None,
                created_at=datetime.now(UTC),
            )
        )
    assert await fetch_token(client, token) == [{"service_request_id": None, "token": token}]
    both = await fetch_both(client, f"tokens/{token}")
    assert b"<service_request_id/>" in both.xml_response.content
    assert both.xml == [{"service_request_id": None, "token": token}]
