"""Freshness of remote data: ``X-Federation-Synced-At`` on GET services/requests responses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.jurisdictions import JurisdictionInfo
from app.federation import partners
from app.georeport.datetimes import format_w3c

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SYNCED_AT = "X-Federation-Synced-At"


async def synced_headers(engine: AsyncEngine, jurisdiction: JurisdictionInfo) -> dict[str, str]:
    """For a remote or region jurisdiction: when its copy was last synced (W3C, or
    ``never``); nothing for a local one (no database round trip)."""
    if jurisdiction.kind == "local":
        return {}
    async with engine.connect() as conn:
        stamp = await partners.synced_at(conn, jurisdiction.pk)
    return {SYNCED_AT: format_w3c(stamp, jurisdiction.tz) if stamp is not None else "never"}
