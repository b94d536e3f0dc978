"""Divisions and service moves: the statements behind ``app.domain.divisions``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import Division, ServiceMove, ServiceType
from app.store.tables.base import utcnow

DIVISION = Division.__table__
MOVE = ServiceMove.__table__
SERVICE = ServiceType.__table__


@dataclass(frozen=True, slots=True)
class DivisionRow:
    """A stored division with the number of services (active or not) in it."""

    pk: int
    code: str
    name: str
    contact: str | None
    services: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MoveRow:
    """A recorded move of a service between divisions."""

    id: int
    service_code: str
    from_code: str | None
    from_name: str | None
    to_code: str | None
    to_name: str | None
    moved_by: str
    reason: str | None
    moved_at: datetime


def _row(r: Any) -> DivisionRow:
    return DivisionRow(
        pk=int(r[0]),
        code=r[1],
        name=r[2],
        contact=r[3],
        services=int(r[4] or 0),
        created_at=r[5],
        updated_at=r[6],
    )


def _select(jurisdiction_pk: int) -> Select[Any]:
    services = (
        select(func.count(SERVICE.c.id))
        .where(SERVICE.c.division_id == DIVISION.c.id)
        .scalar_subquery()
    )
    return select(
        DIVISION.c.id,
        DIVISION.c.code,
        DIVISION.c.name,
        DIVISION.c.contact,
        services,
        DIVISION.c.created_at,
        DIVISION.c.updated_at,
    ).where(DIVISION.c.jurisdiction_id == jurisdiction_pk)


async def list_divisions(conn: AsyncConnection, jurisdiction_pk: int) -> list[DivisionRow]:
    """Every division of a jurisdiction, by code."""
    rows = await conn.execute(_select(jurisdiction_pk).order_by(DIVISION.c.code))
    return [_row(r) for r in rows]


async def find_division(
    conn: AsyncConnection, jurisdiction_pk: int, code: str
) -> DivisionRow | None:
    """The division of a jurisdiction with this code (stored in lower case), or None."""
    row = (
        await conn.execute(_select(jurisdiction_pk).where(DIVISION.c.code == code.lower()))
    ).first()
    return None if row is None else _row(row)


async def division_named(conn: AsyncConnection, jurisdiction_pk: int, name: str) -> str | None:
    """The code of the jurisdiction's division with this name (any case), or None."""
    found = (
        await conn.execute(
            select(DIVISION.c.code).where(
                DIVISION.c.jurisdiction_id == jurisdiction_pk,
                func.lower(DIVISION.c.name) == name.lower(),
            )
        )
    ).scalar()
    return None if found is None else str(found)


async def insert_division(
    conn: AsyncConnection, jurisdiction_pk: int, *, code: str, name: str, contact: str | None
) -> int | None:
    """Store a new division; its primary key, or None when its code or name is taken (by a
    concurrent writer: callers check first)."""
    now = utcnow()
    try:
        async with conn.begin_nested():
            pk = (
                await conn.execute(
                    insert(DIVISION)
                    .values(
                        jurisdiction_id=jurisdiction_pk,
                        code=code,
                        name=name,
                        contact=contact,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(DIVISION.c.id)
                )
            ).scalar_one()
    except IntegrityError:
        return None
    return int(pk)


async def update_division(
    conn: AsyncConnection, division_pk: int, *, name: str, contact: str | None
) -> bool:
    """Set a division's name and contact; False when the name is taken (by a concurrent
    writer: callers check first)."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                update(DIVISION)
                .where(DIVISION.c.id == division_pk)
                .values(name=name, contact=contact, updated_at=utcnow())
            )
    except IntegrityError:
        return False
    return True


async def delete_division(conn: AsyncConnection, division_pk: int) -> None:
    """Delete a division (it holds no service)."""
    await conn.execute(delete(DIVISION).where(DIVISION.c.id == division_pk))


async def touch_services(conn: AsyncConnection, division_pk: int) -> None:
    """Mark the division's services changed (their agency_responsible follows its name)."""
    await conn.execute(
        update(SERVICE).where(SERVICE.c.division_id == division_pk).values(updated_at=utcnow())
    )


async def insert_move(
    conn: AsyncConnection,
    *,
    jurisdiction_pk: int,
    service_pk: int,
    source: DivisionRow | None,
    target: DivisionRow | None,
    moved_by: str,
    reason: str | None,
    moved_at: datetime,
) -> int:
    """Record a move of a service; its id."""
    pk = (
        await conn.execute(
            insert(MOVE)
            .values(
                jurisdiction_id=jurisdiction_pk,
                service_type_id=service_pk,
                from_code=source.code if source else None,
                from_name=source.name if source else None,
                to_code=target.code if target else None,
                to_name=target.name if target else None,
                moved_by=moved_by,
                reason=reason,
                moved_at=moved_at,
            )
            .returning(MOVE.c.id)
        )
    ).scalar_one()
    return int(pk)


async def list_moves(
    conn: AsyncConnection, jurisdiction_pk: int, *, service_pk: int | None, limit: int
) -> list[MoveRow]:
    """Recorded moves of a jurisdiction's services (or of one), newest first."""
    query = (
        select(
            MOVE.c.id,
            SERVICE.c.service_code,
            MOVE.c.from_code,
            MOVE.c.from_name,
            MOVE.c.to_code,
            MOVE.c.to_name,
            MOVE.c.moved_by,
            MOVE.c.reason,
            MOVE.c.moved_at,
        )
        .join(SERVICE, SERVICE.c.id == MOVE.c.service_type_id)
        .where(MOVE.c.jurisdiction_id == jurisdiction_pk)
        .order_by(MOVE.c.moved_at.desc(), MOVE.c.id.desc())
        .limit(limit)
    )
    if service_pk is not None:
        query = query.where(MOVE.c.service_type_id == service_pk)
    return [
        MoveRow(
            id=int(r[0]),
            service_code=r[1],
            from_code=r[2],
            from_name=r[3],
            to_code=r[4],
            to_name=r[5],
            moved_by=r[6],
            reason=r[7],
            moved_at=r[8],
        )
        for r in await conn.execute(query)
    ]


async def service_division(conn: AsyncConnection, service_pk: int) -> str | None:
    """The code of the division a service is in, or None."""
    found = (
        await conn.execute(
            select(DIVISION.c.code)
            .join(SERVICE, SERVICE.c.division_id == DIVISION.c.id)
            .where(SERVICE.c.id == service_pk)
        )
    ).scalar()
    return None if found is None else str(found)
