"""The areas listing (an extension): wards and other areas of a jurisdiction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from app.domain.jurisdictions import JurisdictionInfo
from app.errors import NotFound
from app.georeport.codec import JSONText
from app.messages import Text
from app.store.areas import AreasVersion, read_areas
from app.store.areas import areas_version as read_version

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def list_areas(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    *,
    boundary_set: str | None,
    kind: str | None,
    geometry: bool,
) -> list[dict[str, Any]]:
    """Areas of the jurisdiction's current sets (or of one named set), ordered by set and id.

    With ``geometry`` each area carries its GeoJSON geometry (an object in JSON, GeoJSON text
    in XML).
    """
    # No stored name holds a NUL (PostgreSQL text cannot), so such a filter matches nothing;
    # it must not reach PostgreSQL, which refuses it as a query parameter.
    if boundary_set and "\x00" in boundary_set:
        raise NotFound(
            Text("No boundary set {name!r} in {code}.", name=boundary_set, code=jurisdiction.code)
        )
    if kind and "\x00" in kind:
        return []
    areas = await read_areas(
        conn, jurisdiction.pk, boundary_set=boundary_set, kind=kind, geometry=geometry
    )
    if boundary_set and not areas:
        raise NotFound(
            Text("No boundary set {name!r} in {code}.", name=boundary_set, code=jurisdiction.code)
        )
    items = []
    for area in areas:
        item: dict[str, Any] = {
            "code": area.code,
            "name": area.name,
            "kind": area.kind,
            "boundary_set": area.boundary_set,
            "current": area.current,
        }
        if geometry:
            assert area.geojson is not None  # noqa: S101 - invariant, not an input check
            item["geometry"] = JSONText(area.geojson)
        items.append(item)
    return items


async def area_features(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    *,
    boundary_set: str | None,
    kind: str | None,
) -> bytes:
    """The areas of ``list_areas`` as an RFC 7946 FeatureCollection (UTF-8 JSON bytes):
    each a Feature with the fields of areas.json as its properties and its stored polygon
    as its geometry (PostGIS ``ST_AsGeoJSON`` or Shapely, by the store), ``id`` its code."""
    if boundary_set and "\x00" in boundary_set:
        raise NotFound(
            Text("No boundary set {name!r} in {code}.", name=boundary_set, code=jurisdiction.code)
        )
    areas = (
        []
        if kind and "\x00" in kind
        else await read_areas(
            conn, jurisdiction.pk, boundary_set=boundary_set, kind=kind, geometry=True
        )
    )
    if boundary_set and not areas:
        raise NotFound(
            Text("No boundary set {name!r} in {code}.", name=boundary_set, code=jurisdiction.code)
        )
    features = []
    for area in areas:
        assert area.geojson is not None  # noqa: S101 - invariant, not an input check
        properties = {
            "code": area.code,
            "name": area.name,
            "kind": area.kind,
            "boundary_set": area.boundary_set,
            "current": area.current,
        }
        # The geometry is the store's GeoJSON text as it is: no parse and re-serialise.
        features.append(
            b'{"type":"Feature","id":%s,"properties":%s,"geometry":%s}'
            % (orjson.dumps(area.code), orjson.dumps(properties), area.geojson.encode())
        )
    return b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]}"


async def areas_version(conn: AsyncConnection, jurisdiction: JurisdictionInfo) -> AreasVersion:
    """What the jurisdiction's areas listing is made of, in short, and when it last changed
    (the key and Last-Modified of GET areas' HTTP caching)."""
    return await read_version(conn, jurisdiction.pk)
