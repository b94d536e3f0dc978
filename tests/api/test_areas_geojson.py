"""GET areas.geojson: the current ward set as an RFC 7946 FeatureCollection, on both backends.

The same areas as areas.json (the same fields as properties, the same order), the stored
polygons as geometry (PostGIS ST_AsGeoJSON or Shapely), validated against the documented
schema and checked structurally (RFC 7946 §3: types, WGS84 positions, valid polygons).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import shapely
from shapely.geometry import shape

from tests.api.test_wards_api import BASE, TORONTO, city, import_boxes, shipped

OPENAPI = Path(__file__).parents[2] / "openapi" / "openapi.json"


def documented_schema() -> dict[str, Any]:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    operation = document["paths"][f"{BASE}/areas.geojson"]["get"]
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/geo+json"][
        "schema"
    ]
    return schema


def check_feature_collection(document: Any) -> None:
    """RFC 7946 structure: a FeatureCollection of Features with valid WGS84 polygons."""
    jsonschema.validate(document, documented_schema())
    assert set(document) == {"type", "features"}
    for feature in document["features"]:
        assert set(feature) == {"type", "id", "properties", "geometry"}
        assert feature["id"] == feature["properties"]["code"]
        geometry = shape(feature["geometry"])
        assert geometry.is_valid
        assert geometry.geom_type in ("Polygon", "MultiPolygon")
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        assert -180 <= min_lon <= max_lon <= 180
        assert -90 <= min_lat <= max_lat <= 90


async def test_areas_geojson_is_the_areas_of_areas_json(client: httpx.AsyncClient) -> None:
    await city(client, TORONTO)
    response = await client.get(f"{BASE}/areas.geojson")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    document = response.json()
    check_feature_collection(document)

    listed = (await client.get(f"{BASE}/areas.json")).json()
    assert len(listed) == 25
    assert [f["properties"] for f in document["features"]] == listed
    for feature, area in zip(document["features"], shipped(TORONTO), strict=True):
        assert shapely.equals_exact(
            shapely.normalize(shape(feature["geometry"])),
            shapely.normalize(area.geometry),
            tolerance=1e-7,
        ), area.code
    # The same geometry areas.json?geometry=true has.
    with_geometry = (await client.get(f"{BASE}/areas.json", params={"geometry": "true"})).json()
    assert [f["geometry"] for f in document["features"]] == [a["geometry"] for a in with_geometry]


async def test_areas_geojson_caching_and_filters(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await city(client, TORONTO)
    first = await client.get(f"{BASE}/areas.geojson")
    json_answer = await client.get(f"{BASE}/areas.json")
    assert first.headers["cache-control"] == json_answer.headers["cache-control"]
    assert first.headers["last-modified"]
    etag = first.headers["etag"]
    assert etag != json_answer.headers["etag"]
    again = await client.get(f"{BASE}/areas.geojson", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    # A new current set: a new answer, the new set's areas.
    await import_boxes(client, tmp_path, "toronto-boxes")
    changed = await client.get(f"{BASE}/areas.geojson", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    check_feature_collection(changed.json())
    assert [f["id"] for f in changed.json()["features"]] == ["W", "C"]
    older = await client.get(f"{BASE}/areas.geojson", params={"boundary_set": "toronto-wards-2018"})
    assert len(older.json()["features"]) == 25
    assert {f["properties"]["current"] for f in older.json()["features"]} == {False}
    none = await client.get(f"{BASE}/areas.geojson", params={"kind": "neighbourhood"})
    assert none.json() == {"type": "FeatureCollection", "features": []}


async def test_areas_geojson_errors_are_json(client: httpx.AsyncClient) -> None:
    await city(client, TORONTO)
    unknown = await client.get(f"{BASE}/areas.geojson", params={"boundary_set": "nope"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/json; charset=utf-8"
    assert unknown.json()[0]["code"] == 404
    twice = await client.get(f"{BASE}/areas.geojson?kind=ward&kind=other")
    assert twice.status_code == 400
    assert twice.json()[0]["code"] == 400
