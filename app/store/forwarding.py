"""Federation planning: the statements behind ``app.domain.forwarding``."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import FederationPartner, Jurisdiction

PARTNER = FederationPartner.__table__
JURISDICTION = Jurisdiction.__table__


async def remote_partner(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """The primary key and code of the remote jurisdiction with this code (any case)."""
    found = (
        await conn.execute(
            select(JURISDICTION.c.id, JURISDICTION.c.code)
            .join(PARTNER, PARTNER.c.jurisdiction_id == JURISDICTION.c.id)
            .where(
                func.lower(JURISDICTION.c.code) == code.strip().lower(),
                PARTNER.c.kind == "remote",
            )
        )
    ).first()
    return None if found is None else (int(found[0]), str(found[1]))
