"""The areas listing (an extension): wards and other areas of a jurisdiction."""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.jurisdictions import JurisdictionInfo
from app.errors import NotFound
from app.georeport.codec import JSONText
from app.store.tables import Area, BoundarySet

AREA = Area.__table__
BOUNDARY_SET = BoundarySet.__table__


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
    postgis = conn.dialect.name == "postgresql"
    # No stored name holds a NUL (PostgreSQL text cannot), so such a filter matches nothing;
    # it must not reach PostgreSQL, which refuses it as a query parameter.
    if boundary_set and "\x00" in boundary_set:
        raise NotFound(f"No boundary set {boundary_set!r} in {jurisdiction.code}.")
    if kind and "\x00" in kind:
        return []
    columns: list[Any] = [
        AREA.c.code,
        AREA.c.name,
        BOUNDARY_SET.c.kind,
        BOUNDARY_SET.c.name,
        BOUNDARY_SET.c.current,
    ]
    if geometry:
        columns.append(func.ST_AsGeoJSON(AREA.c.geom, 7) if postgis else AREA.c.geom)
    query = (
        select(*columns)
        .join(BOUNDARY_SET, BOUNDARY_SET.c.id == AREA.c.boundary_set_id)
        .where(BOUNDARY_SET.c.jurisdiction_id == jurisdiction.pk)
        .order_by(BOUNDARY_SET.c.kind, BOUNDARY_SET.c.id, AREA.c.id)
    )
    if boundary_set:
        query = query.where(BOUNDARY_SET.c.name == boundary_set)
    else:
        query = query.where(BOUNDARY_SET.c.current.is_(True))
    if kind:
        query = query.where(BOUNDARY_SET.c.kind == kind)
    rows = (await conn.execute(query)).all()
    if boundary_set and not rows:
        raise NotFound(f"No boundary set {boundary_set!r} in {jurisdiction.code}.")
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "code": row[0],
            "name": row[1],
            "kind": row[2],
            "boundary_set": row[3],
            "current": row[4],
        }
        if geometry:
            text = row[5] if postgis else shapely.to_geojson(shapely.from_wkb(row[5]), indent=None)
            item["geometry"] = JSONText(text)
        items.append(item)
    return items
