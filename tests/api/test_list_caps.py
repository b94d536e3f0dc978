"""Every list of the API is complete or says it is capped (issue 20, point 2).

The audit, pinned: on a server whose page limit (``requests.max_results``) is 2, each list
holds more than 2 items. The lists without a cap (services, areas, jurisdictions, webhooks,
the admin listings and a request's history) answer every item with no paging headers; the
paged lists (GET requests, the updates feed: tests/lifecycle/test_feed_paging.py) answer a
page and a ``Link: rel="next"`` with ``X-Next-Cursor``, in both formats.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import pytest
from shapely.geometry import MultiPolygon, box

from app.domain.api_keys import create_key
from app.domain.boundaries import AreaInput, import_boundary_set
from app.domain.webhooks import create_subscription
from app.settings import RequestsSettings
from tests.conftest import AppFactory, Seed, engine_of, seed_catalog
from tests.lifecycle.test_lifecycle import (
    ADMIN,
    BASE,
    FORMATS,
    JURISDICTION,
    LINK,
    auth,
    key_app_id,
    new_key,
    now_s,
    staff_update,
    stored,
)
from tests.support import JSON_TYPE, XML_TYPE, xml_to_value

CAP = 2
MORE = CAP + 1


def no_paging(response: httpx.Response) -> None:
    """A complete answer: no next page announced."""
    assert response.status_code == 200, response.text[:300]
    assert "link" not in response.headers
    assert "x-next-cursor" not in response.headers


async def listed(client: httpx.AsyncClient, path: str, params: Any = None) -> list[Any]:
    """A GeoReport list in both formats (as many items in each), complete; its JSON items."""
    json_response = await client.get(f"{BASE}/{path}.json", params=params)
    xml_response = await client.get(f"{BASE}/{path}.xml", params=params)
    for response, media in ((json_response, JSON_TYPE), (xml_response, XML_TYPE)):
        no_paging(response)
        assert response.headers["content-type"] == media
    items = json_response.json()
    assert isinstance(items, list)
    root = ET.fromstring(xml_response.content)  # noqa: S314 - this server's own response
    assert len(root) == len(items)
    assert len({child.tag for child in root}) <= 1
    return items


@pytest.fixture
async def capped(make_client: AppFactory, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client on an emptied database whose page limit is CAP."""
    small: httpx.AsyncClient = await make_client(requests=RequestsSettings(max_results=CAP))
    return small


async def test_uncapped_geo_report_lists_are_complete(
    capped: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(capped)
    # Services: the test catalogue has four.
    assert len(seeded.catalog["services"]) > CAP
    services = await listed(capped, "services")
    assert len(services) == len(seeded.catalog["services"])
    # Areas: three boxes as the current ward set.
    boxes = [
        AreaInput(str(n), f"Box {n}", MultiPolygon([box(n, 0, n + 0.5, 0.5)])) for n in range(MORE)
    ]
    await import_boundary_set(engine, jurisdiction=JURISDICTION, name="boxes", areas=boxes)
    capped.app.state.open311.jurisdictions.invalidate()  # type: ignore[attr-defined]
    areas = await listed(capped, "areas")
    assert [a["code"] for a in areas] == [b.code for b in boxes]
    # Jurisdictions: two more than the seeded one (multi-jurisdiction from then on).
    for n in range(CAP):
        await seed_catalog(engine, code=f"other{n}.example.org")
    capped.app.state.open311.jurisdictions.invalidate()  # type: ignore[attr-defined]
    assert len(await listed(capped, "jurisdictions")) == MORE
    # Webhooks of one app.
    async with engine.begin() as conn:
        key, key_id = await create_key(conn, "Hooked app", app="Hooked app")
    app_id = await key_app_id(engine, key_id)
    async with engine.begin() as conn:
        for n in range(MORE):
            await create_subscription(conn, app_id=app_id, url=f"https://hooks.example.org/{n}")
    hooks = await listed(capped, "webhooks", {"api_key": key})
    assert len(hooks) == MORE


async def test_admin_listings_are_complete(capped: httpx.AsyncClient, seeded: Seed) -> None:
    engine = engine_of(capped)
    admin = await new_key(engine, "City staff", ["admin"])
    for n in range(MORE):
        await new_key(engine, f"App {n}", ["submit"])
    apps = await capped.get(f"{ADMIN}/apps.json", headers=auth(admin))
    no_paging(apps)
    assert len(apps.json()) == MORE + 2  # the seeded app and the staff app too
    keys = await capped.get(f"{ADMIN}/keys.json", headers=auth(admin))
    no_paging(keys)
    assert len(keys.json()) == MORE + 2
    request_id = await stored(engine, seeded)
    made = [await staff_update(capped, admin, request_id, status_notes=f"{n}") for n in range(MORE)]
    history = await capped.get(
        f"{ADMIN}/requests/{request_id}/updates.json",
        params={"jurisdiction_id": JURISDICTION},
        headers=auth(admin),
    )
    no_paging(history)
    assert [h["update_id"] for h in history.json()] == [m["update_id"] for m in made]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_get_requests_says_it_is_capped(
    capped: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    engine = engine_of(capped)
    base = now_s() - timedelta(days=1)
    made = [
        await stored(engine, seeded, requested_at=base + timedelta(minutes=n)) for n in range(MORE)
    ]
    response = await capped.get(f"{BASE}/requests.{fmt}")
    seen: list[str] = []
    for _ in range(MORE):
        assert response.status_code == 200, response.text[:300]
        assert response.headers["x-page-size-max"] == str(CAP)
        if fmt == "json":
            items = response.json()
        else:
            root, items = xml_to_value(response.content)
            assert root == "service_requests"
        seen += [item["service_request_id"] for item in items or []]
        if "link" not in response.headers:
            break
        link = LINK.match(response.headers["link"])
        assert link, response.headers["link"]
        assert link["url"].endswith(f"cursor={response.headers['x-next-cursor']}")
        response = await capped.get(link["url"])
    assert seen == made[::-1]  # newest first, every one, through the next links


async def test_get_requests_by_ids_says_it_is_capped(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    made = [await stored(engine, seeded) for _ in range(MORE)]
    response = await client.get(
        f"{BASE}/requests.json",
        params={"service_request_id": ",".join(made), "page_size": str(CAP)},
    )
    assert response.status_code == 200
    assert len(response.json()) == CAP
    assert "link" in response.headers, "a page that leaves requests out must say so"
    seen = [item["service_request_id"] for item in response.json()]
    for _ in range(MORE):
        link = LINK.match(response.headers["link"])
        assert link, response.headers["link"]
        response = await client.get(link["url"])
        assert response.status_code == 200, response.text[:300]
        seen += [item["service_request_id"] for item in response.json()]
        if "link" not in response.headers:
            break
    assert sorted(seen, key=int) == sorted(made, key=int)  # every one, through the next links
