"""Jurisdictions: the statements behind ``app.domain.jurisdictions``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import BoundarySet, FederationPartner, Jurisdiction
from app.store.tables.base import utcnow

JURISDICTION = Jurisdiction.__table__
BOUNDARY_SET = BoundarySet.__table__
PARTNER = FederationPartner.__table__


@dataclass(frozen=True, slots=True)
class JurisdictionRow:
    """A stored jurisdiction with its current ward set and its partner kind, if any."""

    pk: int
    code: str
    name: str
    timezone: str
    contact: str | None
    key_service: str | None
    accepts_outside: bool
    ward_set_id: int | None  # the current ward boundary set
    partner_kind: str | None  # remote | region (a federation_partner row), None: local
    business_calendar: dict[str, Any] | None = None  # its calendar's JSON form, if stored


async def find_jurisdiction(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """The primary key and stored spelling of a jurisdiction code (any case), or None."""
    found = (
        await conn.execute(
            select(JURISDICTION.c.id, JURISDICTION.c.code).where(
                func.lower(JURISDICTION.c.code) == code.strip().lower()
            )
        )
    ).first()
    return None if found is None else (int(found[0]), str(found[1]))


async def insert_jurisdiction(
    conn: AsyncConnection,
    *,
    code: str,
    name: str,
    timezone: str,
    contact: str | None,
    key_service: str | None,
    accepts_outside: bool,
) -> None:
    """Store a new jurisdiction."""
    now = utcnow()
    await conn.execute(
        insert(JURISDICTION).values(
            code=code,
            name=name,
            timezone=timezone,
            contact=contact,
            key_service=key_service,
            accepts_outside=accepts_outside,
            created_at=now,
            updated_at=now,
        )
    )


async def list_jurisdictions(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """Every jurisdiction's code, name and time zone, ordered by code."""
    rows = await conn.execute(
        select(JURISDICTION.c.code, JURISDICTION.c.name, JURISDICTION.c.timezone).order_by(
            JURISDICTION.c.code
        )
    )
    return [(str(code), str(name), str(tz)) for code, name, tz in rows]


async def load_jurisdictions(conn: AsyncConnection) -> list[JurisdictionRow]:
    """Every jurisdiction, with its current ward set and partner kind."""
    rows = (await conn.execute(select(JURISDICTION))).mappings().all()
    current = dict(
        (
            await conn.execute(
                select(BOUNDARY_SET.c.jurisdiction_id, BOUNDARY_SET.c.id).where(
                    BOUNDARY_SET.c.kind == "ward", BOUNDARY_SET.c.current.is_(True)
                )
            )
        ).all()
    )
    kinds = dict((await conn.execute(select(PARTNER.c.jurisdiction_id, PARTNER.c.kind))).all())
    return [
        JurisdictionRow(
            pk=row["id"],
            code=row["code"],
            name=row["name"],
            timezone=row["timezone"],
            contact=row["contact"],
            key_service=row["key_service"],
            accepts_outside=row["accepts_outside"],
            ward_set_id=current.get(row["id"]),
            partner_kind=kinds.get(row["id"]),
            business_calendar=row["business_calendar"],
        )
        for row in rows
    ]


async def business_calendar(conn: AsyncConnection, jurisdiction_pk: int) -> dict[str, Any] | None:
    """The stored business calendar of a jurisdiction (its JSON form), if any."""
    found: dict[str, Any] | None = (
        await conn.execute(
            select(JURISDICTION.c.business_calendar).where(JURISDICTION.c.id == jurisdiction_pk)
        )
    ).scalar()
    return found


async def set_business_calendar(
    conn: AsyncConnection, jurisdiction_pk: int, config: dict[str, Any] | None
) -> None:
    """Store a jurisdiction's business calendar (None: none stored)."""
    await conn.execute(
        update(JURISDICTION)
        .where(JURISDICTION.c.id == jurisdiction_pk)
        .values(business_calendar=config, updated_at=utcnow())
    )
