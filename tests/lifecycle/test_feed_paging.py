"""The updates feed is complete (issue 20, point 2): GET servicerequestupdates pages with an
opaque cursor (``X-Next-Cursor`` and ``Link: rel="next"``, both formats), never drops updates
silently past its cap, filters by ``service_request_id``, and answers FixMyStreet's plain
``start_date``/``end_date`` polls exactly as before when they fit in a page.

Updates are written straight into ``request_update`` where a test needs exact timestamps
(ties across page boundaries, updates older than the default window) and through the admin
API where it needs real writes between page reads; every read is real HTTP through the app,
on both backends.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.api_keys import create_key
from app.settings import RequestsSettings
from app.store.tables import RequestUpdate
from tests.conftest import Seed, engine_of
from tests.lifecycle.test_lifecycle import (
    BASE,
    FORMATS,
    JURISDICTION,
    LINK,
    UPDATE_FIELDS,
    errors_both,
    key_app_id,
    local,
    new_key,
    now_s,
    staff_update,
    stored,
    xml_items,
    zulu,
)
from tests.support import JSON_TYPE, XML_TYPE

UPDATE = RequestUpdate.__table__
FEED = f"{BASE}/servicerequestupdates"


# ---------------------------------------------------------------------------------------
# Helpers


async def write_updates(
    engine: AsyncEngine,
    seed: Seed,
    request_id: str,
    stamps: list[datetime],
    *,
    sandbox: bool = False,
) -> list[str]:
    """Store one update of ``request_id`` at each of ``stamps`` (in this order); their ids."""
    made = []
    async with engine.begin() as conn:
        for stamp in stamps:
            pk = (
                await conn.execute(
                    insert(UPDATE)
                    .values(
                        jurisdiction_id=seed.jurisdiction_pk,
                        service_request_id=int(request_id),
                        status="open",
                        detailed_status="in_progress",
                        description=f"At {stamp.isoformat()}",
                        updated_at=stamp,
                        created_at=stamp,
                        sandbox=sandbox,
                    )
                    .returning(UPDATE.c.id)
                )
            ).scalar_one()
            made.append(str(pk))
    return made


def items_of(response: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    """The items of a 200 feed page in ``fmt`` (exact Content-Type, fields in order)."""
    assert response.status_code == 200, (fmt, response.text[:500])
    if fmt == "json":
        assert response.headers["content-type"] == JSON_TYPE
        value = response.json()
        assert isinstance(value, list)
    else:
        assert response.headers["content-type"] == XML_TYPE
        value = xml_items(response.content, "service_request_updates", "request_update")
    for item in value:
        assert list(item) == UPDATE_FIELDS, list(item)
    return list(value)


def next_url(response: httpx.Response) -> str | None:
    """The Link rel=next URL of a page, checked against X-Next-Cursor (None: last page)."""
    link = response.headers.get("link")
    if link is None:
        assert "x-next-cursor" not in response.headers
        return None
    match = LINK.match(link)
    assert match, link
    url = match["url"]
    assert parse_qs(urlsplit(url).query)["cursor"] == [response.headers["x-next-cursor"]]
    return url


async def read_all(
    client: httpx.AsyncClient, fmt: str, params: dict[str, str], page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Follow the Link headers from the first page to the last; (every item, pages read)."""
    response = await client.get(f"{FEED}.{fmt}", params=params)
    found: list[dict[str, Any]] = []
    for pages in range(1, 100):
        items = items_of(response, fmt)
        assert len(items) <= page_size
        found += items
        url = next_url(response)
        if url is None:
            return found, pages
        assert len(items) == page_size, "only a full page has a next page"
        assert url.startswith("http://testserver/open311/v2/servicerequestupdates." + fmt)
        response = await client.get(url)  # the Link URL as given
    pytest.fail("paging did not end")


def sort_key(item: dict[str, Any]) -> tuple[datetime, int]:
    """The feed's order: update time, then update_id."""
    return datetime.fromisoformat(item["updated_datetime"]), int(item["update_id"])


def cursor_of(kind: str, stamp: str, pk: Any) -> str:
    """A cursor in this server's encoding (to forge one)."""
    raw = json.dumps({"k": kind, "t": stamp, "i": pk}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---------------------------------------------------------------------------------------
# Complete windows


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_window_of_many_pages_is_read_completely(
    client: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    engine = engine_of(client)
    base = now_s() - timedelta(days=3)
    requests = [await stored(engine, seeded), await stored(engine, seeded, "POTHOLE")]
    # 23 updates, three at each timestamp (page boundaries of 5 fall inside ties), spread
    # over two requests, written out of id order.
    stamps = [base + timedelta(minutes=i // 3) for i in range(23)]
    written = await write_updates(engine, seeded, requests[0], stamps[1::2])
    written += await write_updates(engine, seeded, requests[1], stamps[0::2])
    # Never in this window: sandbox updates, and updates just outside it.
    hidden = await stored(engine, seeded, sandbox=True)
    await write_updates(engine, seeded, hidden, stamps[:7], sandbox=True)
    await write_updates(
        engine, seeded, requests[0], [base - timedelta(seconds=1), stamps[-1] + timedelta(days=1)]
    )
    window = {"start_date": zulu(base), "end_date": zulu(stamps[-1])}

    found, pages = await read_all(client, fmt, {**window, "page_size": "5"}, 5)
    assert pages == 5
    assert len(found) == len(written) == 23
    assert sorted(item["update_id"] for item in found) == sorted(written)
    assert found == sorted(found, key=sort_key)
    assert {item["service_request_id"] for item in found} == set(requests)
    assert found[0]["updated_datetime"] == local(base)
    # The same window in one page: the same updates in the same order.
    whole = await client.get(f"{FEED}.{fmt}", params=window)
    assert items_of(whole, fmt) == found
    assert next_url(whole) is None
    assert whole.headers["x-page-size-max"] == "1000"


async def test_paging_picks_up_updates_written_during_the_pass(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    request_id = await stored(engine, seeded)
    start = now_s() - timedelta(hours=1)
    written = await write_updates(
        engine, seeded, request_id, [start + timedelta(minutes=i) for i in range(12)]
    )
    # No end_date: the window ends now, for each page; new updates sort after the cursor.
    response = await client.get(
        f"{FEED}.json", params={"start_date": zulu(start), "page_size": "4"}
    )
    seen: list[str] = []
    while True:
        seen += [item["update_id"] for item in items_of(response, "json")]
        url = next_url(response)
        if url is None:
            break
        if len(written) < 15:
            written.append(
                (await staff_update(client, admin, request_id, status="FIXED"))["update_id"]
            )
        response = await client.get(url)
    assert len(written) == 15  # three writes, each between two page reads
    assert seen == written  # every update once, oldest first, the new ones last


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_cap_is_never_silent(
    client: httpx.AsyncClient, make_client: Any, seeded: Seed, fmt: str
) -> None:
    small = await make_client(requests=RequestsSettings(max_results=5))
    engine = engine_of(small)
    fms = await new_key(engine, "FMS", ["update", "staff"])
    request_id = await stored(engine, seeded)
    start = now_s() - timedelta(hours=2)
    written = await write_updates(
        engine, seeded, request_id, [start + timedelta(minutes=10 * i) for i in range(7)]
    )
    # FixMyStreet's poll: its key, jurisdiction_id and both dates, nothing else.
    ask = {
        "api_key": fms,
        "jurisdiction_id": JURISDICTION,
        "start_date": local(start),
        "end_date": local(now_s() + timedelta(seconds=30)),
    }
    first = await small.get(f"{FEED}.{fmt}", params=ask)
    items = items_of(first, fmt)
    # The page is what the server always answered (the oldest five) ...
    assert [item["update_id"] for item in items] == written[:5]
    assert first.headers["x-page-size-max"] == "5"
    # ... and it now says that more follow.
    url = next_url(first)
    assert url is not None
    assert parse_qs(urlsplit(url).query)["api_key"] == [fms]
    rest = await small.get(url)
    assert [item["update_id"] for item in items_of(rest, fmt)] == written[5:]
    assert next_url(rest) is None

    # Exactly the cap: a complete answer, so no next page is announced.
    exact = {**ask, "end_date": local(start + timedelta(minutes=40))}
    response = await small.get(f"{FEED}.{fmt}", params=exact)
    assert [item["update_id"] for item in items_of(response, fmt)] == written[:5]
    assert next_url(response) is None
    # Within the cap: the answer FixMyStreet always had, with no paging headers.
    within = {**ask, "end_date": local(start + timedelta(minutes=10))}
    response = await small.get(f"{FEED}.{fmt}", params=within)
    assert [item["update_id"] for item in items_of(response, fmt)] == written[:2]
    assert "link" not in response.headers
    assert "x-next-cursor" not in response.headers


async def sandbox_key(engine: AsyncEngine, app: str) -> tuple[str, int]:
    """A sandbox key of a new app; (key, app id)."""
    async with engine.begin() as conn:
        key, key_id = await create_key(conn, app, app=app, scopes=["submit"], sandbox=True)
    return key, await key_app_id(engine, key_id)


async def test_sandbox_pages_show_only_the_apps_sandbox_updates(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    key, app_id = await sandbox_key(engine, "Sandbox app")
    _, other_app_id = await sandbox_key(engine, "Other sandbox app")
    start = now_s() - timedelta(hours=1)
    stamps = [start + timedelta(minutes=i) for i in range(7)]
    own = await stored(engine, seeded, sandbox=True, app_id=app_id)
    foreign = await stored(engine, seeded, sandbox=True, app_id=other_app_id)
    public = await stored(engine, seeded)
    mine = await write_updates(engine, seeded, own, stamps, sandbox=True)
    await write_updates(engine, seeded, foreign, stamps, sandbox=True)
    public_ids = await write_updates(engine, seeded, public, stamps)
    window = {"start_date": zulu(start), "end_date": zulu(stamps[-1]), "page_size": "3"}
    for fmt in FORMATS:
        # The Link keeps the api_key, so every page is read as the same viewer.
        found, pages = await read_all(client, fmt, {**window, "api_key": key}, 3)
        assert [item["update_id"] for item in found] == mine
        assert pages == 3
        anonymous, _ = await read_all(client, fmt, window, 3)
        assert [item["update_id"] for item in anonymous] == public_ids


# ---------------------------------------------------------------------------------------
# Cursors


async def test_forged_cursors_are_refused(client: httpx.AsyncClient, seeded: Seed) -> None:
    engine = engine_of(client)
    request_id = await stored(engine, seeded)
    start = now_s() - timedelta(hours=1)
    await write_updates(
        engine, seeded, request_id, [start + timedelta(minutes=i) for i in range(3)]
    )
    window = {"start_date": zulu(start), "page_size": "2"}
    page = await client.get(f"{FEED}.json", params=window)
    real = page.headers["x-next-cursor"]
    decoded = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    assert set(decoded) == {"k", "t", "i"}
    # A cursor of GET requests (same encoding, another list) is not one of the feed's.
    await stored(engine, seeded)
    await stored(engine, seeded)
    listed = await client.get(f"{BASE}/requests.json", params={"page_size": "1"})
    requests_cursor = listed.headers["x-next-cursor"]
    forged = [
        "not-a-cursor",
        "%%%%",
        "é",
        real[:-3],
        real + "A" * 200,
        requests_cursor,
        cursor_of("r", decoded["t"], decoded["i"]),
        cursor_of("f", decoded["t"][:19], decoded["i"]),  # no zone
        cursor_of("f", "0001-01-01T00:00:00+05:00", 1),  # before year 1 in UTC
        cursor_of("f", decoded["t"], -1),
        cursor_of("f", decoded["t"], 2**63),
        cursor_of("f", decoded["t"], "7"),
        cursor_of("f", "yesterday", decoded["i"]),
        base64.urlsafe_b64encode(b'["f", 1]').decode(),
    ]
    for cursor in forged:
        descriptions = await errors_both(
            client, "GET", "servicerequestupdates", 400, params={**window, "cursor": cursor}
        )
        assert any("cursor" in d for d in descriptions), (cursor, descriptions)
    # The feed's own cursor is not one of GET requests' either.
    descriptions = await errors_both(client, "GET", "requests", 400, params={"cursor": real})
    assert any("cursor" in d for d in descriptions), descriptions
    # The genuine one works.
    rest = await client.get(f"{FEED}.json", params={**window, "cursor": real})
    assert len(items_of(rest, "json")) == 1


BAD_PAGE_SIZES = ["0", "1001", "x", "", "-1", "2.5", "²", "9" * 50]


async def test_bad_page_sizes_are_refused(client: httpx.AsyncClient, seeded: Seed) -> None:
    for size in BAD_PAGE_SIZES:
        descriptions = await errors_both(
            client, "GET", "servicerequestupdates", 400, params={"page_size": size}
        )
        assert any("page_size" in d for d in descriptions), (size, descriptions)


# ---------------------------------------------------------------------------------------
# service_request_id


async def test_filter_by_service_request_id(
    client: httpx.AsyncClient, make_client: Any, seeded: Seed
) -> None:
    engine = engine_of(client)
    now = now_s()
    a, b, c = [await stored(engine, seeded) for _ in range(3)]
    sandboxed = await stored(engine, seeded, sandbox=True)
    # a has an update older than the default 90-day window.
    old = [now - timedelta(days=200), now - timedelta(days=1)]
    of_a = await write_updates(engine, seeded, a, old)
    of_b = await write_updates(engine, seeded, b, [now - timedelta(hours=3)])
    of_c = await write_updates(engine, seeded, c, [now - timedelta(hours=2)])
    await write_updates(engine, seeded, sandboxed, [now - timedelta(hours=1)], sandbox=True)

    async def feed(params: dict[str, Any] | list[tuple[str, str]]) -> list[str]:
        found = []
        for fmt in FORMATS:
            response = await client.get(f"{FEED}.{fmt}", params=params)
            found.append([item["update_id"] for item in items_of(response, fmt)])
        assert found[0] == found[1]
        return found[0]

    # Without dates: every update of the requests named, however old.
    assert await feed({"service_request_id": a}) == of_a
    assert await feed({"service_request_id": f"{a}, {c}"}) == of_a + of_c
    assert await feed([("service_request_id", c), ("service_request_id", b)]) == of_b + of_c
    assert await feed({"service_request_id": f"{b},{b},{b}"}) == of_b
    # Without the filter the default window leaves the old update out.
    assert await feed({}) == of_a[1:] + of_b + of_c
    # With dates: the window and the requests.
    window = {"start_date": zulu(now - timedelta(days=2)), "end_date": zulu(now)}
    assert await feed({**window, "service_request_id": f"{a},{b}"}) == of_a[1:] + of_b
    # Unknown, malformed and sandbox ids are simply absent.
    assert await feed({"service_request_id": "999999999"}) == []
    assert await feed({"service_request_id": "abc,-1," + "9" * 40}) == []
    assert await feed({"service_request_id": sandboxed}) == []
    assert await feed({"service_request_id": f"abc,{b}"}) == of_b
    # Paged like the rest.
    found, pages = await read_all(
        client, "xml", {"service_request_id": f"{a},{b},{c}", "page_size": "1"}, 1
    )
    assert [item["update_id"] for item in found] == of_a + of_b + of_c
    assert pages == 4

    # The list is bounded (by requests.max_results, like GET requests).
    small = await make_client(requests=RequestsSettings(max_results=5))
    many = ",".join(str(n) for n in range(1, 7))
    descriptions = await errors_both(
        small, "GET", "servicerequestupdates", 400, params={"service_request_id": many}
    )
    assert any("service_request_id" in d and "5" in d for d in descriptions), descriptions
    accepted = await small.get(
        f"{FEED}.json", params={"service_request_id": f"{a},{b},{c},999999998,999999999"}
    )
    assert [item["update_id"] for item in items_of(accepted, "json")] == of_a + of_b + of_c
