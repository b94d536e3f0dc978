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
from typing import Any

from sqlalchemy import ColumnElement, String, Text, cast, func, insert, literal, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain import ratelimit
from app.domain.api_keys import KeyInfo
from app.domain.catalog import ServiceInfo
from app.domain.idempotency import RECORD
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import REQUEST, Submission, request_row
from app.geo.points import point_expression
from app.geo.wards import ward_id_expression
from app.models.base import utcnow


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the statement did."""

    tokens: float | None  # tokens left after taking one; None: refused or revoked
    outside: bool  # the location is in no ward (and the jurisdiction refuses that)
    service_request_id: str | None  # the new request; None when nothing was stored
    claimed: bool  # the Idempotency-Key record was written (with the outcome)


def _values(row: dict[str, Any]) -> list[Any]:
    return [
        v if isinstance(v, ColumnElement) else literal(v, REQUEST.c[k].type) for k, v in row.items()
    ]


def _cross(sources: list[Any]) -> Any:
    # Each CTE is one row (or none): their cross join, written as joins ON true.
    joined = sources[0]
    for source in sources[1:]:
        joined = joined.join(source, true())
    return joined


async def submit_realtime(
    conn: AsyncConnection,
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
    realtime request, in one statement on an autocommit connection."""
    now = utcnow()
    take = ratelimit.take_statement(key.id, per_minute).cte("take")
    ids = select(func.nextval(func.pg_get_serial_sequence(REQUEST.name, "id")).label("id")).cte(
        "ids"
    )
    row = {"id": ids.c.id, **request_row(jurisdiction, service, sub, key, now)}
    conditions: list[ColumnElement[bool]] = [true()]
    sources: list[Any] = [ids, take]
    ward = None
    if sub.lat is not None and sub.lon is not None:
        point = point_expression(sub.lat, sub.lon)
        row["location"] = point
        if jurisdiction.ward_set_id is not None:
            expression = ward_id_expression(jurisdiction.ward_set_id, point, sub.lat, tolerance_m)
            ward = select(expression.label("ward_id")).cte("ward")
            row["ward_id"] = ward.c.ward_id
            sources.append(ward)
            if not jurisdiction.accepts_outside:
                conditions.append(ward.c.ward_id.is_not(None))
    claim = None
    if idempotency is not None:
        idem_key, request_hash, status = idempotency
        outcome = func.jsonb_build_object(
            "fields",
            func.jsonb_build_array(
                func.jsonb_build_array("service_request_id", cast(ids.c.id, Text)),
                func.jsonb_build_array("service_notice", literal(service.service_notice, String)),
                func.jsonb_build_array("account_id", literal(sub.account_id, String)),
            ),
        )
        claim = (
            pg_insert(RECORD)
            .from_select(
                ["api_key_id", "key", "request_hash", "created_at", "status_code", "response"],
                select(
                    literal(key.id),
                    literal(idem_key, String),
                    literal(request_hash, String),
                    literal(now, RECORD.c.created_at.type),
                    literal(status),
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
            list(row), select(*_values(row)).select_from(_cross(sources)).where(*conditions)
        )
        .returning(REQUEST.c.id)
        .cte("req")
    )
    statement = select(
        select(take.c.tokens).scalar_subquery(),
        select(ward.c.ward_id).scalar_subquery() if ward is not None else literal(None),
        select(stored.c.id).scalar_subquery(),
        select(claim.c.key).scalar_subquery() if claim is not None else literal(None, String),
    )
    tokens, ward_id, request_pk, claimed = (await conn.execute(statement)).one()
    outside = ward is not None and ward_id is None and not jurisdiction.accepts_outside
    return Attempt(
        float(tokens) if tokens is not None else None,
        outside,
        str(request_pk) if request_pk is not None else None,
        claimed is not None,
    )
