"""Address points by jurisdiction: stored, replaced, counted and read back (the embedded
geocoder's input)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.geo.address_points import AddressRecord
from app.store.tables import AddressPoint

ADDRESS_POINT = AddressPoint.__table__
# Rows per INSERT: well under SQLite's 32,766 bound parameters (4 per row).
BATCH = 5000


@dataclass(frozen=True, slots=True)
class AddressPointsVersion:
    """What a jurisdiction's address points are, in short: how many and the newest row id
    (an import adds rows with new ids, a replacement removes the old ones)."""

    count: int
    last_id: int


async def delete_address_points(conn: AsyncConnection, jurisdiction_pk: int) -> int:
    """Remove every address point of the jurisdiction; how many."""
    result = await conn.execute(
        delete(ADDRESS_POINT).where(ADDRESS_POINT.c.jurisdiction_id == jurisdiction_pk)
    )
    return int(result.rowcount or 0)


async def insert_address_points(
    conn: AsyncConnection, jurisdiction_pk: int, records: Sequence[AddressRecord]
) -> int:
    """Add address points to the jurisdiction's, in batches; how many."""
    for start in range(0, len(records), BATCH):
        rows = [
            {"jurisdiction_id": jurisdiction_pk, "address": r.address, "lat": r.lat, "lon": r.lon}
            for r in records[start : start + BATCH]
        ]
        await conn.execute(insert(ADDRESS_POINT), rows)
    return len(records)


async def address_points_version(
    conn: AsyncConnection, jurisdiction_pk: int
) -> AddressPointsVersion:
    """The version of the jurisdiction's address points (one indexed aggregate)."""
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.max(ADDRESS_POINT.c.id), 0)).where(
                ADDRESS_POINT.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).one()
    return AddressPointsVersion(int(row[0]), int(row[1]))


async def load_address_points(conn: AsyncConnection, jurisdiction_pk: int) -> list[AddressRecord]:
    """Every address point of the jurisdiction, in import order."""
    result = await conn.execute(
        select(ADDRESS_POINT.c.address, ADDRESS_POINT.c.lat, ADDRESS_POINT.c.lon)
        .where(ADDRESS_POINT.c.jurisdiction_id == jurisdiction_pk)
        .order_by(ADDRESS_POINT.c.id)
    )
    return [AddressRecord(row[0], float(row[1]), float(row[2])) for row in result]
