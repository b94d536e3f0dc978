"""The SQL of service requests that both stores share: the reads of GET requests and GET
requests/{id}, and the writes of the transactional POST path (SQLAlchemy Core, one statement
object per shape so that each is compiled once).

Reads select columns (never ORM objects) in the order of ``app.models.requests.RequestRow``;
reporter contact fields are selected only for a viewer allowed to see them, NULL otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.geo.points import point_expression
from app.geo.wards import WardIndex
from app.georeport.datetimes import format_w3c
from app.models.requests import NewRequest, RequestPage, RequestRead, RequestRow, WardRule
from app.store import where_sql
from app.store.base import WardIndexes
from app.store.engine import fetch_all, read_connection
from app.store.tables import Area, RequestToken, ServiceRequest, ServiceType
from app.store.ward_sql import ward_cte, ward_id_expression

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

AREA = Area.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
TOKEN = RequestToken.__table__

# ---------------------------------------------------------------------------------------
# Reads

_DATETIMES = ("requested_at", "updated_at", "expected_at")
_PUBLIC = {
    "id": REQUEST.c.id,
    "status": REQUEST.c.status,
    "status_notes": REQUEST.c.status_notes,
    "service_name": SERVICE.c.service_name,
    "service_code": SERVICE.c.service_code,
    "description": REQUEST.c.description,
    "agency_responsible": REQUEST.c.agency_responsible,
    "service_notice": REQUEST.c.service_notice,
    "requested_at": REQUEST.c.requested_at,
    "updated_at": REQUEST.c.updated_at,
    "expected_at": REQUEST.c.expected_at,
    "address": REQUEST.c.address,
    "address_id": REQUEST.c.address_id,
    "zipcode": REQUEST.c.zipcode,
    "lat": REQUEST.c.lat,
    "lon": REQUEST.c.lon,
    "media_url": REQUEST.c.media_url,
}
_EXTENSIONS = {
    "ward_code": AREA.c.code,
    "ward_name": AREA.c.name,
    "channel": REQUEST.c.channel,
    "first_contact_resolved": REQUEST.c.first_contact_resolved,
}
_PRIVATE = {
    "app_id": REQUEST.c.app_id,
    "email": REQUEST.c.email,
    "phone": REQUEST.c.phone,
    "first_name": REQUEST.c.first_name,
    "last_name": REQUEST.c.last_name,
    "device_id": REQUEST.c.device_id,
    "account_id": REQUEST.c.account_id,
}
assert (*_PUBLIC, *_EXTENSIONS, *_PRIVATE) == RequestRow._fields  # noqa: S101 - import-time check
_AT = tuple(RequestRow._fields.index(name) for name in _DATETIMES)
# The fields every read selects, first and in this order.
ALWAYS_SELECTED = tuple(_PUBLIC)
# Where the sort key (the keyset cursor of a full page) is on PostgreSQL: the last column.
SORT_KEY = -1


@dataclass(frozen=True, slots=True)
class ReadShape:
    """What changes the SQL of a read (every value is a bound parameter)."""

    postgres: bool
    sql_w3c: bool = True  # PostgreSQL renders the datetimes (``speed.sql_timestamps``)
    extensions: bool = False
    private: bool = False
    sandbox: bool = False
    by_id: bool = False  # GET requests/{id}
    # List filters: 0 absent, 1 one value (an equality the planner can use with the order of
    # an index), 2 several values (one array parameter: an array on PostgreSQL, a JSON array
    # on SQLite).
    ids: int = 0  # the service_request_id filter
    services: int = 0
    wards: int = 0
    statuses: int = 0
    start: bool = False
    end: bool = False
    updated_after: bool = False
    updated_before: bool = False
    by_update: bool = False  # newest updated first (sync clients), else newest requested
    cursor: bool = False
    offset: bool = False
    bbox: bool = False  # located in a box
    near: bool = False  # located within a circle
    text: int = 0  # q=: 1 the words, 2 the words or one of the services whose name holds them
    # bbox/near through the spatial index (SQLite: False when the box holds many requests:
    # the list's index is walked newest first with the exact test, see ``sqlite_spatial``).
    spatial_index: bool = True
    # q= through the full-text index's rows (SQLite: False for words many requests hold:
    # looked up along the list's index instead, see ``where_sql.matches``).
    text_index: bool = True


def _w3c_sql(column: Any) -> ColumnElement[str]:
    """PostgreSQL: ``YYYY-MM-DDThh:mm:ss±hh:mm`` of a timestamptz in the session's time zone,
    which the read sets to the jurisdiction's; exactly what ``format_w3c`` writes (whole
    seconds; NULL stays NULL)."""
    return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM', type_=String())


def _member(
    column: ColumnElement[Any], name: str, item_type: Any, postgres: bool, count: int
) -> ColumnElement[bool]:
    # One value: an equality. Several: one parameter (the same SQL for any number of values):
    # an array on PostgreSQL, a JSON array read by json_each on SQLite.
    if count == 1:
        return column == bindparam(name, type_=item_type)
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(item_type)))
    values = func.json_each(bindparam(name, type_=JSON())).table_valued("value")
    return column.in_(select(values.c.value))


@cache
def read_statement(shape: ReadShape) -> Select[Any]:
    """The SELECT of a read shape, built once (so compiled once), values bound by name.

    Its columns are those of a ``RequestRow`` without the trailing fields the read does not
    ask for (reporter fields, extensions), then (PostgreSQL) the sort key."""
    columns: list[Any] = []
    for name, column in _PUBLIC.items():
        if name in _DATETIMES and shape.postgres and shape.sql_w3c:
            # Datetimes rendered by PostgreSQL (C, not Python) in the session's zone, which
            # the read sets to the jurisdiction's.
            columns.append(_w3c_sql(column).label(name))
        else:
            columns.append(column)
    if shape.extensions:
        columns += [column.label(name) for name, column in _EXTENSIONS.items()]
    if shape.private:
        if not shape.extensions and not shape.postgres:
            # SQLite rows become RequestRows by position: the extensions' place is kept.
            columns += [null().label(name) for name in _EXTENSIONS]
        columns += [column.label(name) for name, column in _PRIVATE.items()]
    order = REQUEST.c.updated_at if shape.by_update else REQUEST.c.requested_at
    if shape.postgres:
        # The sort key as a timestamp (the selected datetimes are text there); SQLite's
        # rows carry it already, as stored.
        columns.append(order.label("sort_key"))
    query = select(*columns).join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
    if shape.extensions:
        query = query.outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id)
    query = query.where(REQUEST.c.jurisdiction_id == bindparam("jurisdiction", type_=Integer()))
    if shape.sandbox:
        query = query.where(
            REQUEST.c.sandbox.is_(True), REQUEST.c.app_id == bindparam("viewer_app")
        )
    else:
        query = query.where(REQUEST.c.sandbox.is_(False))
    if shape.by_id:
        return query.where(REQUEST.c.id == bindparam("request_id"))
    if shape.ids:
        query = query.where(_member(REQUEST.c.id, "ids", BigInteger(), shape.postgres, shape.ids))
    if shape.services:
        query = query.where(
            _member(
                REQUEST.c.service_type_id, "services", Integer(), shape.postgres, shape.services
            )
        )
    if shape.wards:
        query = query.where(
            REQUEST.c.ward_id.in_(
                select(AREA.c.id).where(
                    AREA.c.boundary_set_id == bindparam("ward_set", type_=Integer()),
                    _member(AREA.c.code, "ward_codes", String(), shape.postgres, shape.wards),
                )
            )
        )
    if shape.statuses:
        query = query.where(
            _member(REQUEST.c.status, "statuses", String(), shape.postgres, shape.statuses)
        )
    if shape.start:
        query = query.where(REQUEST.c.requested_at >= bindparam("start"))
    if shape.end:
        query = query.where(REQUEST.c.requested_at <= bindparam("end"))
    if shape.updated_after:
        query = query.where(REQUEST.c.updated_at >= bindparam("updated_after"))
    if shape.updated_before:
        query = query.where(REQUEST.c.updated_at <= bindparam("updated_before"))
    if shape.bbox:
        query = query.where(
            *where_sql.in_box(
                REQUEST, "bbox", postgres=shape.postgres, spatial_index=shape.spatial_index
            )
        )
    if shape.near:
        query = query.where(
            *where_sql.in_box(
                REQUEST, "near", postgres=shape.postgres, spatial_index=shape.spatial_index
            ),
            where_sql.in_circle(REQUEST, "near"),
        )
    if shape.text:
        query = query.where(
            where_sql.matches(
                REQUEST, shape.postgres, services=shape.text == 2, text_index=shape.text_index
            )
        )
    if shape.cursor:
        stamp = bindparam("cursor_at", type_=order.type)
        query = query.where(
            or_(
                order < stamp,
                and_(order == stamp, REQUEST.c.id < bindparam("cursor_id", type_=BigInteger())),
            )
        )
    query = query.order_by(order.desc(), REQUEST.c.id.desc()).limit(
        bindparam("limit", type_=Integer())
    )
    if shape.offset:
        query = query.offset(bindparam("offset", type_=Integer()))
    return query


def read_plan(
    read: RequestRead, *, postgres: bool, spatial_index: bool = True, text_index: bool = True
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement of a read and its parameters (``spatial_index``, ``text_index``: see
    ``ReadShape``).

    With ``read.zone``, PostgreSQL renders the datetimes (the caller sets the session time
    zone); the SQLite store renders them itself."""
    params: dict[str, Any] = {"jurisdiction": read.jurisdiction_pk}
    if read.sandbox:
        params["viewer_app"] = read.viewer_app
    shape: dict[str, Any] = {}
    if read.request_id is not None:
        shape["by_id"] = True
        params["request_id"] = read.request_id
    else:

        def member(name: str, values: tuple[Any, ...], param: str | None = None) -> None:
            shape[name] = 1 if len(values) == 1 else 2
            params[param or name] = values[0] if len(values) == 1 else list(values)

        if read.ids is not None:
            member("ids", read.ids)
        if read.service_pks is not None:
            member("services", read.service_pks)
        if read.ward_codes is not None:
            member("wards", read.ward_codes, "ward_codes")
            params["ward_set"] = read.ward_set
        if read.statuses is not None:
            member("statuses", read.statuses)
        for name in ("start", "end", "updated_after", "updated_before"):
            value = getattr(read, name)
            if value is not None:
                shape[name], params[name] = True, value
        shape["by_update"] = read.by_update
        if read.after is not None:
            shape["cursor"] = True
            params["cursor_at"], params["cursor_id"] = read.after
        if read.bbox is not None:
            shape["bbox"] = True
            params.update(where_sql.box_params("bbox", read.bbox))
        if read.near is not None and read.near_box is not None:
            shape["near"] = True
            params.update(where_sql.box_params("near", read.near_box))
            params.update(where_sql.circle_params("near", read.near))
        if read.text is not None:
            shape["text"] = 2 if read.text.service_pks else 1
            params.update(where_sql.text_params(read.text, postgres=postgres))
        params["limit"] = read.limit
        if read.offset:
            shape["offset"], params["offset"] = True, read.offset
    statement = read_statement(
        ReadShape(
            postgres=postgres,
            sql_w3c=read.zone is not None,
            extensions=read.extensions,
            private=read.private_app is not None,
            sandbox=read.sandbox,
            spatial_index=spatial_index,
            text_index=text_index,
            **shape,
        )
    )
    return statement, params


async def nearest(engine: AsyncEngine, read: RequestRead) -> list[tuple[int, float]]:
    """GET requests/nearby: the ids of the requests a read with ``near`` finds, nearest
    first (ties by id), with their haversine against its centre; at most ``read.limit``."""
    postgres = engine.dialect.name == "postgresql"
    statement, params = read_plan(read, postgres=postgres)
    haversine = where_sql.haversine_sql(REQUEST, "near")
    ranked = (
        statement.with_only_columns(REQUEST.c.id, haversine.label("haversine"))
        .order_by(None)
        .order_by(haversine, REQUEST.c.id)
    )
    async with read_connection(engine) as conn:
        rows = await fetch_all(conn, ranked, params)
    return [(int(pk), float(value)) for pk, value in rows]


def last_position(read: RequestRead, count: int, last: Any) -> tuple[datetime, int] | None:
    """The keyset position after a full page (``last``: its last row's (sort key, id))."""
    if read.request_id is not None or count < read.limit or count == 0:
        return None
    stamp, request_pk = last
    return stamp, int(request_pk)


async def read_with_sqlalchemy(
    engine: AsyncEngine, read: RequestRead, *, postgres: bool
) -> RequestPage:
    """A read run by SQLAlchemy (the library path, ``speed.direct_pool`` off): rows are
    SQLAlchemy rows, whose fields have ``RequestRow``'s names."""
    statement, params = read_plan(read, postgres=postgres)
    async with read_connection(engine) as conn:
        rows = await fetch_all(conn, statement, params, timezone=read.zone if postgres else None)
    if postgres:
        last = (rows[-1][SORT_KEY], rows[-1][0]) if rows else None
        page = cast(list[RequestRow], list(rows))
    else:
        # SQLite rows carry datetimes (the sort key among them): rendered here, in the zone.
        order = _AT[1] if read.by_update else _AT[0]
        last = (rows[-1][order], rows[-1][0]) if rows else None
        zone = ZoneInfo(read.zone) if read.zone is not None else None
        page = [_request_row(row, zone) for row in rows]
    return RequestPage(page, last_position(read, len(rows), last))


def _request_row(row: Any, zone: ZoneInfo | None) -> RequestRow:
    values = list(row)
    values += [None] * (len(RequestRow._fields) - len(values))
    if zone is not None:
        for index in _AT:
            if values[index] is not None:
                values[index] = format_w3c(values[index], zone)
    return RequestRow._make(values)


# ---------------------------------------------------------------------------------------
# Writes of the transactional POST path (and of the worker's queued submissions)


async def _index(
    rule: WardRule, ward_index: WardIndex | None, wards: WardIndexes | None
) -> WardIndex | None:
    if ward_index is None and wards is not None:
        return await wards.get(rule.set_id)
    return ward_index


async def insert_request(
    conn: AsyncConnection,
    new: NewRequest,
    ward_index: WardIndex | None = None,
    wards: WardIndexes | None = None,
) -> int | None:
    """Store a new request; its id, or None when its location is in no ward and the ward is
    required (nothing stored).

    A located request gets the ward of ``new.ward``'s set: on PostGIS inside the INSERT itself
    (no extra round trip; with a required ward, ``WITH ward AS (lookup) INSERT .. SELECT ..
    WHERE`` the ward exists), on SQLite from the in-process index (``ward_index``, else the
    set's from ``wards``; neither: no ward).
    """
    row: dict[str, Any] = new.columns()
    sub, rule = new.submission, new.ward
    statement = insert(REQUEST)
    if conn.dialect.name == "postgresql":
        if sub.lat is not None and sub.lon is not None:
            point = point_expression(sub.lat, sub.lon)
            row["location"] = point
            if rule is not None:
                row["ward_id"] = ward_id_expression(rule.set_id, point, sub.lat, rule.tolerance_m)
                if rule.required:
                    ward = ward_cte(row["ward_id"])
                    row["ward_id"] = ward.c.ward_id
                    guarded = (
                        select(
                            *[
                                v if isinstance(v, ColumnElement) else literal(v, REQUEST.c[k].type)
                                for k, v in row.items()
                            ]
                        )
                        .select_from(ward)
                        .where(ward.c.ward_id.is_not(None))
                    )
                    stored = statement.from_select(list(row), guarded).returning(REQUEST.c.id)
                    request_pk = (await conn.execute(stored)).scalar()
                    return None if request_pk is None else int(request_pk)
    elif rule is not None and sub.lat is not None and sub.lon is not None:
        index = await _index(rule, ward_index, wards)
        if index is not None:
            hit = index.lookup(sub.lat, sub.lon, rule.tolerance_m)
            if hit is None and rule.required:
                return None
            row["ward_id"] = hit.area_id if hit else None
    return int((await conn.execute(statement.values(row).returning(REQUEST.c.id))).scalar_one())


async def ward_of(
    conn: AsyncConnection,
    rule: WardRule,
    lat: float,
    lon: float,
    ward_index: WardIndex | None = None,
    wards: WardIndexes | None = None,
) -> int | None:
    """The ward (area id) of a point by ``rule``, or None: PostGIS in SQL, SQLite from the
    in-process index (``ward_index``, else the set's from ``wards``; neither: None)."""
    if conn.dialect.name == "postgresql":
        expression = ward_id_expression(
            rule.set_id, point_expression(lat, lon), lat, rule.tolerance_m
        )
        ward = (await conn.execute(select(expression))).scalar()
        return None if ward is None else int(ward)
    index = await _index(rule, ward_index, wards)
    hit = index.lookup(lat, lon, rule.tolerance_m) if index else None
    return hit.area_id if hit else None


async def point_token(conn: AsyncConnection, token: str, request_pk: int) -> None:
    """A queued submission's token now names its request."""
    await conn.execute(
        update(TOKEN).where(TOKEN.c.token == token).values(service_request_id=request_pk)
    )


async def insert_token(
    conn: AsyncConnection, token: str, jurisdiction_pk: int, request_pk: int, at: datetime
) -> None:
    """The token of a batch request."""
    await conn.execute(
        insert(TOKEN).values(
            token=token,
            jurisdiction_id=jurisdiction_pk,
            service_request_id=request_pk,
            created_at=at,
        )
    )
