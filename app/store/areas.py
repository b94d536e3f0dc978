"""Boundary sets and their areas in the database: import, listing, ward (re-)assignment.

Both backends store an area as a SRID 4326 MultiPolygon; PostGIS also keeps its small pieces
(``AreaPiece``) for ward lookups and assigns wards in SQL (``app.store.ward_sql``), the embedded
default with the Shapely index (``app.geo.wards``). ``app.domain.areas`` and
``app.domain.boundaries`` keep the decisions (what is refused, what is current).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import LargeBinary, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.geo.points import WGS84
from app.geo.wards import WardIndex
from app.store.tables import Area, AreaPiece, BoundarySet, Jurisdiction, ServiceRequest
from app.store.tables.area import PIECE_MAX_VERTICES
from app.store.tables.base import utcnow
from app.store.ward_sql import ward_id_expression

AREA = Area.__table__
PIECE = AreaPiece.__table__
BOUNDARY_SET = BoundarySet.__table__
JURISDICTION = Jurisdiction.__table__
REQUEST = ServiceRequest.__table__


@dataclass(frozen=True, slots=True)
class BoundarySetInfo:
    """A boundary set as listed."""

    id: int
    jurisdiction: str
    name: str
    kind: str
    current: bool
    areas: int


@dataclass(frozen=True, slots=True)
class ListedArea:
    """An area of the areas listing; ``geojson`` only when its geometry was asked for."""

    code: str
    name: str
    kind: str
    boundary_set: str
    current: bool
    geojson: str | None


@dataclass(frozen=True, slots=True)
class NewArea:
    """An area to store: a valid (Multi)Polygon in WGS84 longitude/latitude."""

    code: str
    name: str
    geometry: BaseGeometry
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AreaName:
    """An area's primary key, code and name."""

    pk: int
    code: str
    name: str


def _postgis(conn: AsyncConnection | AsyncEngine) -> bool:
    return conn.dialect.name == "postgresql"


async def read_areas(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    *,
    boundary_set: str | None,
    kind: str | None,
    geometry: bool,
) -> list[ListedArea]:
    """Areas of the jurisdiction's current sets (or of the set named ``boundary_set``), of
    one ``kind`` if given, ordered by kind, set and id; with ``geometry``, GeoJSON text."""
    postgis = _postgis(conn)
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
        .where(BOUNDARY_SET.c.jurisdiction_id == jurisdiction_pk)
        .order_by(BOUNDARY_SET.c.kind, BOUNDARY_SET.c.id, AREA.c.id)
    )
    if boundary_set:
        query = query.where(BOUNDARY_SET.c.name == boundary_set)
    else:
        query = query.where(BOUNDARY_SET.c.current.is_(True))
    if kind:
        query = query.where(BOUNDARY_SET.c.kind == kind)
    areas = []
    for row in await conn.execute(query):
        geojson = None
        if geometry:
            geojson = (
                row[5] if postgis else shapely.to_geojson(shapely.from_wkb(row[5]), indent=None)
            )
        areas.append(ListedArea(row[0], row[1], row[2], row[3], row[4], geojson))
    return areas


@dataclass(frozen=True, slots=True)
class AreasVersion:
    """What a jurisdiction's areas listing is made of, in short: its boundary sets (id, name,
    kind, current) and when one was last created or changed its current flag."""

    sets: tuple[tuple[int, str, str, bool], ...]
    changed_at: datetime | None


async def areas_version(conn: AsyncConnection, jurisdiction_pk: int) -> AreasVersion:
    """The version of a jurisdiction's areas (sets are never edited once imported: a new
    set, or another current one, is what changes them)."""
    rows = (
        await conn.execute(
            select(
                BOUNDARY_SET.c.id,
                BOUNDARY_SET.c.name,
                BOUNDARY_SET.c.kind,
                BOUNDARY_SET.c.current,
                BOUNDARY_SET.c.created_at,
                BOUNDARY_SET.c.updated_at,
            )
            .where(BOUNDARY_SET.c.jurisdiction_id == jurisdiction_pk)
            .order_by(BOUNDARY_SET.c.id)
        )
    ).all()
    stamps = [stamp for row in rows for stamp in (row[4], row[5]) if stamp is not None]
    return AreasVersion(
        tuple((int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows),
        max(stamps) if stamps else None,
    )


async def count_requests(conn: AsyncConnection, jurisdiction_pk: int) -> int:
    """How many requests a jurisdiction has."""
    return int(
        (
            await conn.execute(
                select(func.count())
                .select_from(REQUEST)
                .where(REQUEST.c.jurisdiction_id == jurisdiction_pk)
            )
        ).scalar_one()
    )


async def boundary_set_id(conn: AsyncConnection, jurisdiction_pk: int, name: str) -> int | None:
    """The id of a jurisdiction's boundary set by name, if there is one."""
    set_id = (
        await conn.execute(
            select(BOUNDARY_SET.c.id).where(
                BOUNDARY_SET.c.jurisdiction_id == jurisdiction_pk, BOUNDARY_SET.c.name == name
            )
        )
    ).scalar()
    return int(set_id) if set_id is not None else None


async def insert_boundary_set(
    conn: AsyncConnection, *, jurisdiction_pk: int, name: str, kind: str, source: str | None
) -> int:
    """A new boundary set, not current, without areas; its id."""
    return int(
        (
            await conn.execute(
                insert(BOUNDARY_SET)
                .values(
                    jurisdiction_id=jurisdiction_pk,
                    name=name,
                    kind=kind,
                    current=False,
                    source=source,
                )
                .returning(BOUNDARY_SET.c.id)
            )
        ).scalar_one()
    )


async def insert_areas(conn: AsyncConnection, set_id: int, areas: Sequence[NewArea]) -> None:
    """Add areas to a boundary set (one statement)."""
    if not areas:
        return
    postgis = _postgis(conn)
    statement = insert(AREA)
    if postgis:
        statement = statement.values(
            geom=func.ST_Multi(func.ST_GeomFromWKB(bindparam("wkb", type_=LargeBinary), WGS84))
        )
    rows = []
    for area in areas:
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


async def store_area_pieces(conn: AsyncConnection, set_id: int) -> None:
    """PostGIS: cut the areas of a set into the pieces ward lookups test
    (``app.store.tables.area.AreaPiece``). Nothing on the embedded default."""
    if not _postgis(conn):
        return
    pieces = select(
        AREA.c.id,
        AREA.c.boundary_set_id,
        func.ST_Multi(func.ST_Subdivide(AREA.c.geom, PIECE_MAX_VERTICES)),
    ).where(AREA.c.boundary_set_id == set_id)
    await conn.execute(insert(PIECE).from_select(["area_id", "boundary_set_id", "geom"], pieces))


async def analyze_areas(engine: AsyncEngine) -> None:
    """PostGIS: fresh statistics, so the planner uses the GiST indexes for ward lookups at
    once (autovacuum would wait for far more rows than a ward map has). Nothing on the
    embedded default."""
    if not _postgis(engine):
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE area"))
        await conn.execute(text("ANALYZE area_piece"))


async def set_current(conn: AsyncConnection, set_id: int) -> bool:
    """Make a set the current one of its jurisdiction and kind (others stay, not current);
    False when there is no such set."""
    row = (
        await conn.execute(
            select(BOUNDARY_SET.c.jurisdiction_id, BOUNDARY_SET.c.kind).where(
                BOUNDARY_SET.c.id == set_id
            )
        )
    ).first()
    if row is None:
        return False
    # Only the sets whose flag changes are touched, so updated_at tells when areas changed.
    await conn.execute(
        update(BOUNDARY_SET)
        .where(
            BOUNDARY_SET.c.jurisdiction_id == row[0],
            BOUNDARY_SET.c.kind == row[1],
            BOUNDARY_SET.c.current != (BOUNDARY_SET.c.id == set_id),
        )
        .values(current=BOUNDARY_SET.c.id == set_id, updated_at=utcnow())
    )
    return True


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


async def current_set(conn: AsyncConnection, jurisdiction_pk: int, kind: str) -> int | None:
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


async def area_names(conn: AsyncConnection, set_id: int) -> list[AreaName]:
    """The areas of a boundary set, by id."""
    rows = await conn.execute(
        select(AREA.c.id, AREA.c.code, AREA.c.name)
        .where(AREA.c.boundary_set_id == set_id)
        .order_by(AREA.c.id)
    )
    return [AreaName(pk, code, name) for pk, code, name in rows]


async def load_ward_index(conn: AsyncConnection, set_id: int) -> WardIndex:
    """The Shapely index of a boundary set (either backend)."""
    postgis = _postgis(conn)
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
    jurisdiction_pk: int,
    *,
    tolerance_m: float,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Give every located request of a jurisdiction the ward of its current ward set (none
    without one), one transaction per batch of ids.

    PostGIS: one set-based UPDATE per id batch. Embedded: Shapely, batch by batch.
    Returns (requests processed, requests that got a ward).
    """
    postgis = _postgis(engine)
    async with engine.connect() as conn:
        set_id = await current_set(conn, jurisdiction_pk, "ward")
        bounds = (
            await conn.execute(
                select(func.min(REQUEST.c.id), func.max(REQUEST.c.id)).where(
                    REQUEST.c.jurisdiction_id == jurisdiction_pk
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
                    .where(REQUEST.c.jurisdiction_id == jurisdiction_pk, REQUEST.c.id > last)
                    .order_by(REQUEST.c.id)
                    .limit(batch_size)
                )
            ).all()
            if not ids:
                break
            first_id, last = ids[0][0], ids[-1][0]
            batch = (REQUEST.c.jurisdiction_id == jurisdiction_pk) & REQUEST.c.id.between(
                first_id, last
            )
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
