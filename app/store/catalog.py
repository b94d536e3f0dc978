"""The service catalogue in the database: jurisdictions, services and their attributes.

``app.domain.catalog`` reads through here (and caches), ``app.domain.catalog_import`` writes
through here; both keep their decisions (defaults of a catalogue entry, what an import keeps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import Division, Jurisdiction, ServiceAttribute, ServiceType
from app.store.tables.base import utcnow

DIVISION = Division.__table__
JURISDICTION = Jurisdiction.__table__
SERVICE = ServiceType.__table__
ATTRIBUTE = ServiceAttribute.__table__


@dataclass(frozen=True, slots=True)
class AttributeRecord:
    """One attribute of a service definition, as stored or as a catalogue writes it."""

    code: str
    variable: bool
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    # (key, name) pairs of a list datatype; None otherwise.
    values: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True, slots=True)
class JurisdictionValues:
    """The fields of a jurisdiction a catalogue sets."""

    code: str
    name: str
    timezone: str
    contact: str | None
    key_service: str | None


@dataclass(frozen=True, slots=True)
class ServiceValues:
    """A service as written, with the attributes that replace its stored ones."""

    code: str
    name: str
    description: str | None
    type: str
    keywords: str | None
    group: str | None
    agency_responsible: str | None
    service_notice: str | None
    attributes: tuple[AttributeRecord, ...]


@dataclass(frozen=True, slots=True)
class ServiceRecord(ServiceValues):
    """One stored service: its values with its attributes (in their order), its primary key,
    the division it belongs to (code, name), its targets' text, whether it is offered."""

    pk: int
    division_code: str | None = None
    division_name: str | None = None
    service_levels: str | None = None
    active: bool = True


async def read_services(
    conn: AsyncConnection, jurisdiction_pk: int, *, inactive: bool = False
) -> list[ServiceRecord]:
    """The active services of a jurisdiction (``inactive``: every one) with their
    attributes, ordered by code."""
    which = SERVICE.c.jurisdiction_id == jurisdiction_pk
    if not inactive:
        which = which & SERVICE.c.active.is_(True)
    services = (
        (
            await conn.execute(
                select(
                    SERVICE,
                    DIVISION.c.code.label("division_code"),
                    DIVISION.c.name.label("division_name"),
                )
                .outerjoin(DIVISION, DIVISION.c.id == SERVICE.c.division_id)
                .where(which)
                .order_by(SERVICE.c.service_code)
            )
        )
        .mappings()
        .all()
    )
    attributes = (
        (
            await conn.execute(
                select(ATTRIBUTE)
                .join(SERVICE, SERVICE.c.id == ATTRIBUTE.c.service_type_id)
                .where(which)
                .order_by(ATTRIBUTE.c.service_type_id, ATTRIBUTE.c.position)
            )
        )
        .mappings()
        .all()
    )
    by_service: dict[int, list[AttributeRecord]] = {}
    for row in attributes:
        values = row["values"]
        by_service.setdefault(row["service_type_id"], []).append(
            AttributeRecord(
                code=row["code"],
                variable=row["variable"],
                datatype=row["datatype"],
                required=row["required"],
                datatype_description=row["datatype_description"],
                order=row["position"],
                description=row["description"],
                values=tuple((str(v["key"]), str(v["name"])) for v in values)
                if values is not None
                else None,
            )
        )
    return [
        ServiceRecord(
            pk=row["id"],
            code=row["service_code"],
            name=row["service_name"],
            description=row["description"],
            type=row["type"],
            keywords=row["keywords"],
            group=row["group_name"],
            agency_responsible=row["agency_responsible"],
            service_notice=row["service_notice"],
            attributes=tuple(by_service.get(row["id"], ())),
            division_code=row["division_code"],
            division_name=row["division_name"],
            service_levels=row["service_levels"],
            active=bool(row["active"]),
        )
        for row in services
    ]


async def services_changed_at(conn: AsyncConnection, jurisdiction_pk: int) -> datetime | None:
    """When a service of the jurisdiction last changed (aware, UTC), if it has any."""
    changed_at: datetime | None = (
        await conn.execute(
            select(func.max(SERVICE.c.updated_at)).where(
                SERVICE.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).scalar()
    if changed_at is not None and changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    return changed_at


async def jurisdiction_pk(
    conn: AsyncConnection, code: str, *, ignore_case: bool = False
) -> int | None:
    """The primary key of a jurisdiction code (``ignore_case``: compared in lower case)."""
    which = (
        func.lower(JURISDICTION.c.code) == code.lower()
        if ignore_case
        else JURISDICTION.c.code == code
    )
    pk = (await conn.execute(select(JURISDICTION.c.id).where(which))).scalar()
    return int(pk) if pk is not None else None


async def upsert_jurisdiction(conn: AsyncConnection, values: JurisdictionValues) -> int:
    """Create or update a jurisdiction by its code; its primary key."""
    fields = {
        "name": values.name,
        "timezone": values.timezone,
        "contact": values.contact,
        "key_service": values.key_service,
        "updated_at": utcnow(),
    }
    pk = await jurisdiction_pk(conn, values.code)
    if pk is None:
        return int(
            (
                await conn.execute(
                    insert(JURISDICTION)
                    .values(code=values.code, created_at=utcnow(), **fields)
                    .returning(JURISDICTION.c.id)
                )
            ).scalar_one()
        )
    await conn.execute(update(JURISDICTION).where(JURISDICTION.c.id == pk).values(**fields))
    return pk


async def service_pks(conn: AsyncConnection, jurisdiction_pk: int) -> dict[str, int]:
    """Every service of a jurisdiction, active or not: code -> primary key."""
    rows = await conn.execute(
        select(SERVICE.c.service_code, SERVICE.c.id).where(
            SERVICE.c.jurisdiction_id == jurisdiction_pk
        )
    )
    return {str(code): int(pk) for code, pk in rows}


def _attribute_row(service_pk: int, attribute: AttributeRecord) -> dict[str, Any]:
    values = attribute.values
    return {
        "service_type_id": service_pk,
        "code": attribute.code,
        "variable": attribute.variable,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "datatype_description": attribute.datatype_description,
        "position": attribute.order,
        "description": attribute.description,
        "values": [{"key": k, "name": n} for k, n in values] if values is not None else None,
    }


async def upsert_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: Sequence[ServiceValues]
) -> dict[str, int]:
    """Create or update services by code (made active), replacing their attributes;
    code -> primary key."""
    existing = await service_pks(conn, jurisdiction_pk)
    now = utcnow()
    pks: dict[str, int] = {}
    for service in services:
        fields = {
            "service_name": service.name,
            "description": service.description,
            "type": service.type,
            "keywords": service.keywords,
            "group_name": service.group,
            "agency_responsible": service.agency_responsible,
            "service_notice": service.service_notice,
            "active": True,
            "updated_at": now,
        }
        pk = existing.get(service.code)
        if pk is None:
            pk = (
                await conn.execute(
                    insert(SERVICE)
                    .values(
                        jurisdiction_id=jurisdiction_pk,
                        service_code=service.code,
                        created_at=now,
                        **fields,
                    )
                    .returning(SERVICE.c.id)
                )
            ).scalar_one()
        else:
            await conn.execute(update(SERVICE).where(SERVICE.c.id == pk).values(**fields))
            await conn.execute(delete(ATTRIBUTE).where(ATTRIBUTE.c.service_type_id == pk))
        if service.attributes:
            await conn.execute(
                insert(ATTRIBUTE), [_attribute_row(pk, a) for a in service.attributes]
            )
        pks[service.code] = int(pk)
    return pks


async def set_service_division(
    conn: AsyncConnection, service_pk: int, division_pk: int | None
) -> None:
    """Put a service in a division (None: in none)."""
    await conn.execute(
        update(SERVICE)
        .where(SERVICE.c.id == service_pk)
        .values(division_id=division_pk, updated_at=utcnow())
    )


async def set_service_levels(conn: AsyncConnection, service_pk: int, levels: str | None) -> None:
    """Set a service's targets (canonical text; None: none)."""
    await conn.execute(
        update(SERVICE)
        .where(SERVICE.c.id == service_pk)
        .values(service_levels=levels, updated_at=utcnow())
    )


async def deactivate_services(conn: AsyncConnection, service_pks: Sequence[int]) -> None:
    """Stop offering services (they leave GET services; their requests are kept)."""
    if service_pks:
        await conn.execute(
            update(SERVICE)
            .where(SERVICE.c.id.in_(list(service_pks)))
            .values(active=False, updated_at=utcnow())
        )
