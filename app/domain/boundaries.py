"""Boundary sets: import (GeoJSON), validate, make current, re-assign requests to wards."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import LargeBinary, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import BadRequest, NotFound
from app.geo.points import WGS84
from app.geo.wards import WardIndex
from app.store.tables import Area, AreaPiece, BoundarySet, Jurisdiction, ServiceRequest
from app.store.tables.area import PIECE_MAX_VERTICES
from app.store.ward_sql import ward_id_expression

AREA = Area.__table__
PIECE = AreaPiece.__table__
BOUNDARY_SET = BoundarySet.__table__
JURISDICTION = Jurisdiction.__table__
REQUEST = ServiceRequest.__table__

WGS84_NAMES = {
    "EPSG:4326",
    "urn:ogc:def:crs:EPSG::4326",
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "OGC:CRS84",
    "CRS84",
}
CODE_FIELDS = ("ward_code", "code", "ward", "id", "number")
NAME_FIELDS = ("ward_name", "name", "NAME", "AREA_NAME")
# The kind of a region's boundary set whose areas are its partner cities (``app.federation``).
PARTNER_SET_KIND = "partner"

Progress = Callable[[int], None]


class BoundaryError(BadRequest):
    """A boundary file that cannot be imported (message says why and where)."""


@dataclass(slots=True)
class AreaInput:
    """One area read from a file, validated."""

    code: str
    name: str
    geometry: MultiPolygon
    properties: dict[str, Any] = field(default_factory=dict)
    repaired: bool = False


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon | None:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    polygons: list[Polygon] = []
    for part in parts:
        polygons.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    return MultiPolygon(polygons) if polygons else None


def _pick(properties: dict[str, Any], chosen: str | None, fallbacks: Sequence[str]) -> Any:
    if chosen:
        return properties.get(chosen)
    for name in fallbacks:
        if properties.get(name) not in (None, ""):
            return properties[name]
    return None


def read_geojson(
    path: Path,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    repair: bool = False,
) -> list[AreaInput]:
    """Areas of a GeoJSON FeatureCollection in EPSG:4326, each a valid MultiPolygon.

    A declared CRS other than WGS84, coordinates outside longitude/latitude ranges (a projected
    file), non-polygon features, duplicate or missing codes and invalid rings are refused
    with a message naming the feature; ``repair`` fixes invalid rings with ``make_valid``.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoundaryError(f"{path.name}: not a readable GeoJSON file ({exc}).") from exc
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise BoundaryError(f"{path.name}: expected a GeoJSON FeatureCollection.")
    crs = (document.get("crs") or {}).get("properties", {}).get("name")
    if crs and crs not in WGS84_NAMES:
        raise BoundaryError(
            f"{path.name}: coordinates are in {crs}; reproject the file to EPSG:4326 "
            "(longitude/latitude), e.g. with ogr2ogr -t_srs EPSG:4326."
        )
    areas: list[AreaInput] = []
    seen: set[str] = set()
    for number, feature in enumerate(document.get("features") or [], start=1):
        properties = feature.get("properties") or {}
        code = _pick(properties, code_field, CODE_FIELDS)
        name = _pick(properties, name_field, NAME_FIELDS)
        where = f"{path.name}, feature {number}"
        if code in (None, ""):
            raise BoundaryError(f"{where}: no area code (use --code-field).")
        code = str(code).strip()
        where = f"{path.name}, feature {number} (code {code})"
        if code in seen:
            raise BoundaryError(f"{where}: the code appears twice.")
        seen.add(code)
        try:
            geom = shape(feature.get("geometry"))
        except Exception as exc:
            raise BoundaryError(f"{where}: unreadable geometry ({exc}).") from exc
        if geom.is_empty:
            raise BoundaryError(f"{where}: empty geometry.")
        minx, miny, maxx, maxy = geom.bounds
        if not all(math.isfinite(v) for v in geom.bounds) or (
            minx < -180 or maxx > 180 or miny < -90 or maxy > 90
        ):
            raise BoundaryError(
                f"{where}: coordinates {geom.bounds} are not longitude/latitude; the file looks "
                "projected. Reproject it to EPSG:4326."
            )
        multi = _as_multipolygon(geom)
        if multi is None:
            raise BoundaryError(f"{where}: {geom.geom_type} is not a polygon or multipolygon.")
        repaired = False
        if not multi.is_valid:
            if not repair:
                raise BoundaryError(
                    f"{where}: invalid geometry ({explain_validity(multi)}). "
                    "Fix the file or import with --repair."
                )
            fixed = _as_multipolygon(shapely.make_valid(multi))
            if fixed is None or fixed.is_empty or not fixed.is_valid:
                raise BoundaryError(f"{where}: invalid geometry that cannot be repaired.")
            multi, repaired = fixed, True
        areas.append(
            AreaInput(
                code=code,
                name=str(name).strip() if name not in (None, "") else code,
                geometry=multi,
                properties={k: v for k, v in properties.items() if _json_scalar(v)},
                repaired=repaired,
            )
        )
    if not areas:
        raise BoundaryError(f"{path.name}: the file has no features.")
    return areas


def _json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


@dataclass(frozen=True, slots=True)
class BoundarySetInfo:
    """A boundary set as listed."""

    id: int
    jurisdiction: str
    name: str
    kind: str
    current: bool
    areas: int


async def jurisdiction_pk(conn: AsyncConnection, code: str) -> int:
    """The primary key of a jurisdiction code, or 404."""
    pk = (
        await conn.execute(
            select(JURISDICTION.c.id).where(func.lower(JURISDICTION.c.code) == code.lower())
        )
    ).scalar()
    if pk is None:
        raise NotFound(f"No jurisdiction {code!r}.")
    return int(pk)


async def count_requests(conn: AsyncConnection, code: str) -> int:
    """How many requests a jurisdiction has (404 when there is no such jurisdiction)."""
    pk = await jurisdiction_pk(conn, code)
    return int(
        (
            await conn.execute(
                select(func.count()).select_from(REQUEST).where(REQUEST.c.jurisdiction_id == pk)
            )
        ).scalar_one()
    )


async def import_boundary_set(
    engine: AsyncEngine,
    *,
    jurisdiction: str,
    name: str,
    areas: Sequence[AreaInput],
    kind: str = "ward",
    make_current: bool = True,
    source: str | None = None,
    progress: Progress | None = None,
    batch_size: int = 50,
) -> int:
    """Store a new boundary set with its areas (one transaction); its id."""
    postgis = engine.dialect.name == "postgresql"
    async with engine.begin() as conn:
        pk = await jurisdiction_pk(conn, jurisdiction)
        exists = (
            await conn.execute(
                select(BOUNDARY_SET.c.id).where(
                    BOUNDARY_SET.c.jurisdiction_id == pk, BOUNDARY_SET.c.name == name
                )
            )
        ).scalar()
        if exists is not None:
            raise BadRequest(f"Boundary set {name!r} already exists for {jurisdiction}.")
        set_id = int(
            (
                await conn.execute(
                    insert(BOUNDARY_SET)
                    .values(jurisdiction_id=pk, name=name, kind=kind, current=False, source=source)
                    .returning(BOUNDARY_SET.c.id)
                )
            ).scalar_one()
        )
        statement = insert(AREA)
        if postgis:
            statement = statement.values(
                geom=func.ST_Multi(func.ST_GeomFromWKB(bindparam("wkb", type_=LargeBinary), WGS84))
            )
        for start in range(0, len(areas), batch_size):
            chunk = areas[start : start + batch_size]
            rows = []
            for area in chunk:
                row: dict[str, Any] = {
                    "boundary_set_id": set_id,
                    "code": area.code,
                    "name": area.name,
                    "properties": area.properties,
                }
                if postgis:
                    row["wkb"] = shapely.to_wkb(area.geometry)
                else:
                    row["geom"] = shapely.to_wkb(area.geometry, hex=True)
                rows.append(row)
            await conn.execute(statement, rows)
            if progress:
                progress(len(chunk))
        if postgis:
            # The pieces ward lookups test (app.store.tables.area.AreaPiece).
            pieces = select(
                AREA.c.id,
                AREA.c.boundary_set_id,
                func.ST_Multi(func.ST_Subdivide(AREA.c.geom, PIECE_MAX_VERTICES)),
            ).where(AREA.c.boundary_set_id == set_id)
            await conn.execute(
                insert(PIECE).from_select(["area_id", "boundary_set_id", "geom"], pieces)
            )
        if make_current:
            await set_current(conn, set_id)
    if postgis:
        # Fresh statistics, so the planner uses the GiST indexes for ward lookups at once
        # (autovacuum would wait for far more rows than a ward map has).
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE area"))
            await conn.execute(text("ANALYZE area_piece"))
    return set_id


async def set_current(conn: AsyncConnection, set_id: int) -> None:
    """Make a set the current one of its jurisdiction and kind (others stay, not current)."""
    row = (
        await conn.execute(
            select(BOUNDARY_SET.c.jurisdiction_id, BOUNDARY_SET.c.kind).where(
                BOUNDARY_SET.c.id == set_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No boundary set {set_id}.")
    await conn.execute(
        update(BOUNDARY_SET)
        .where(BOUNDARY_SET.c.jurisdiction_id == row[0], BOUNDARY_SET.c.kind == row[1])
        .values(current=BOUNDARY_SET.c.id == set_id)
    )


async def find_set(conn: AsyncConnection, jurisdiction: str, name: str) -> int:
    """The id of a named boundary set, or 404."""
    pk = await jurisdiction_pk(conn, jurisdiction)
    set_id = (
        await conn.execute(
            select(BOUNDARY_SET.c.id).where(
                BOUNDARY_SET.c.jurisdiction_id == pk, BOUNDARY_SET.c.name == name
            )
        )
    ).scalar()
    if set_id is None:
        raise NotFound(f"No boundary set {name!r} for {jurisdiction}.")
    return int(set_id)


async def list_sets(conn: AsyncConnection) -> list[BoundarySetInfo]:
    """Every boundary set with its area count."""
    count = (
        select(func.count(AREA.c.id))
        .where(AREA.c.boundary_set_id == BOUNDARY_SET.c.id)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(
            BOUNDARY_SET.c.id,
            JURISDICTION.c.code,
            BOUNDARY_SET.c.name,
            BOUNDARY_SET.c.kind,
            BOUNDARY_SET.c.current,
            count,
        )
        .join(JURISDICTION, JURISDICTION.c.id == BOUNDARY_SET.c.jurisdiction_id)
        .order_by(JURISDICTION.c.code, BOUNDARY_SET.c.kind, BOUNDARY_SET.c.id)
    )
    return [BoundarySetInfo(*row) for row in rows]


async def current_set(
    conn: AsyncConnection, jurisdiction_pk: int, kind: str = "ward"
) -> int | None:
    """The id of the jurisdiction's current boundary set of a kind, if any."""
    value = (
        await conn.execute(
            select(BOUNDARY_SET.c.id).where(
                BOUNDARY_SET.c.jurisdiction_id == jurisdiction_pk,
                BOUNDARY_SET.c.kind == kind,
                BOUNDARY_SET.c.current.is_(True),
            )
        )
    ).scalar()
    return int(value) if value is not None else None


async def load_ward_index(conn: AsyncConnection, set_id: int) -> WardIndex:
    """The Shapely index of a boundary set (either backend)."""
    postgis = conn.dialect.name == "postgresql"
    geom = func.ST_AsBinary(AREA.c.geom) if postgis else AREA.c.geom
    rows = await conn.execute(
        select(AREA.c.id, AREA.c.code, AREA.c.name, geom).where(AREA.c.boundary_set_id == set_id)
    )
    return WardIndex(
        (row[0], row[1], row[2], shapely.from_wkb(bytes(row[3]) if postgis else row[3]))
        for row in rows
    )


async def reassign_wards(
    engine: AsyncEngine,
    jurisdiction: str,
    *,
    tolerance_m: float,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Give every located request of a jurisdiction the ward of its current ward set.

    PostGIS: one set-based UPDATE per id batch. Embedded: Shapely, batch by batch.
    Returns (requests processed, requests that got a ward).
    """
    postgis = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        pk = await jurisdiction_pk(conn, jurisdiction)
        set_id = await current_set(conn, pk)
        bounds = (
            await conn.execute(
                select(func.min(REQUEST.c.id), func.max(REQUEST.c.id)).where(
                    REQUEST.c.jurisdiction_id == pk
                )
            )
        ).one()
        index = None if postgis or set_id is None else await load_ward_index(conn, set_id)
    if bounds[0] is None:
        return 0, 0
    processed = assigned = 0
    low, high = int(bounds[0]), int(bounds[1])
    # Walk the id range by existing ids so sparse ids (imports) do not make empty batches.
    last = low - 1
    while last < high:
        async with engine.begin() as conn:
            ids = (
                await conn.execute(
                    select(REQUEST.c.id, REQUEST.c.lat, REQUEST.c.lon)
                    .where(REQUEST.c.jurisdiction_id == pk, REQUEST.c.id > last)
                    .order_by(REQUEST.c.id)
                    .limit(batch_size)
                )
            ).all()
            if not ids:
                break
            first_id, last = ids[0][0], ids[-1][0]
            batch = (REQUEST.c.jurisdiction_id == pk) & REQUEST.c.id.between(first_id, last)
            if set_id is None:
                await conn.execute(update(REQUEST).where(batch).values(ward_id=None))
            elif postgis:
                expression = ward_id_expression(
                    set_id, REQUEST.c.location, REQUEST.c.lat, tolerance_m
                )
                await conn.execute(update(REQUEST).where(batch).values(ward_id=expression))
            else:
                assert index is not None  # noqa: S101 - invariant, not an input check
                rows = [
                    {"pk": rid, "ward": _embedded_ward(index, lat, lon, tolerance_m)}
                    for rid, lat, lon in ids
                ]
                await conn.execute(
                    update(REQUEST)
                    .where(REQUEST.c.id == bindparam("pk"))
                    .values(ward_id=bindparam("ward")),
                    rows,
                )
            assigned += (
                await conn.execute(
                    select(func.count()).where(batch, REQUEST.c.ward_id.is_not(None))
                )
            ).scalar_one()
        processed += len(ids)
        if progress:
            progress(len(ids))
    return processed, assigned


def _embedded_ward(
    index: WardIndex, lat: float | None, lon: float | None, tol: float
) -> int | None:
    if lat is None or lon is None:
        return None
    hit = index.lookup(lat, lon, tol)
    return hit.area_id if hit else None


def areas_geojson(areas: Iterable[AreaInput]) -> dict[str, Any]:
    """A FeatureCollection of areas (for exports and tests)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": a.code, "name": a.name},
                "geometry": json.loads(shapely.to_geojson(a.geometry)),
            }
            for a in areas
        ],
    }


class WardIndexCache:
    """Shapely indexes by boundary set id (a set's areas never change once imported)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._indexes: dict[int, WardIndex] = {}

    async def get(self, set_id: int) -> WardIndex:
        """The index of a set, built on first use."""
        index = self._indexes.get(set_id)
        if index is None:
            async with self._engine.connect() as conn:
                index = await load_ward_index(conn, set_id)
            self._indexes[set_id] = index
        return index
