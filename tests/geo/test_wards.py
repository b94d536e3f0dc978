"""Wards at the domain level: the lookup rule, GeoJSON import checks, versioned boundary sets.

The shipped ward maps (Toronto 25, Chicago 50, Greater Sudbury 12) are read here with plain
Shapely to derive the expected answers (covering wards in import order, shared vertices,
boundary offsets), and the application is checked against them on both backends: the SQL
expression of ``app.geo.wards`` on PostGIS and the Shapely ``WardIndex`` on SQLite. The HTTP
side of wards is tested in tests/api/test_wards_api.py.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel, unary_union
from sqlalchemy import Float, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.demo.loader import (
    BOUNDARIES,
    REQUESTS_FILE,
    WARD_MAPS,
    load_demo,
    load_ward_map,
)
from app.domain.boundaries import (
    AreaInput,
    BoundaryError,
    find_set,
    import_boundary_set,
    list_sets,
    load_ward_index,
    read_geojson,
    reassign_wards,
    set_current,
)
from app.domain.catalog_import import upsert_jurisdiction
from app.errors import BadRequest, NotFound
from app.geo.points import point_expression
from app.geo.wards import METRES_PER_DEGREE, WardIndex
from app.store.tables import Area, ServiceRequest
from app.store.ward_sql import ward_id_expression
from tests.conftest import engine_of

AREA = Area.__table__
REQUEST = ServiceRequest.__table__
TORONTO, CHICAGO, SUDBURY = "toronto.ca", "cityofchicago.org", "greatersudbury.ca"
CITIES = (TORONTO, CHICAGO, SUDBURY)
TOLERANCE_M = 5.0  # the configured default (settings.wards.tolerance_m)
# The five located 2018 requests on Steeles Avenue that lie ~1 m outside every Toronto ward,
# in file order, and their nearest wards (data README).
STEELES_NEAREST = ("22", "7", "18", "23", "18")
BATCH = 100  # points per statement in the PostGIS agreement test
Segment = tuple[tuple[float, float], tuple[float, float]]
postgis_only = pytest.mark.parametrize("backend", ["postgis"], indirect=True)


# --- The shipped maps, read independently of the application's lookup --------------------------


@cache
def shipped(jurisdiction: str) -> tuple[AreaInput, ...]:
    """The shipped ward map of a jurisdiction, in file (= import) order."""
    file_name = WARD_MAPS[jurisdiction][1]
    areas = read_geojson(BOUNDARIES / file_name, code_field="ward_code", name_field="ward_name")
    for area in areas:
        shapely.prepare(area.geometry)
    return tuple(areas)


def covering_codes(jurisdiction: str, lat: float, lon: float) -> list[str]:
    """Codes of the shipped wards covering a point, in import order (plain Shapely)."""
    point = Point(lon, lat)
    return [a.code for a in shipped(jurisdiction) if a.geometry.covers(point)]


@cache
def toronto_requests() -> tuple[dict[str, Any], ...]:
    """The captured Toronto 2018 requests."""
    return tuple(json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"])


def located_requests() -> list[tuple[float, float]]:
    """(lat, lon) of every located captured request."""
    return [(r["lat"], r["long"]) for r in toronto_requests() if r.get("lat") is not None]


def wards_2018() -> dict[int, str | None]:
    """Request id -> the 2018 ward each captured request belongs to (None: not located).

    The covering ward, or for the five Steeles requests their nearest ward (README).
    """
    steeles = dict(zip(steeles_points(), STEELES_NEAREST, strict=True))
    wards: dict[int, str | None] = {}
    for record in toronto_requests():
        lat, lon = record.get("lat"), record.get("long")
        code = None
        if lat is not None:
            code = (covering_codes(TORONTO, lat, lon) or [steeles[lat, lon]])[0]
        wards[int(record["service_request_id"])] = code
    return wards


def steeles_points() -> list[tuple[float, float]]:
    """The located requests covered by no shipped Toronto ward, in file order."""
    return [(lat, lon) for lat, lon in located_requests() if not covering_codes(TORONTO, lat, lon)]


def rings(geometry: MultiPolygon) -> Iterator[list[tuple[float, float]]]:
    """Every ring (exterior and holes) of a multipolygon as (lon, lat) vertices."""
    for polygon in geometry.geoms:
        yield list(polygon.exterior.coords)
        for hole in polygon.interiors:
            yield list(hole.coords)


@cache
def vertex_owners(jurisdiction: str) -> dict[tuple[float, float], frozenset[str]]:
    """Each (lon, lat) vertex of the map -> codes of the wards having it as a vertex."""
    owners: dict[tuple[float, float], set[str]] = {}
    for area in shipped(jurisdiction):
        for ring in rings(area.geometry):
            for vertex in ring:
                owners.setdefault(vertex, set()).add(area.code)
    return {vertex: frozenset(codes) for vertex, codes in owners.items()}


@cache
def shared_vertices(jurisdiction: str) -> tuple[tuple[float, float], ...]:
    """(lat, lon) of vertices of exactly two wards, both of which cover it, sorted."""
    found = []
    for (lon, lat), codes in sorted(vertex_owners(jurisdiction).items()):
        if len(codes) == 2 and set(covering_codes(jurisdiction, lat, lon)) == codes:
            found.append((lat, lon))
        if len(found) == 3:
            break
    return tuple(found)


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """A point ``east_m``/``north_m`` metres away (local flat approximation)."""
    return (
        lat + north_m / METRES_PER_DEGREE,
        lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))),
    )


@cache
def segments(jurisdiction: str) -> tuple[list[Segment], list[Segment]]:
    """Edges shared by two wards and edges of one ward only (the outline), in map order."""
    count: Counter[Segment] = Counter()
    edges: list[Segment] = []
    for area in shipped(jurisdiction):
        for ring in rings(area.geometry):
            for a, b in itertools.pairwise(ring):
                if a != b:
                    edges.append((a, b))
                    count[min(a, b), max(a, b)] += 1
    shared = [(a, b) for a, b in edges if count[min(a, b), max(a, b)] > 1]
    outline = [(a, b) for a, b in edges if count[min(a, b), max(a, b)] == 1]
    return shared, outline


def either_side(edge: Segment, distances: Sequence[float]) -> list[tuple[float, float]]:
    """Points at ``distances`` metres from the middle of an edge, perpendicular, both sides."""
    (lon1, lat1), (lon2, lat2) = edge
    lat, lon = (lat1 + lat2) / 2, (lon1 + lon2) / 2
    east = (lon2 - lon1) * METRES_PER_DEGREE * math.cos(math.radians(lat))
    north = (lat2 - lat1) * METRES_PER_DEGREE
    length = math.hypot(east, north)
    return [
        offset(lat, lon, -north / length * metres * side, east / length * metres * side)
        for metres in distances
        for side in (1, -1)
    ]


def boundary_points(jurisdiction: str, rng: random.Random) -> list[tuple[float, float]]:
    """Shared vertices, points either side of shared edges and of the outline (tolerance zone)."""
    vertices = sorted(
        (lat, lon) for (lon, lat), codes in vertex_owners(jurisdiction).items() if len(codes) >= 2
    )
    shared, outline = segments(jurisdiction)
    points = rng.sample(vertices, 150)
    for edge in rng.sample(shared, 80):
        points.extend(either_side(edge, (0.5, 2.5)))
    for edge in rng.sample(outline, 60):
        points.extend(either_side(edge, (0.5, 4.75, 6.0)))
    return points


def random_points(jurisdiction: str, rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Uniform points in the map's bounding box widened by 5 % on every side."""
    bounds = [a.geometry.bounds for a in shipped(jurisdiction)]
    minx, miny = min(b[0] for b in bounds), min(b[1] for b in bounds)
    maxx, maxy = max(b[2] for b in bounds), max(b[3] for b in bounds)
    dx, dy = (maxx - minx) * 0.05, (maxy - miny) * 0.05
    return [
        (rng.uniform(miny - dy, maxy + dy), rng.uniform(minx - dx, maxx + dx)) for _ in range(count)
    ]


# --- The application under test -----------------------------------------------------------------


async def ward_map(engine: AsyncEngine, jurisdiction: str) -> tuple[int, dict[int, str]]:
    """Load a shipped ward map; its set id and area id -> code."""
    await load_ward_map(engine, jurisdiction, TOLERANCE_M)
    async with engine.connect() as conn:
        set_id = await find_set(conn, jurisdiction, WARD_MAPS[jurisdiction][0])
        return set_id, await area_codes(conn, set_id)


async def area_codes(conn: AsyncConnection, set_id: int) -> dict[int, str]:
    """Area id -> code of a boundary set."""
    rows = await conn.execute(
        select(AREA.c.id, AREA.c.code).where(AREA.c.boundary_set_id == set_id)
    )
    return {int(pk): code for pk, code in rows}


async def sql_wards(
    conn: AsyncConnection, set_id: int, points: Sequence[tuple[float, float]], tolerance_m: float
) -> list[int | None]:
    """Area ids from the PostGIS expression for many points, a few statements in all.

    One SELECT evaluates ``ward_id_expression`` for ``BATCH`` points bound as parameters, so
    thousands of points take a few dozen round trips. Custom plans let the planner see each
    point as a constant, as it does in the INSERT of a request (test_ward_rule evaluates the
    expression exactly as ``create_request`` builds it, one point at a time).
    """
    lat = [bindparam(f"lat{i}", type_=Float) for i in range(BATCH)]
    lon = [bindparam(f"lon{i}", type_=Float) for i in range(BATCH)]
    statement = select(
        *[
            ward_id_expression(set_id, point_expression(lat[i], lon[i]), lat[i], tolerance_m)
            for i in range(BATCH)
        ]
    )
    found: list[int | None] = []
    await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    for start in range(0, len(points), BATCH):
        chunk = list(points[start : start + BATCH])
        padded = chunk + [chunk[0]] * (BATCH - len(chunk))
        params = {f"lat{i}": p[0] for i, p in enumerate(padded)}
        params.update({f"lon{i}": p[1] for i, p in enumerate(padded)})
        row = (await conn.execute(statement, params)).one()
        found.extend(None if v is None else int(v) for v in row[: len(chunk)])
    return found


def index_wards(
    index: WardIndex, points: Sequence[tuple[float, float]], tolerance_m: float
) -> list[int | None]:
    """Area ids from the Shapely index."""
    hits = [index.lookup(lat, lon, tolerance_m) for lat, lon in points]
    return [hit.area_id if hit else None for hit in hits]


async def backend_wards(
    engine: AsyncEngine, set_id: int, points: Sequence[tuple[float, float, float]]
) -> list[int | None]:
    """Ward ids of (lat, lon, tolerance) points by the backend's own lookup.

    As ``create_request`` does it: the SQL expression for one literal point on PostGIS, the
    Shapely index of the set on the embedded default.
    """
    found: list[int | None] = []
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            for lat, lon, tolerance in points:
                expression = ward_id_expression(set_id, point_expression(lat, lon), lat, tolerance)
                value = (await conn.execute(select(expression))).scalar()
                found.append(None if value is None else int(value))
            return found
        index = await load_ward_index(conn, set_id)
    for lat, lon, tolerance in points:
        hit = index.lookup(lat, lon, tolerance)
        found.append(hit.area_id if hit else None)
    return found


async def stored_requests(engine: AsyncEngine) -> dict[int, tuple[float | None, float | None, Any]]:
    """Request id -> (lat, lon, ward_id) of every stored request."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(REQUEST.c.id, REQUEST.c.lat, REQUEST.c.lon, REQUEST.c.ward_id)
        )
        return {int(pk): (lat, lon, ward) for pk, lat, lon, ward in rows}


# --- PostGIS and Shapely agree ------------------------------------------------------------------


@postgis_only
@pytest.mark.parametrize("jurisdiction", CITIES)
async def test_postgis_and_shapely_agree(client: httpx.AsyncClient, jurisdiction: str) -> None:
    engine = engine_of(client)
    set_id, codes = await ward_map(engine, jurisdiction)
    assert sorted(codes.values()) == sorted(a.code for a in shipped(jurisdiction))
    async with engine.begin() as conn:
        # Planner statistics for the fresh table (autovacuum never analyzes a few dozen rows):
        # without them the nearest-ward subquery skips the GiST index and the test runs ~6x
        # slower. Results are the same either way.
        await conn.execute(text("ANALYZE area"))
    rng = random.Random(f"wards-{jurisdiction}")  # noqa: S311 - test data, not security
    groups = {
        "random": random_points(jurisdiction, rng, 2000),
        "boundary": boundary_points(jurisdiction, rng),
    }
    if jurisdiction == TORONTO:
        groups["requests"] = located_requests()
        assert len(groups["requests"]) == 996
    # Every group with the tolerance; without it too where points lie on or near edges.
    passes = [(name, TOLERANCE_M) for name in groups]
    passes += [(name, 0.0) for name in groups if name != "random"]
    async with engine.connect() as conn:
        index = await load_ward_index(conn, set_id)
        by_sql = [await sql_wards(conn, set_id, groups[name], tol) for name, tol in passes]
    in_ward: dict[tuple[str, float], int] = {}
    report: list[str] = []
    disagreements: list[tuple[float, float, float, str | None, str | None]] = []
    for (name, tolerance), sql in zip(passes, by_sql, strict=True):
        points = groups[name]
        shapely_ids = index_wards(index, points, tolerance)
        wrong = [
            (lat, lon, tolerance, codes.get(s or 0), codes.get(i or 0))
            for (lat, lon), s, i in zip(points, sql, shapely_ids, strict=True)
            if s != i
        ]
        disagreements += wrong
        in_ward[name, tolerance] = sum(1 for s in sql if s is not None)
        report.append(
            f"{name}@{tolerance:g}m: {len(points)} points, {in_ward[name, tolerance]} in a ward, "
            f"{len(wrong)} disagree"
        )
    assert not disagreements, (
        f"{jurisdiction}: {len(disagreements)} disagreements (lat, lon, tolerance, PostGIS ward, "
        f"Shapely ward), first {disagreements[:5]}; {'; '.join(report)}"
    )
    # The sample exercises every branch of the rule: inside, outside, and within tolerance only.
    assert 0 < in_ward["random", TOLERANCE_M] < len(groups["random"]), report
    assert in_ward["boundary", TOLERANCE_M] > in_ward["boundary", 0.0], report


# --- The rule, on both backends -----------------------------------------------------------------


def sudbury_hole() -> tuple[float, float]:
    """(lat, lon) of the point of the real hole in ward 3 farthest from its edges."""
    ward3 = next(a.geometry for a in shipped(SUDBURY) if a.code == "3")
    holes = [Polygon(ring) for polygon in ward3.geoms for ring in polygon.interiors]
    hole = max(holes, key=lambda h: h.area)
    centre = polylabel(hole, tolerance=1e-6)
    assert centre.distance(Point(-81.437, 46.617)) < 0.005, centre  # the README's location
    return centre.y, centre.x


# Named points: (label, lat, lon, tolerance in metres, expected ward code or None).
Case = tuple[str, float, float, float, str | None]


def rule_cases(jurisdiction: str) -> list[Case]:
    """Fixed facts of the data README plus points derived from the shipped map."""
    cases: list[Case] = []
    if jurisdiction == TORONTO:
        cases += [
            ("City Hall", 43.6534, -79.3841, TOLERANCE_M, "10"),
            ("Lake Ontario, 2.5 km out", 43.60, -79.30, TOLERANCE_M, None),
            ("Lake Ontario, 6 km out", 43.55, -79.35, TOLERANCE_M, None),
        ]
        for n, ((lat, lon), code) in enumerate(
            zip(steeles_points(), STEELES_NEAREST, strict=True), start=1
        ):
            cases += [
                (f"Steeles request {n}", lat, lon, TOLERANCE_M, code),
                (f"Steeles request {n}, no tolerance", lat, lon, 0.0, None),
            ]
    elif jurisdiction == CHICAGO:
        cases += [
            ("City Hall", 41.8837, -87.6319, TOLERANCE_M, "42"),
            ("City Hall (README)", 41.8837, -87.6323, TOLERANCE_M, "42"),
            ("Norridge/Harwood Heights enclave", 41.964, -87.812, TOLERANCE_M, None),
            ("enclave at -87.826, 41.980", 41.980, -87.826, TOLERANCE_M, None),
            ("enclave at -87.694, 41.695", 41.695, -87.694, TOLERANCE_M, None),
        ]
    else:
        lat, lon = sudbury_hole()
        cases.append(("hole in ward 3", lat, lon, TOLERANCE_M, None))
    for lat, lon in shared_vertices(jurisdiction):
        # Covered by exactly two wards: the first imported (lowest id) wins.
        first = covering_codes(jurisdiction, lat, lon)[0]
        cases.append((f"vertex shared at {lat}, {lon}", lat, lon, TOLERANCE_M, first))
        cases.append((f"vertex shared at {lat}, {lon}, no tolerance", lat, lon, 0.0, first))
    return cases


@pytest.mark.parametrize("jurisdiction", CITIES)
async def test_ward_rule(client: httpx.AsyncClient, jurisdiction: str) -> None:
    engine = engine_of(client)
    set_id, codes = await ward_map(engine, jurisdiction)
    ids = {code: pk for pk, code in codes.items()}
    cases = rule_cases(jurisdiction)
    # The expectations follow from the shipped file itself (the rule computed with Shapely in
    # a local metric frame), before the application is asked.
    assert [rule_on_file(jurisdiction, lat, lon, tol) for _, lat, lon, tol, _ in cases] == [
        expected for *_, expected in cases
    ]
    for lat, lon in shared_vertices(jurisdiction):
        pair = covering_codes(jurisdiction, lat, lon)
        assert len(pair) == 2, (lat, lon, pair)
        assert ids[pair[0]] < ids[pair[1]], (lat, lon, pair)
    assert len(shared_vertices(jurisdiction)) == 3
    wards = await backend_wards(engine, set_id, [(lat, lon, tol) for _, lat, lon, tol, _ in cases])
    got = [
        (case[0], codes[ward] if ward is not None else None)
        for case, ward in zip(cases, wards, strict=True)
    ]
    assert got == [(label, expected) for label, *_, expected in cases]


def test_steeles_requests_lie_just_outside_toronto() -> None:
    # The five Steeles points of the rule test are what the data README says they are.
    points = steeles_points()
    assert len(points) == 5
    for (lat, lon), code in zip(points, STEELES_NEAREST, strict=True):
        distances = {a.code: metric_distance(a.geometry, lat, lon) for a in shipped(TORONTO)}
        assert 0.5 < distances.pop(code) < 2.0, (lat, lon, code)
        assert min(distances.values()) > TOLERANCE_M, (lat, lon)


def metric_distance(geometry: BaseGeometry, lat: float, lon: float) -> float:
    """Distance in metres from a point to a geometry, in a local equirectangular frame.

    Longitudes are scaled by cos(lat) around the point first, so the nearest point is the
    nearest in metres (exact enough within a few metres; far areas are only "far").
    """
    scale = math.cos(math.radians(lat))
    local = affinity.scale(geometry, xfact=scale, yfact=1.0, origin=(lon, lat))
    return float(local.distance(Point(lon, lat))) * METRES_PER_DEGREE


def rule_on_file(jurisdiction: str, lat: float, lon: float, tolerance_m: float) -> str | None:
    """The ward rule computed on the shipped file (independently of ``app.geo.wards``).

    The first covering ward in import order, else the nearest ward within the tolerance
    (ties: first imported), else none.
    """
    covering = covering_codes(jurisdiction, lat, lon)
    if covering or tolerance_m <= 0:
        return covering[0] if covering else None
    areas = shipped(jurisdiction)
    near = [(metric_distance(a.geometry, lat, lon), n) for n, a in enumerate(areas)]
    within = [(metres, n) for metres, n in near if metres <= tolerance_m]
    return areas[min(within)[1]].code if within else None


# --- read_geojson --------------------------------------------------------------------------------

SQUARE = [[-79.40, 43.65], [-79.39, 43.65], [-79.39, 43.66], [-79.40, 43.66], [-79.40, 43.65]]
# Two triangles of 1e-4 square degrees each, crossing at (-79.39, 43.66).
BOW_TIE = [[-79.40, 43.65], [-79.38, 43.67], [-79.38, 43.65], [-79.40, 43.67], [-79.40, 43.65]]
TRIANGLE = [[-79.40, 43.65], [-79.38, 43.67], [-79.38, 43.65], [-79.40, 43.65]]
PROJECTED = [[630000, 4830000], [631000, 4830000], [631000, 4831000], [630000, 4830000]]


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    """A GeoJSON Feature."""
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    """A GeoJSON Polygon of one ring."""
    return {"type": "Polygon", "coordinates": [ring]}


def collection(*features: dict[str, Any], **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", **members, "features": list(features)}


def named_crs(name: str) -> dict[str, Any]:
    """A (2008-style) GeoJSON ``crs`` member."""
    return {"type": "name", "properties": {"name": name}}


def write(tmp_path: Path, document: dict[str, Any] | str) -> Path:
    """A boundary file in tmp_path."""
    path = tmp_path / "wards.geojson"
    text_ = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text_, encoding="utf-8")
    return path


def test_polygon_becomes_a_multipolygon(tmp_path: Path) -> None:
    document = collection(
        feature(polygon(SQUARE), code="1", name="One"),
        feature(
            {"type": "MultiPolygon", "coordinates": [[TRIANGLE]]},
            ward_code=2,
            NAME="Two",
        ),
        crs=named_crs("urn:ogc:def:crs:OGC:1.3:CRS84"),
    )
    areas = read_geojson(write(tmp_path, document))
    assert [(a.code, a.name, a.repaired) for a in areas] == [
        ("1", "One", False),
        ("2", "Two", False),
    ]
    for area in areas:
        assert isinstance(area.geometry, MultiPolygon)
        assert area.geometry.is_valid
    assert areas[0].geometry.equals(Polygon(SQUARE))
    assert len(areas[0].geometry.geoms) == 1


def test_invalid_ring_is_repaired_on_request(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        collection(feature(polygon(SQUARE), code="1"), feature(polygon(BOW_TIE), code="BT")),
    )
    square, bow_tie = read_geojson(path, repair=True)
    assert not square.repaired
    assert bow_tie.code == "BT"
    assert bow_tie.repaired
    assert isinstance(bow_tie.geometry, MultiPolygon)
    assert bow_tie.geometry.is_valid
    assert len(bow_tie.geometry.geoms) == 2
    assert bow_tie.geometry.area == pytest.approx(2e-4)


REFUSALS = {
    # name: (file content, words the message must contain)
    "self-intersecting": (
        collection(feature(polygon(SQUARE), code="1"), feature(polygon(BOW_TIE), code="BT")),
        ["feature 2", "BT", "invalid", "--repair"],
    ),
    "crs EPSG:3857": (
        collection(feature(polygon(SQUARE), code="1"), crs=named_crs("EPSG:3857")),
        ["EPSG:3857", "EPSG:4326"],
    ),
    "crs urn EPSG::3857": (
        collection(feature(polygon(SQUARE), code="1"), crs=named_crs("urn:ogc:def:crs:EPSG::3857")),
        ["urn:ogc:def:crs:EPSG::3857", "EPSG:4326"],
    ),
    "projected coordinates": (
        collection(feature(polygon(PROJECTED), code="1")),
        ["feature 1", "projected", "EPSG:4326"],
    ),
    "point": (
        collection(feature({"type": "Point", "coordinates": [-79.38, 43.65]}, code="1")),
        ["feature 1", "Point", "polygon"],
    ),
    "duplicate code": (
        collection(feature(polygon(SQUARE), code="7"), feature(polygon(SQUARE), code="7")),
        ["feature 2", "7", "twice"],
    ),
    "missing code": (
        collection(feature(polygon(SQUARE), name="Nameless")),
        ["feature 1", "no area code"],
    ),
    "no features": (collection(), ["no features"]),
    "not a collection": (feature(polygon(SQUARE), code="1"), ["FeatureCollection"]),
    "unreadable JSON": ('{"type": "FeatureCollection", "features": [', ["not a readable"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_boundary_file_is_refused(tmp_path: Path, case: str) -> None:
    document, words = REFUSALS[case]
    path = write(tmp_path, document)
    with pytest.raises(BoundaryError) as raised:
        read_geojson(path)
    message = str(raised.value)
    assert raised.value.status_code == 400
    for word in [path.name, *words]:
        assert word in message, (word, message)


# --- Versioned boundary sets --------------------------------------------------------------------

# Four big areas made of the 25 wards (by ward number).
GROUPS = {"A": range(1, 7), "B": range(7, 13), "C": range(13, 19), "D": range(19, 26)}


def group_of(ward_code: str) -> str:
    """The big area a 2018 ward belongs to."""
    return next(name for name, numbers in GROUPS.items() if int(ward_code) in numbers)


def four_areas_file(tmp_path: Path) -> Path:
    """Toronto's 25 wards merged into 4 areas, as a GeoJSON file."""
    wards = {a.code: a.geometry for a in shipped(TORONTO)}
    features = [
        feature(
            mapping(unary_union([wards[str(n)] for n in numbers])),
            code=name,
            name=f"Area {name}",
        )
        for name, numbers in GROUPS.items()
    ]
    return write(tmp_path, collection(*features))


async def toronto_sets(engine: AsyncEngine) -> list[tuple[int, str, str, bool, int]]:
    """(id, name, kind, current, area count) of Toronto's boundary sets."""
    async with engine.connect() as conn:
        return [
            (s.id, s.name, s.kind, s.current, s.areas)
            for s in await list_sets(conn)
            if s.jurisdiction == TORONTO
        ]


async def test_new_ward_set_is_current_and_requests_follow(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    engine = engine_of(client)
    await load_demo(engine, tolerance_m=TOLERANCE_M)
    async with engine.connect() as conn:
        old_id = await find_set(conn, TORONTO, WARD_MAPS[TORONTO][0])
        old_codes = await area_codes(conn, old_id)
    before = await stored_requests(engine)
    assert len(before) == 1000
    located = {pk for pk, (lat, _, _) in before.items() if lat is not None}
    assert len(located) == 996
    # The demo load gave every located request its 2018 ward.
    assert {pk: old_codes.get(ward) for pk, (_, _, ward) in before.items()} == wards_2018()

    areas = read_geojson(four_areas_file(tmp_path))
    assert [a.code for a in areas] == list(GROUPS)
    new_id = await import_boundary_set(
        engine, jurisdiction=TORONTO, name="toronto-4-areas", areas=areas, source="test"
    )
    assert await toronto_sets(engine) == [
        (old_id, WARD_MAPS[TORONTO][0], "ward", False, 25),
        (new_id, "toronto-4-areas", "ward", True, 4),
    ]

    processed, assigned = await reassign_wards(engine, TORONTO, tolerance_m=TOLERANCE_M)
    after = await stored_requests(engine)
    assert (processed, assigned) == (len(after), len(located)) == (1000, 996)
    async with engine.connect() as conn:
        new_codes = await area_codes(conn, new_id)
        index = await load_ward_index(conn, new_id)
    wrong = []
    for pk, (lat, lon, ward) in after.items():
        if pk not in located:
            expected = None
        else:
            assert lat is not None
            assert lon is not None
            hit = index.lookup(lat, lon, TOLERANCE_M)
            expected = hit.area_id if hit else None
            # The big area is the one made of the request's 2018 ward.
            assert ward in new_codes
            assert new_codes[ward] == group_of(old_codes[before[pk][2]])
        if ward != expected:
            wrong.append((pk, ward, expected))
    assert not wrong, wrong[:10]

    async with engine.begin() as conn:
        await set_current(conn, old_id)
    assert [current for _, _, _, current, _ in await toronto_sets(engine)] == [True, False]
    assert await reassign_wards(engine, TORONTO, tolerance_m=TOLERANCE_M) == (1000, 996)
    assert await stored_requests(engine) == before


async def test_set_name_is_unique_per_jurisdiction(client: httpx.AsyncClient) -> None:
    engine = engine_of(client)
    set_id, _ = await ward_map(engine, TORONTO)
    name = WARD_MAPS[TORONTO][0]
    sets = await toronto_sets(engine)
    with pytest.raises(BadRequest) as raised:
        await import_boundary_set(
            engine, jurisdiction=TORONTO, name=name, areas=shipped(TORONTO)[:2]
        )
    assert name in str(raised.value)
    assert "already exists" in str(raised.value)
    assert await toronto_sets(engine) == sets == [(set_id, name, "ward", True, 25)]
    # Another jurisdiction may use the same name.
    async with engine.begin() as conn:
        await upsert_jurisdiction(conn, {"jurisdiction_id": "example.org", "name": "Example"})
    other = await import_boundary_set(
        engine, jurisdiction="example.org", name=name, areas=shipped(TORONTO)[:2]
    )
    async with engine.connect() as conn:
        listed = {(s.id, s.jurisdiction, s.current, s.areas) for s in await list_sets(conn)}
    assert listed == {(set_id, TORONTO, True, 25), (other, "example.org", True, 2)}


async def test_unknown_jurisdiction_is_not_found(client: httpx.AsyncClient) -> None:
    engine = engine_of(client)
    with pytest.raises(NotFound) as raised:
        await import_boundary_set(
            engine, jurisdiction="nowhere.example", name="wards", areas=shipped(TORONTO)[:1]
        )
    assert "nowhere.example" in str(raised.value)
    assert raised.value.status_code == 404
    async with engine.connect() as conn:
        assert await list_sets(conn) == []
