"""GET requests.geojson and requests/{id}.geojson (issue 18 point 4): RFC 7946, the same
requests, filters and paging as requests.json, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema

from tests.api.test_get_requests import store
from tests.conftest import Seed

BASE = "/open311/v2"
GEOJSON = "application/geo+json"


async def documented(client: httpx.AsyncClient, path: str) -> Any:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][f"{BASE}/{path}"]["get"]
    return operation["responses"]["200"]["content"][GEOJSON]["schema"]


def check_feature(feature: Any, item: dict[str, Any]) -> None:
    """The Feature of a requests.json item: id, [long, lat] (or null), the other fields."""
    assert set(feature) == {"type", "id", "geometry", "properties"}
    assert feature["type"] == "Feature"
    assert feature["id"] == item["service_request_id"]
    if item["lat"] is None:
        assert feature["geometry"] is None
    else:
        assert feature["geometry"] == {"type": "Point", "coordinates": [item["long"], item["lat"]]}
    rest = {key: value for key, value in item.items() if key not in ("lat", "long")}
    assert feature["properties"] == rest


async def test_requests_geojson_is_requests_json(client: httpx.AsyncClient, seeded: Seed) -> None:
    now = datetime.now(UTC)
    located = await store(client, seeded, now - timedelta(hours=1), lat=43.65, lon=-79.38)
    await store(client, seeded, now - timedelta(hours=2), lat=None, lon=None, address="1 Main")
    await store(client, seeded, now - timedelta(hours=3), code="GRAFFITI", lat=43.7, lon=-79.4)
    for params in ({}, {"service_code": "POTHOLE"}, {"extensions": "true"}, {"q": "nothing"}):
        response = await client.get(f"{BASE}/requests.geojson", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == GEOJSON
        document = response.json()
        jsonschema.validate(document, await documented(client, "requests.geojson"))
        assert document["type"] == "FeatureCollection"
        items = (await client.get(f"{BASE}/requests.json", params=params)).json()
        assert len(document["features"]) == len(items)
        for feature, item in zip(document["features"], items, strict=True):
            check_feature(feature, item)
    # RFC 7946 order: longitude first.
    single = await client.get(f"{BASE}/requests/{located}.geojson")
    assert single.status_code == 200, single.text
    assert single.headers["content-type"] == GEOJSON
    feature = single.json()
    jsonschema.validate(feature, await documented(client, "requests/{service_request_id}.geojson"))
    assert feature["geometry"]["coordinates"] == [-79.38, 43.65]
    check_feature(feature, (await client.get(f"{BASE}/requests/{located}.json")).json()[0])


async def test_requests_geojson_pages_like_requests_json(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    now = datetime.now(UTC)
    ids = [await store(client, seeded, now - timedelta(minutes=i)) for i in range(5)]
    seen: list[str] = []
    url: str | None = f"{BASE}/requests.geojson?page_size=2&bbox=-80,43,-79,44"
    pages = 0
    while url is not None and pages < 5:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        document = response.json()
        seen += [feature["id"] for feature in document["features"]]
        links = document.get("links", [])
        if "X-Next-Cursor" in response.headers:
            (link,) = links
            assert link["rel"] == "next"
            assert response.headers["Link"] == f'<{link["href"]}>; rel="next"'
            assert "bbox=" in link["href"]
            url = link["href"]
        else:
            assert links == []
            url = None
        pages += 1
    assert seen == ids


async def test_requests_geojson_errors_are_json(client: httpx.AsyncClient, seeded: Seed) -> None:
    bad = await client.get(f"{BASE}/requests.geojson", params={"bbox": "1,2"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/json")
    assert "bbox" in bad.json()[0]["description"]
    missing = await client.get(f"{BASE}/requests/999999.geojson")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
