"""Jurisdictions: the statements behind ``app.domain.jurisdictions``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select
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
        )
        for row in rows
    ]
