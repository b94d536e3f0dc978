"""POST requests of a realtime service on PostgreSQL in one statement (one round trip).

Everything a submission needs from the database is one ``WITH`` statement, sent on an
autocommit connection:

- ``take``: the API key's rate-limit token (refill and take, only while the key is active);
- ``ids``: the new request's id, drawn from its sequence up front so that the stored
  Idempotency-Key outcome can name it;
- ``ward``: the ward of the location (point in polygon, then the tolerance rule);
- ``claim`` (with an Idempotency-Key): the key's record with its final outcome,
  ``ON CONFLICT DO NOTHING``, only when a token was taken and the location is accepted;
- ``req``: the INSERT itself, only when all of the above hold.

All of it commits or none of it does. Concurrent POSTs with the same Idempotency-Key meet on
the record's primary key: the second waits for the first, finds the conflict and stores
nothing; the caller then reads the first one's outcome (a second round trip, for replays
only). Every other outcome (refused token, revoked key, location outside) is told apart by the
statement's one result row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain import ratelimit
from app.domain.api_keys import KeyInfo
from app.domain.catalog import ServiceInfo
from app.domain.idempotency import RECORD
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import REQUEST, Submission, request_row
from app.geo.points import point_expression
from app.store.engine import Direct, fetch_all
from app.store.tables.base import utcnow
from app.store.ward_sql import ward_cte, ward_id_expression


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the statement did."""

    tokens: float | None  # tokens left after taking one; None: refused or revoked
    outside: bool  # the location is in no ward (and the jurisdiction refuses that)
    service_request_id: str | None  # the new request; None when nothing was stored
    claimed: bool  # the Idempotency-Key record was written (with the outcome)


def _cross(sources: list[Any]) -> Any:
    # Each CTE is one row (or none): their cross join, written as joins ON true.
    joined = sources[0]
    for source in sources[1:]:
        joined = joined.join(source, true())
    return joined


@dataclass(frozen=True, slots=True)
class Shape:
    """What changes the statement's SQL (everything else is a parameter)."""

    located: bool
    ward: bool  # look the ward up (located, and the jurisdiction has a ward set)
    guarded: bool  # store nothing outside every ward
    idempotent: bool  # claim an Idempotency-Key
    tolerance_m: float
    columns: tuple[str, ...]  # of the new request, as request_row gives them


@cache
def statement(shape: Shape) -> Select[Any]:
    """The one statement of a shape, built once (so compiled once by SQLAlchemy)."""
    take = ratelimit.TAKE.cte("take")
    ids = select(func.nextval(func.pg_get_serial_sequence(REQUEST.name, "id")).label("id")).cte(
        "ids"
    )
    row: dict[str, Any] = {"id": ids.c.id}
    row.update({name: bindparam(f"v_{name}", type_=REQUEST.c[name].type) for name in shape.columns})
    conditions: list[ColumnElement[bool]] = [true()]
    sources: list[Any] = [ids, take]
    ward = None
    if shape.located:
        lat = bindparam("p_lat", type_=Float())
        point = point_expression(lat, bindparam("p_lon", type_=Float()))
        row["location"] = point
        if shape.ward:
            set_id = bindparam("ward_set", type_=Integer())
            ward = ward_cte(ward_id_expression(set_id, point, lat, shape.tolerance_m))
            row["ward_id"] = ward.c.ward_id
            sources.append(ward)
            if shape.guarded:
                conditions.append(ward.c.ward_id.is_not(None))
    claim = None
    if shape.idempotent:
        outcome = func.jsonb_build_object(
            "fields",
            func.jsonb_build_array(
                func.jsonb_build_array("service_request_id", cast(ids.c.id, Text)),
                func.jsonb_build_array("service_notice", bindparam("c_notice", type_=String())),
                func.jsonb_build_array("account_id", bindparam("c_account", type_=String())),
            ),
        )
        claim = (
            pg_insert(RECORD)
            .from_select(
                ["api_key_id", "key", "request_hash", "created_at", "status_code", "response"],
                select(
                    bindparam("c_key_id", type_=Integer()),
                    bindparam("c_key", type_=String()),
                    bindparam("c_hash", type_=String()),
                    bindparam("c_at", type_=RECORD.c.created_at.type),
                    bindparam("c_status", type_=Integer()),
                    outcome,
                )
                .select_from(_cross(sources))
                .where(*conditions),
            )
            .on_conflict_do_nothing()
            .returning(RECORD.c.key)
            .cte("claim")
        )
        sources.append(claim)
    stored = (
        insert(REQUEST)
        .from_select(
            list(row), select(*row.values()).select_from(_cross(sources)).where(*conditions)
        )
        .returning(REQUEST.c.id)
        .cte("req")
    )
    return select(
        select(take.c.tokens).scalar_subquery(),
        select(ward.c.ward_id).scalar_subquery() if ward is not None else literal(None, Integer()),
        select(stored.c.id).scalar_subquery(),
        select(claim.c.key).scalar_subquery() if claim is not None else literal(None, String()),
    )


async def submit_realtime(
    source: AsyncConnection | Direct,
    *,
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    sub: Submission,
    key: KeyInfo,
    per_minute: int,
    tolerance_m: float,
    idempotency: tuple[str, str, int] | None,
) -> Attempt:
    """Take a token, claim the Idempotency-Key (``(key, request hash, status)``) and store a
    realtime request, in one statement (``Direct``, or an autocommit connection)."""
    now = utcnow()
    located = sub.lat is not None and sub.lon is not None
    row = request_row(jurisdiction, service, sub, key, now)
    shape = Shape(
        located=located,
        ward=located and jurisdiction.ward_set_id is not None,
        guarded=not jurisdiction.accepts_outside,
        idempotent=idempotency is not None,
        tolerance_m=tolerance_m,
        columns=tuple(row),
    )
    params: dict[str, Any] = {f"v_{name}": value for name, value in row.items()}
    params.update(ratelimit.take_params(key.id, per_minute))
    if located:
        params["p_lat"], params["p_lon"] = sub.lat, sub.lon
    if shape.ward:
        params["ward_set"] = jurisdiction.ward_set_id
    if idempotency is not None:
        params["c_key"], params["c_hash"], params["c_status"] = idempotency
        params["c_key_id"], params["c_at"] = key.id, now
        params["c_notice"], params["c_account"] = service.service_notice, sub.account_id
    ((tokens, ward_id, request_pk, claimed),) = await fetch_all(source, statement(shape), params)
    return Attempt(
        float(tokens) if tokens is not None else None,
        shape.ward and shape.guarded and ward_id is None,
        str(request_pk) if request_pk is not None else None,
        claimed is not None,
    )
