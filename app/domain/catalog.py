"""The service catalogue: services and their definitions, cached in process, in the
languages it is offered in.

``read_services`` is the one read of services with their attributes: the request handlers'
``Catalog``, the federation's mirrors and the CLI's services import all go through it.

A catalogue is written in one language (its ``locale``, English unless the jurisdiction's
catalogue says otherwise) and may have translations into others (``open311 translations
import``). ``Catalog.view(locale)`` is the catalogue in one of them: each text from the most
specific translation that has it (``fr-CA``, then ``fr``), else as written
(:func:`app.domain.i18n.fallbacks`). Views are made once per catalogue and language.

``Catalog.digest`` is a hash of everything the catalogue's documents are made of, computed
once when the catalogue is read; ``Catalog.memo`` keeps values derived from that content (the
API keeps the entity tags of its documents there, see ``app.api.caching``). A catalogue read
again with the same digest keeps the memo of the one it replaces.

A service in a division (``app.domain.divisions``) has the division's name as its
``agency_responsible``; its service levels are parsed once per read (``ServiceInfo.levels``),
so intake computes ``expected_datetime`` without parsing (``app.domain.service_promise``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.domain.i18n import fallbacks, negotiate
from app.domain.records import extend, field_values
from app.domain.service_levels import ServiceLevel, ServiceLevelError, parse_service_levels
from app.errors import ServiceNotFound
from app.georeport.models import LIST_DATATYPES
from app.messages import Text
from app.store import catalog as store
from app.store import translations as translations_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("open311.catalog")


@dataclass(frozen=True, slots=True)
class AttributeInfo(store.AttributeRecord):
    """One attribute of a service definition (the stored record's fields) and its wire form."""

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
class ServiceInfo(store.ServiceValues):
    """A service with its definition (the stored values' fields; a service in a division has
    the division's name as its ``agency_responsible``)."""

    attributes: tuple[AttributeInfo, ...]
    pk: int
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


# The language of a catalogue that does not name one.
DEFAULT_LOCALE = "en"

# (service_code, attribute_code, value_key, field) -> text, of one language.
Texts = Mapping[tuple[str, str, str, str], str]


def _attribute_in(attribute: AttributeInfo, service_code: str, texts: Texts) -> AttributeInfo:
    def text(name: str, value_key: str, written: str) -> str:
        return texts.get((service_code, attribute.code, value_key, name), written)

    described = attribute.datatype_description
    return replace(
        attribute,
        description=text("description", "", attribute.description),
        datatype_description=text("datatype_description", "", described)
        if described is not None
        else texts.get((service_code, attribute.code, "", "datatype_description")),
        values=tuple((key, text("name", key, name)) for key, name in attribute.values)
        if attribute.values is not None
        else None,
    )


def _service_in(service: ServiceInfo, texts: Texts) -> ServiceInfo:
    code = service.code

    def text(name: str, written: str | None) -> str | None:
        return texts.get((code, "", "", name), written)

    return replace(
        service,
        name=texts.get((code, "", "", "service_name"), service.name),
        description=text("description", service.description),
        keywords=text("keywords", service.keywords),
        group=text("group", service.group),
        attributes=tuple(_attribute_in(a, code, texts) for a in service.attributes),
    )


@dataclass(frozen=True, slots=True)
class CatalogView:
    """A catalogue in one language."""

    locale: str
    services: list[ServiceInfo]
    by_code: dict[str, ServiceInfo]

    def get(self, service_code: str) -> ServiceInfo:
        """The service with this code, or 404."""
        found = self.by_code.get(service_code)
        if found is None:
            raise ServiceNotFound(
                Text(
                    "service_code {code!r} is not a service of this jurisdiction.",
                    code=service_code,
                )
            )
        return found


@dataclass(slots=True)
class Catalog:
    """All active services of one jurisdiction, in the language they are written in
    (``locale``), with their translations."""

    services: list[ServiceInfo] = field(default_factory=list)
    by_code: dict[str, ServiceInfo] = field(default_factory=dict)
    changed_at: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))
    locale: str = DEFAULT_LOCALE
    # language -> its texts
    translations: dict[str, dict[tuple[str, str, str, str], str]] = field(default_factory=dict)
    digest: str = ""
    # Values derived from the content, for the API (app.api.caching keeps its rendered
    # documents here, bounded): kept while the digest is.
    memo: object = field(default=None, repr=False)
    _views: dict[str, CatalogView] = field(default_factory=dict, repr=False)

    @property
    def locales(self) -> tuple[str, ...]:
        """The languages on offer: the catalogue's own first, then those with translations."""
        return (self.locale, *sorted(t for t in self.translations if t != self.locale))

    def negotiate(self, preferred: tuple[str, ...]) -> str:
        """The language of the catalogue an answer to a caller preferring ``preferred`` is
        in (its own when none of them is on offer)."""
        return negotiate(preferred, self.locales, self.locale)

    def view(self, locale: str) -> CatalogView:
        """The catalogue in ``locale`` (one of ``locales``; made once)."""
        found = self._views.get(locale)
        if found is not None:
            return found
        chain = [t for t in fallbacks(locale, self.locales) if t != self.locale]
        if chain:
            texts: dict[tuple[str, str, str, str], str] = {}
            for tag in reversed(chain):
                texts.update(self.translations[tag])
            services = [_service_in(s, texts) for s in self.services]
            view = CatalogView(locale, services, {s.code: s for s in services})
        else:
            view = CatalogView(locale, self.services, self.by_code)
        if locale in self.locales:  # bounded: one view per language on offer
            self._views[locale] = view
        return view

    def get(self, service_code: str) -> ServiceInfo:
        """The service with this code (as written), or 404."""
        return self.view(self.locale).get(service_code)


def catalog_digest(
    services: list[ServiceInfo],
    locale: str,
    translations: Mapping[str, Mapping[tuple[str, str, str, str], str]],
) -> str:
    """A hash of everything a catalogue's documents are made of (see the module docstring)."""
    content = repr(
        (
            locale,
            [s.entry() for s in services],
            sorted((tag, sorted(texts.items())) for tag, texts in translations.items()),
        )
    )
    return hashlib.blake2b(content.encode("utf-8"), digest_size=12).hexdigest()


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
            if entry is not None and entry[1].digest == catalog.digest:
                catalog.memo = entry[1].memo
            self._entries[jurisdiction_pk] = (time.monotonic(), catalog)
            return catalog


async def read_services(
    conn: AsyncConnection, jurisdiction_pk: int, *, inactive: bool = False
) -> list[ServiceInfo]:
    """The active services of a jurisdiction (``inactive``: every one) with their
    attributes, ordered by code."""
    return [
        _service(record)
        for record in await store.read_services(conn, jurisdiction_pk, inactive=inactive)
    ]


def _service(record: store.ServiceRecord) -> ServiceInfo:
    values = field_values(record, store.ServiceValues)
    values.update(
        agency_responsible=record.division_name or record.agency_responsible,
        attributes=tuple(extend(AttributeInfo, a) for a in record.attributes),
    )
    return ServiceInfo(
        **values,
        pk=record.pk,
        division=record.division_code,
        levels=_levels(record),
        service_levels=record.service_levels,
        active=record.active,
    )


def _levels(record: store.ServiceRecord) -> tuple[ServiceLevel, ...]:
    # Stored text was checked when written; an unreadable value (edited by hand) means no
    # target rather than a failing catalogue.
    try:
        return parse_service_levels(record.service_levels)
    except ServiceLevelError as exc:
        log.warning("service %s: stored service levels ignored: %s", record.code, exc)
        return ()


async def load_catalog(engine: AsyncEngine, jurisdiction_pk: int) -> Catalog:
    """Read the services and attributes of a jurisdiction, with their translations."""
    async with engine.connect() as conn:
        services = await read_services(conn, jurisdiction_pk)
        changed_at = await store.services_changed_at(conn, jurisdiction_pk)
        locales = await translations_store.read_locales(conn, jurisdiction_pk)
        texts = await translations_store.read_translations(conn, jurisdiction_pk)
    own = next((r.locale for r in locales if r.is_default), DEFAULT_LOCALE)
    translations: dict[str, dict[tuple[str, str, str, str], str]] = {}
    for record in texts:
        key = record.key
        if key.locale != own:
            translations.setdefault(key.locale, {})[
                (key.service_code, key.attribute_code, key.value_key, key.field)
            ] = record.text
    catalog = Catalog(
        services,
        {info.code: info for info in services},
        locale=own,
        translations=translations,
        digest=catalog_digest(services, own, translations),
    )
    stamps = [t for t in (changed_at, *(r.updated_at for r in locales)) if t is not None]
    if stamps:
        catalog.changed_at = max(stamps)
    return catalog
