"""Boundary sets: import (GeoJSON), validate, make current, re-assign requests to wards."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from app.errors import BadRequest, NotFound
from app.geo.wards import WardIndex
from app.store import areas as store
from app.store import catalog as catalog_store
from app.store.areas import BoundarySetInfo as BoundarySetInfo

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


async def jurisdiction_pk(conn: AsyncConnection, code: str) -> int:
    """The primary key of a jurisdiction code, or 404."""
    pk = await catalog_store.jurisdiction_pk(conn, code, ignore_case=True)
    if pk is None:
        raise NotFound(f"No jurisdiction {code!r}.")
    return pk


async def count_requests(conn: AsyncConnection, code: str) -> int:
    """How many requests a jurisdiction has (404 when there is no such jurisdiction)."""
    return await store.count_requests(conn, await jurisdiction_pk(conn, code))


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
    async with engine.begin() as conn:
        pk = await jurisdiction_pk(conn, jurisdiction)
        if await store.boundary_set_id(conn, pk, name) is not None:
            raise BadRequest(f"Boundary set {name!r} already exists for {jurisdiction}.")
        set_id = await store.insert_boundary_set(
            conn, jurisdiction_pk=pk, name=name, kind=kind, source=source
        )
        for start in range(0, len(areas), batch_size):
            chunk = areas[start : start + batch_size]
            await store.insert_areas(
                conn,
                set_id,
                [store.NewArea(a.code, a.name, a.geometry, a.properties) for a in chunk],
            )
            if progress:
                progress(len(chunk))
        await store.store_area_pieces(conn, set_id)
        if make_current:
            await set_current(conn, set_id)
    await store.analyze_areas(engine)
    return set_id


async def set_current(conn: AsyncConnection, set_id: int) -> None:
    """Make a set the current one of its jurisdiction and kind (others stay, not current)."""
    if not await store.set_current(conn, set_id):
        raise NotFound(f"No boundary set {set_id}.")


async def find_set(conn: AsyncConnection, jurisdiction: str, name: str) -> int:
    """The id of a named boundary set, or 404."""
    pk = await jurisdiction_pk(conn, jurisdiction)
    set_id = await store.boundary_set_id(conn, pk, name)
    if set_id is None:
        raise NotFound(f"No boundary set {name!r} for {jurisdiction}.")
    return set_id


async def list_sets(conn: AsyncConnection) -> list[BoundarySetInfo]:
    """Every boundary set with its area count."""
    return await store.list_sets(conn)


async def current_set(
    conn: AsyncConnection, jurisdiction_pk: int, kind: str = "ward"
) -> int | None:
    """The id of the jurisdiction's current boundary set of a kind, if any."""
    return await store.current_set(conn, jurisdiction_pk, kind)


async def load_ward_index(conn: AsyncConnection, set_id: int) -> WardIndex:
    """The Shapely index of a boundary set (either backend)."""
    return await store.load_ward_index(conn, set_id)


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
    async with engine.connect() as conn:
        pk = await jurisdiction_pk(conn, jurisdiction)
    done = await store.reassign_wards(
        engine, pk, tolerance_m=tolerance_m, batch_size=batch_size, progress=progress
    )
    # Wards change without moving updated_at: the reports' rollups rebuild.
    from app.store import reports as reports_store
    from app.store.engine import write_transaction

    async with write_transaction(engine) as conn:
        await reports_store.invalidate(conn, pk)
    return done


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
