"""Writing service catalogues: jurisdiction and service upserts, the services import.

Used by the demo loader, the federation's mirrors and ``open311 services import``; the files
they come from are read by ``app.domain.catalog_files``. Services are upserted by code, a
service's attributes replaced by those given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.domain.catalog import read_services
from app.domain.catalog_translations import set_catalog_locale
from app.store import catalog as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Services written per statement batch of an import (the unit of its progress).
IMPORT_STEP = 20


async def upsert_jurisdiction(conn: AsyncConnection, data: dict[str, Any]) -> int:
    """Create or update a jurisdiction by its code; its primary key.

    ``locale`` (optional) is the language its services are written in (default: English;
    a catalogue without one leaves the stored language as it is)."""
    pk = await store.upsert_jurisdiction(
        conn,
        store.JurisdictionValues(
            code=data["jurisdiction_id"],
            name=data["name"],
            timezone=data.get("timezone", "UTC"),
            contact=data.get("contact"),
            key_service=data.get("key_service"),
        ),
    )
    if data.get("locale"):
        await set_catalog_locale(conn, pk, str(data["locale"]))
    return pk


async def service_pks(conn: AsyncConnection, jurisdiction_pk: int) -> dict[str, int]:
    """Every service of a jurisdiction, active or not: code -> primary key."""
    return await store.service_pks(conn, jurisdiction_pk)


def _attribute(a: dict[str, Any]) -> store.AttributeValues:
    return store.AttributeValues(
        code=str(a["code"]),
        variable=bool(a.get("variable", True)),
        datatype=a["datatype"],
        required=bool(a.get("required", False)),
        datatype_description=a.get("datatype_description"),
        order=int(a["order"]),
        description=a.get("description") or "",
        values=tuple((str(v["key"]), str(v["name"])) for v in a["values"])
        if a.get("values")
        else None,
    )


def _service(service: dict[str, Any]) -> store.ServiceValues:
    return store.ServiceValues(
        code=str(service["service_code"]),
        name=service["service_name"],
        description=service.get("description"),
        type=service.get("type", "realtime"),
        keywords=service.get("keywords"),
        group=service.get("group"),
        agency_responsible=service.get("agency_responsible"),
        service_notice=service.get("service_notice"),
        attributes=tuple(_attribute(a) for a in service.get("attributes", [])),
    )


async def upsert_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: list[dict[str, Any]]
) -> dict[str, int]:
    """Create or update services by code, replacing their attributes; code -> primary key."""
    return await store.upsert_services(conn, jurisdiction_pk, [_service(s) for s in services])


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
