"""Writing service catalogues: jurisdiction and service upserts, the services import.

Used by the demo loader, the federation's mirrors and ``open311 services import``; the files
they come from are read by ``app.domain.catalog_files``. Services are upserted by code, a
service's attributes replaced by those given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.catalog import read_services
from app.store.tables import Jurisdiction, ServiceAttribute, ServiceType
from app.store.tables.base import utcnow

JURISDICTION = Jurisdiction.__table__
SERVICE = ServiceType.__table__
ATTRIBUTE = ServiceAttribute.__table__
# Services written per statement batch of an import (the unit of its progress).
IMPORT_STEP = 20


async def upsert_jurisdiction(conn: AsyncConnection, data: dict[str, Any]) -> int:
    """Create or update a jurisdiction by its code; its primary key."""
    code = data["jurisdiction_id"]
    values = {
        "name": data["name"],
        "timezone": data.get("timezone", "UTC"),
        "contact": data.get("contact"),
        "key_service": data.get("key_service"),
        "updated_at": utcnow(),
    }
    pk = (await conn.execute(select(JURISDICTION.c.id).where(JURISDICTION.c.code == code))).scalar()
    if pk is None:
        return int(
            (
                await conn.execute(
                    insert(JURISDICTION)
                    .values(code=code, created_at=utcnow(), **values)
                    .returning(JURISDICTION.c.id)
                )
            ).scalar_one()
        )
    await conn.execute(update(JURISDICTION).where(JURISDICTION.c.id == pk).values(**values))
    return int(pk)


async def service_pks(conn: AsyncConnection, jurisdiction_pk: int) -> dict[str, int]:
    """Every service of a jurisdiction, active or not: code -> primary key."""
    rows = await conn.execute(
        select(SERVICE.c.service_code, SERVICE.c.id).where(
            SERVICE.c.jurisdiction_id == jurisdiction_pk
        )
    )
    return {str(code): int(pk) for code, pk in rows}


async def upsert_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: list[dict[str, Any]]
) -> dict[str, int]:
    """Create or update services by code, replacing their attributes; code -> primary key."""
    existing = await service_pks(conn, jurisdiction_pk)
    now = utcnow()
    pks: dict[str, int] = {}
    for service in services:
        code = str(service["service_code"])
        values = {
            "service_name": service["service_name"],
            "description": service.get("description"),
            "type": service.get("type", "realtime"),
            "keywords": service.get("keywords"),
            "group_name": service.get("group"),
            "agency_responsible": service.get("agency_responsible"),
            "service_notice": service.get("service_notice"),
            "active": True,
            "updated_at": now,
        }
        pk = existing.get(code)
        if pk is None:
            pk = (
                await conn.execute(
                    insert(SERVICE)
                    .values(
                        jurisdiction_id=jurisdiction_pk, service_code=code, created_at=now, **values
                    )
                    .returning(SERVICE.c.id)
                )
            ).scalar_one()
        else:
            await conn.execute(update(SERVICE).where(SERVICE.c.id == pk).values(**values))
            await conn.execute(delete(ATTRIBUTE).where(ATTRIBUTE.c.service_type_id == pk))
        attributes = [
            {
                "service_type_id": pk,
                "code": str(a["code"]),
                "variable": bool(a.get("variable", True)),
                "datatype": a["datatype"],
                "required": bool(a.get("required", False)),
                "datatype_description": a.get("datatype_description"),
                "position": int(a["order"]),
                "description": a.get("description") or "",
                "values": [{"key": str(v["key"]), "name": str(v["name"])} for v in a["values"]]
                if a.get("values")
                else None,
            }
            for a in service.get("attributes", [])
        ]
        if attributes:
            await conn.execute(insert(ATTRIBUTE), attributes)
        pks[code] = int(pk)
    return pks


async def import_services(
    engine: AsyncEngine,
    jurisdiction_pk: int,
    services: list[dict[str, Any]],
    *,
    keep_attributes: bool = False,
    progress: Callable[[int], object] | None = None,
) -> tuple[int, int]:
    """Create or update services by code in one transaction; ``(created, updated)``.

    ``keep_attributes`` (services read from CSV, which has no attributes): a stored service
    keeps its attributes. ``progress`` is called with the number of services written.
    """
    async with engine.begin() as conn:
        if keep_attributes:
            stored = {s.code: s for s in await read_services(conn, jurisdiction_pk, inactive=True)}
            for service in services:
                found = stored.get(str(service["service_code"]))
                if found is not None and found.attributes:
                    service["attributes"] = [a.entry() for a in found.attributes]
        existing = await service_pks(conn, jurisdiction_pk)
        updated = sum(str(s["service_code"]) in existing for s in services)
        for start in range(0, len(services), IMPORT_STEP):
            chunk = services[start : start + IMPORT_STEP]
            await upsert_services(conn, jurisdiction_pk, chunk)
            if progress is not None:
                progress(len(chunk))
    return len(services) - updated, updated
