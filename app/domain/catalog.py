"""The service catalogue: services and their definitions, cached in process.

``read_services`` is the one read of services with their attributes: the request handlers'
``Catalog``, the federation's mirrors and the CLI's services import all go through it.

A service in a division (``app.domain.divisions``) has the division's name as its
``agency_responsible``; its service levels are parsed once per read (``ServiceInfo.levels``),
so intake computes ``expected_datetime`` without parsing (``app.domain.service_promise``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.domain.service_levels import ServiceLevel, ServiceLevelError, parse_service_levels
from app.errors import ServiceNotFound
from app.georeport.models import LIST_DATATYPES
from app.store import catalog as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("open311.catalog")


@dataclass(frozen=True, slots=True)
class AttributeInfo:
    """One attribute of a service definition."""

    code: str
    variable: bool
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: tuple[tuple[str, str], ...] | None

    @property
    def keys(self) -> frozenset[str]:
        """Allowed keys of a list attribute."""
        return frozenset(k for k, _ in self.values or ())

    def wire(self) -> dict[str, Any]:
        """The GeoReport ``attribute`` item (``values`` only for list datatypes)."""
        out: dict[str, Any] = {
            "variable": self.variable,
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "datatype_description": self.datatype_description,
            "order": self.order,
            "description": self.description,
        }
        if self.datatype in LIST_DATATYPES:
            out["values"] = [{"key": k, "name": n} for k, n in self.values or ()]
        return out

    def entry(self) -> dict[str, Any]:
        """The attribute as a catalogue file has it (``upsert_services`` input)."""
        out = self.wire()
        values = self.values
        out["values"] = None if values is None else [{"key": k, "name": n} for k, n in values]
        return out


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service with its definition."""

    pk: int
    code: str
    name: str
    description: str | None
    type: str
    keywords: str | None
    group: str | None
    agency_responsible: str | None
    service_notice: str | None
    attributes: tuple[AttributeInfo, ...]
    # The division it belongs to (code), its targets (parsed, and as text), whether offered.
    division: str | None = None
    levels: tuple[ServiceLevel, ...] = ()
    service_levels: str | None = None
    active: bool = True

    @property
    def metadata(self) -> bool:
        """True when the service has a definition worth fetching."""
        return bool(self.attributes)

    def wire(self) -> dict[str, Any]:
        """The GeoReport ``service`` item."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "metadata": self.metadata,
            "type": self.type,
            "keywords": self.keywords,
            "group": self.group,
        }

    def definition(self) -> dict[str, Any]:
        """The GeoReport ``service_definition`` document."""
        return {
            "service_code": self.code,
            "attributes": [a.wire() for a in self.attributes],
        }

    def entry(self) -> dict[str, Any]:
        """The service as a catalogue file has it, attributes included (``upsert_services``
        input)."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "type": self.type,
            "keywords": self.keywords,
            "group": self.group,
            "agency_responsible": self.agency_responsible,
            "service_notice": self.service_notice,
            "division": self.division,
            "service_levels": self.service_levels,
            "attributes": [a.entry() for a in self.attributes],
        }


@dataclass(slots=True)
class Catalog:
    """All active services of one jurisdiction."""

    services: list[ServiceInfo] = field(default_factory=list)
    by_code: dict[str, ServiceInfo] = field(default_factory=dict)
    changed_at: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))

    def get(self, service_code: str) -> ServiceInfo:
        """The service with this code, or 404."""
        found = self.by_code.get(service_code)
        if found is None:
            raise ServiceNotFound(
                f"service_code {service_code!r} is not a service of this jurisdiction."
            )
        return found


class CatalogCache:
    """Per-jurisdiction catalogue, re-read after ``ttl`` seconds (operator edits are rare)."""

    def __init__(self, engine: AsyncEngine, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._entries: dict[int, tuple[float, Catalog]] = {}
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget every cached catalogue."""
        self._entries.clear()

    async def get(self, jurisdiction_pk: int) -> Catalog:
        """The catalogue of one jurisdiction."""
        entry = self._entries.get(jurisdiction_pk)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        async with self._lock:
            entry = self._entries.get(jurisdiction_pk)
            if entry is not None and time.monotonic() - entry[0] < self._ttl:
                return entry[1]
            catalog = await load_catalog(self._engine, jurisdiction_pk)
            self._entries[jurisdiction_pk] = (time.monotonic(), catalog)
            return catalog


async def read_services(
    conn: AsyncConnection, jurisdiction_pk: int, *, inactive: bool = False
) -> list[ServiceInfo]:
    """The active services of a jurisdiction (``inactive``: every one) with their
    attributes, ordered by code."""
    return [
        ServiceInfo(
            pk=record.pk,
            code=record.code,
            name=record.name,
            description=record.description,
            type=record.type,
            keywords=record.keywords,
            group=record.group,
            agency_responsible=record.division_name or record.agency_responsible,
            service_notice=record.service_notice,
            division=record.division_code,
            levels=_levels(record),
            service_levels=record.service_levels,
            active=record.active,
            attributes=tuple(
                AttributeInfo(
                    code=a.code,
                    variable=a.variable,
                    datatype=a.datatype,
                    required=a.required,
                    datatype_description=a.datatype_description,
                    order=a.order,
                    description=a.description,
                    values=a.values,
                )
                for a in record.attributes
            ),
        )
        for record in await store.read_services(conn, jurisdiction_pk, inactive=inactive)
    ]


def _levels(record: store.ServiceRecord) -> tuple[ServiceLevel, ...]:
    # Stored text was checked when written; an unreadable value (edited by hand) means no
    # target rather than a failing catalogue.
    try:
        return parse_service_levels(record.service_levels)
    except ServiceLevelError as exc:
        log.warning("service %s: stored service levels ignored: %s", record.code, exc)
        return ()


async def load_catalog(engine: AsyncEngine, jurisdiction_pk: int) -> Catalog:
    """Read the services and attributes of a jurisdiction."""
    async with engine.connect() as conn:
        services = await read_services(conn, jurisdiction_pk)
        changed_at = await store.services_changed_at(conn, jurisdiction_pk)
    catalog = Catalog(services, {info.code: info for info in services})
    if changed_at is not None:
        catalog.changed_at = changed_at
    return catalog
