"""The PostgreSQL + PostGIS store: asyncpg, the one-statement POST, wards looked up in SQL.

The hot calls run compiled statements straight on asyncpg (``app.store.engine.Direct``), on
connections borrowed from SQLAlchemy's pool (the process's one pool): one round trip each, no
SQLAlchemy execution layer. A realtime POST is one ``WITH`` statement, sent
on an autocommit connection:

- ``take``: the API key's rate-limit token (refill and take, only while the key is active);
- ``ids``: the new request's id, drawn from its sequence up front so that the stored
  Idempotency-Key outcome can name it;
- ``ward``: the ward of the location (point in polygon, then the tolerance rule);
- ``claim`` (with an Idempotency-Key): the key's record with its final outcome,
  ``ON CONFLICT DO NOTHING``, only when a token was taken and the location is accepted;
- ``req``: the INSERT itself, only when all of the above hold.

All of it commits or none of it does. Concurrent POSTs with the same Idempotency-Key meet on
the record's primary key: the second waits for the first, finds the conflict and stores
nothing; the caller then replays the first one's outcome (a second round trip, for replays
only). Every other outcome (refused token, revoked key, location outside) is told apart by the
statement's one result row.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

import asyncpg
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.geo.points import point_expression
from app.models.requests import (
    IdempotencyClaim,
    NewRequest,
    RequestPage,
    RequestRead,
    RequestRow,
)
from app.settings import Settings
from app.store.base import Created, TokenBucket, WardIndexes
from app.store.engine import (
    Direct,
    autocommit_connection,
    make_engine,
    ping,
    write_transaction,
)
from app.store.keys import CANDIDATES, KeyCandidate, candidates
from app.store.ratelimit import TAKE, take_params
from app.store.requests import ALWAYS_SELECTED, REQUEST, SORT_KEY, last_position, read_plan
from app.store.tables import IdempotencyRecord
from app.store.ward_sql import ward_cte, ward_id_expression

RECORD = IdempotencyRecord.__table__


class RequestRecord(asyncpg.Record):
    """An asyncpg row of a request read, its fields by ``RequestRow``'s names (no copy).

    The columns a read always selects are read by position, the others (extensions, reporter
    fields) by name: a read selects them only when it asks for them."""


def _field(name: str, index: int | None) -> property:
    if index is not None:
        return property(itemgetter(index))
    return property(lambda record: record[name])


for _index, _name in enumerate(RequestRow._fields):
    setattr(RequestRecord, _name, _field(_name, _index if _name in ALWAYS_SELECTED else None))


def _cross(sources: list[Any]) -> Any:
    # Each CTE is one row (or none): their cross join, written as joins ON true.
    joined = sources[0]
    for source in sources[1:]:
        joined = joined.join(source, true())
    return joined


@dataclass(frozen=True, slots=True)
class Shape:
    """What changes the one statement's SQL (everything else is a parameter)."""

    located: bool
    ward: bool  # look the ward up (located, and the jurisdiction has a ward set)
    guarded: bool  # store nothing outside every ward
    idempotent: bool  # claim an Idempotency-Key
    tolerance_m: float
    columns: tuple[str, ...]  # of the new request, as NewRequest.columns gives them


@cache
def one_statement(shape: Shape) -> Select[Any]:
    """The one statement of a realtime POST of a shape, built once (so compiled once)."""
    take = TAKE.cte("take")
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


class PostgresStore:
    """The PostgreSQL + PostGIS store."""

    takes_rate_limit_token = True  # the realtime write takes it, in the same statement
    checks_key_on_write = True  # taking the token checks the key is active

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = make_engine(settings)
        self.direct = Direct(self.engine, settings)

    @property
    def statements(self) -> int:
        """Statements the hot calls sent straight to asyncpg."""
        return self.direct.statements

    async def ping(self) -> None:
        """One trivial statement."""
        await ping(self.engine)

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        await self.engine.dispose()

    def transaction(
        self, *, one_statement: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction; one atomic statement runs in autocommit (one round trip)."""
        if one_statement:
            return autocommit_connection(self.engine)
        return write_transaction(self.engine)

    async def read_requests(self, read: RequestRead) -> RequestPage:
        """GET requests or GET requests/{id}: one statement, datetimes rendered by PostgreSQL
        in the read's zone (the session time zone, set only when it changes)."""
        statement, params = read_plan(read, postgres=True)
        rows = await self.direct.fetch(
            statement,
            params,
            timezone=read.zone,
            record_class=RequestRecord,
            # A box or circle: planned with its values (see Direct.fetch).
            plan_per_call=read.bbox is not None or read.near is not None,
        )
        last = (rows[-1][SORT_KEY], rows[-1][0]) if rows else None
        return RequestPage(list(rows), last_position(read, len(rows), last))

    async def key_candidates(self, prefix: str) -> list[KeyCandidate]:
        """Every active key with this prefix: one statement straight to asyncpg."""
        return candidates(await self.direct.fetch(CANDIDATES, {"prefix": prefix}))

    async def create_request(
        self,
        new: NewRequest,
        *,
        claim: IdempotencyClaim | None,
        bucket: TokenBucket | None,
        wards: WardIndexes,
    ) -> Created:
        """Take the rate-limit token, claim the Idempotency-Key and store a realtime request,
        in one statement (``wards`` is not used: PostGIS looks the ward up in it)."""
        assert bucket is not None  # noqa: S101 - this store always takes the token itself
        sub = new.submission
        located = sub.lat is not None and sub.lon is not None
        row = new.columns()
        shape = Shape(
            located=located,
            ward=located and new.ward is not None,
            guarded=new.ward is not None and new.ward.required,
            idempotent=claim is not None,
            tolerance_m=new.ward.tolerance_m if new.ward is not None else 0.0,
            columns=tuple(row),
        )
        params: dict[str, Any] = {f"v_{name}": value for name, value in row.items()}
        params.update(take_params(bucket.key_id, bucket.per_minute))
        if located:
            params["p_lat"], params["p_lon"] = sub.lat, sub.lon
        if new.ward is not None and shape.ward:
            params["ward_set"] = new.ward.set_id
        if claim is not None:
            params["c_key"], params["c_hash"] = claim.key, claim.request_hash
            params["c_status"], params["c_key_id"] = claim.status_code, claim.api_key_id
            params["c_at"], params["c_notice"] = new.at, new.service_notice
            params["c_account"] = sub.account_id
        ((tokens, ward_id, request_pk, claimed),) = await self.direct.fetch(
            one_statement(shape), params
        )
        if tokens is None:
            return Created(refused=True)
        if request_pk is not None:
            return Created(request_pk=int(request_pk), tokens=float(tokens))
        if shape.ward and shape.guarded and ward_id is None:
            return Created(outside=True, tokens=float(tokens))
        # Nothing stored and the location accepted: the Idempotency-Key was claimed before.
        assert claim is not None  # noqa: S101 - invariant, not an input check
        assert claimed is None  # noqa: S101 - invariant, not an input check
        return Created(claimed_before=True, tokens=float(tokens))
