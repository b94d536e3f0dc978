"""The SQL of the where and text filters of GET requests (bbox, lat/long/radius, q) and of
GET requests/nearby, on both backends.

- A box: the spatial index picks the candidates (PostGIS: ``location && envelope`` on a GiST
  index: ``ix_service_request_where``, migration 0015, which also holds the list's service,
  status and dates, or the location's own; SQLite: the R*Tree ``service_request_rtree``,
  migration 0011), then the exact test on the stored ``lat``/``lon`` (the same comparison on
  both backends, so the same rows).
- A circle: the box around it as above, then the haversine of each candidate against the
  centre (the same expression on both backends, on the same sphere).
- Text: PostgreSQL full-text search (``simple`` configuration: lowercased words, no stemming)
  on the GIN expression index ``ix_service_request_search``; SQLite FTS5 (``unicode61``, no
  diacritics folding) on the external-content table ``service_request_fts``. Both split text
  into the same words for plain words; a query's words must all be in the request's
  description or address, or all in its service's name.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.geo.points import WGS84, haversine_limit
from app.models.requests import BoundingBox, Circle, TextQuery

# SQLite's virtual tables (migration 0011), kept in step with service_request by triggers.
RTREE = table(
    "service_request_rtree",
    column("id", Integer()),
    column("min_lon", Float()),
    column("max_lon", Float()),
    column("min_lat", Float()),
    column("max_lat", Float()),
)
FTS = table("service_request_fts", column("rowid", Integer()))
# The expression of PostgreSQL's GIN index (migration 0011): the query must repeat it.
SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, COALESCE(service_request.description, '') || ' ' || "
    "COALESCE(service_request.address, ''))"
)
# Objects the migrations create that the models do not describe (Alembic's drift check skips
# them): SQLite's virtual tables (and their shadow tables), PostgreSQL's expression index.
MIGRATION_ONLY_PREFIXES = ("service_request_rtree", "service_request_fts")
MIGRATION_ONLY_INDEXES = ("ix_service_request_search", "ix_service_request_where")


def _box(prefix: str) -> tuple[Any, Any, Any, Any]:
    return tuple(  # type: ignore[return-value]
        bindparam(f"{prefix}_{name}", type_=Float())
        for name in ("min_lon", "min_lat", "max_lon", "max_lat")
    )


def in_box(
    request: Table, prefix: str, *, postgres: bool, spatial_index: bool = True
) -> list[ColumnElement[bool]]:
    """Located in the box of parameters ``{prefix}_min_lon`` ..: the index's candidates, then
    the exact test on lat/lon. ``spatial_index`` False (SQLite, a box holding many requests):
    the exact test alone, on the rows the list's index gives newest first."""
    west, south, east, north = _box(prefix)
    exact: list[ColumnElement[bool]] = [
        request.c.lon.between(west, east),
        request.c.lat.between(south, north),
    ]
    if not spatial_index:
        return exact
    if postgres:
        envelope = func.ST_MakeEnvelope(west, south, east, north, WGS84)
        candidates = request.c.location.op("&&")(envelope)
    else:
        candidates = request.c.id.in_(
            select(RTREE.c.id).where(
                RTREE.c.max_lon >= west,
                RTREE.c.min_lon <= east,
                RTREE.c.max_lat >= south,
                RTREE.c.min_lat <= north,
            )
        )
    return [candidates, *exact]


# SQLite: how many R*Tree entries a box holds, counted up to a cap (the LIMIT): what
# ``dense_box`` weighs. Parameters: west, east, south, north, cap.
RTREE_COUNT_SQL = (
    "SELECT count(*) FROM (SELECT 1 FROM service_request_rtree WHERE max_lon >= ? AND "
    "min_lon <= ? AND max_lat >= ? AND min_lat <= ? LIMIT ?)"
)
# SQLite: how many requests the full-text index matches, counted up to a cap. Parameters: the
# FTS5 query (``text_params``' q_words), cap.
FTS_COUNT_SQL = (
    "SELECT count(*) FROM (SELECT 1 FROM service_request_fts WHERE service_request_fts "
    "MATCH ? LIMIT ?)"
)
# SQLite: the largest request id (O(log n)): the table's size, near enough.
TABLE_SIZE_SQL = "SELECT max(id) FROM service_request"


def dense_cap(rows_wanted: int, table_rows: int) -> int:
    """SQLite: the R*Tree (or full-text) count from which a box (or q's words) is *dense*:
    walking the list's index newest first with the exact test (or a look-up of the matches)
    then costs less than reading the candidates.

    A box holding k of the table's n requests gives a match about every n/k rows of the walk,
    so a page of p rows walks about p*n/k rows, against k candidates read (and looked up)
    through the R*Tree: the walk wins once k*k > p*n. The count stops at the cap, so weighing
    a box costs at most sqrt(p*n) R*Tree entries (about 14,000 for 1,000 rows of 200,000)."""
    return math.isqrt(max(rows_wanted, 1) * max(table_rows, 1)) + 1


def dense_text_cap(rows_wanted: int, table_rows: int) -> int:
    """SQLite: ``dense_cap`` for q='s words. Their matches are read from the full-text index
    either way (a rowid list); what differs is looking each up and sorting them (about six
    times a step of the list's index walk), so the walk wins from sqrt(p*n/6)."""
    return math.isqrt(max(rows_wanted, 1) * max(table_rows, 1) // 6) + 1


def haversine_sql(request: Table, prefix: str) -> ColumnElement[float]:
    """The haversine of a request's point against the centre of parameters ``{prefix}_lat``
    (radians), ``{prefix}_lon`` (radians) and ``{prefix}_cos`` (cosine of the centre's
    latitude): ``app.geo.points.haversine`` in SQL."""
    lat = func.radians(request.c.lat)
    a = func.sin((lat - bindparam(f"{prefix}_lat", type_=Float())) / 2)
    b = func.sin((func.radians(request.c.lon) - bindparam(f"{prefix}_lon", type_=Float())) / 2)
    value: ColumnElement[float] = (
        a * a + func.cos(lat) * bindparam(f"{prefix}_cos", type_=Float()) * b * b
    )
    return value


def in_circle(request: Table, prefix: str) -> ColumnElement[bool]:
    """Within the circle of parameters ``{prefix}_lat`` .. and ``{prefix}_limit``."""
    return haversine_sql(request, prefix) <= bindparam(f"{prefix}_limit", type_=Float())


def box_params(prefix: str, box: BoundingBox) -> dict[str, float]:
    """The parameters of ``in_box``."""
    return {
        f"{prefix}_min_lon": box.min_lon,
        f"{prefix}_min_lat": box.min_lat,
        f"{prefix}_max_lon": box.max_lon,
        f"{prefix}_max_lat": box.max_lat,
    }


def circle_params(prefix: str, circle: Circle) -> dict[str, float]:
    """The parameters of ``in_circle`` and ``haversine_sql``."""
    return {
        f"{prefix}_lat": math.radians(circle.lat),
        f"{prefix}_lon": math.radians(circle.lon),
        f"{prefix}_cos": math.cos(math.radians(circle.lat)),
        f"{prefix}_limit": haversine_limit(circle.radius_m),
    }


def matches(
    request: Table, postgres: bool, *, services: bool, text_index: bool = True
) -> ColumnElement[bool]:
    """q=: the words in the description or address (the full-text index), or (``services``)
    the request's service among those whose name holds them. ``text_index`` False (SQLite, a
    word many requests hold): the full-text matches are only looked up, row by row along the
    list's index newest first, never the rows read in their order (``id + 0`` is no rowid)."""
    if postgres:
        found: ColumnElement[bool] = literal_column(SEARCH_DOCUMENT).op("@@")(
            func.plainto_tsquery(
                literal_column("'simple'::regconfig"), bindparam("q_words", type_=String())
            )
        )
    else:
        found = (request.c.id if text_index else request.c.id + 0).in_(
            select(FTS.c.rowid).where(
                literal_column("service_request_fts").op("MATCH")(
                    bindparam("q_words", type_=String())
                )
            )
        )
    if not services:
        return found
    if postgres:
        named = request.c.service_type_id == any_(bindparam("q_services", type_=ARRAY(Integer())))
    else:
        values = func.json_each(bindparam("q_services", type_=JSON())).table_valued("value")
        named = request.c.service_type_id.in_(select(values.c.value))
    return or_(found, named)


def text_params(text: TextQuery, *, postgres: bool) -> dict[str, Any]:
    """The parameters of ``matches``: the words (PostgreSQL: for plainto_tsquery; SQLite: an
    FTS5 query of quoted words, all required), the services."""
    params: dict[str, Any] = {
        "q_words": " ".join(text.words)
        if postgres
        else " ".join(f'"{word}"' for word in text.words)
    }
    if text.service_pks:
        params["q_services"] = list(text.service_pks)
    return params
