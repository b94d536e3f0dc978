"""Insert service requests directly (for read-path tests that need exact timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.geo.points import point_expression
from app.store.tables import ServiceRequest

REQUEST = ServiceRequest.__table__


async def make_request(
    engine: AsyncEngine, jurisdiction_pk: int, service_type_pk: int, **overrides: Any
) -> int:
    """Store one request with sensible defaults; its id."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "jurisdiction_id": jurisdiction_pk,
        "service_type_id": service_type_pk,
        "status": "open",
        "requested_at": now,
        "updated_at": now,
        "created_at": now,
        "lat": 43.6534,
        "lon": -79.3841,
    }
    row.update(overrides)
    if engine.dialect.name == "postgresql" and row.get("lat") is not None:
        row["location"] = point_expression(row["lat"], row["lon"])
    async with engine.begin() as conn:
        return int(
            (await conn.execute(insert(REQUEST).values(row).returning(REQUEST.c.id))).scalar_one()
        )
