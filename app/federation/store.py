"""Federation tables: partners, mirrored services, synced request copies, health, listing.

Synced copies are ordinary ``service_request`` rows of the remote jurisdiction, so GET
requests, requests/{id} and tokens work unchanged; ``federation_request`` maps each of our ids
(stable, assigned by us) to the partner's id (unique per jurisdiction). Partner services no
longer listed are deactivated, never deleted (requests refer to them); a synced request whose
service code is not in the partner's list gets an inactive service row of its own.

Health: every partner call outcome is recorded on the partner row. A success resets
``consecutive_failures`` and closes the circuit; a failure counts up and, at
``federation.breaker_failures``, opens the circuit for ``federation.breaker_reset_s``. Status:
``unknown`` (never contacted), ``ok``, ``degraded`` (the last call failed, or the last refresh
was partial), ``down`` (circuit open / failures at the threshold). A region's status is derived
from its partners.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.boundaries import PARTNER_SET_KIND, AreaInput, import_boundary_set
from app.domain.catalog_import import service_pks, upsert_jurisdiction, upsert_services
from app.domain.jurisdictions import find_jurisdiction
from app.errors import BadRequest, NotFound
from app.federation.client import PartnerConfig
from app.geo.points import point_expression
from app.georeport.datetimes import format_w3c
from app.settings import FederationSettings
from app.store.engine import write_transaction
from app.store.tables import (
    BoundarySet,
    FederationPartner,
    FederationRequest,
    Jurisdiction,
    ServiceRequest,
    ServiceType,
)
from app.store.tables.base import utcnow

PARTNER = FederationPartner.__table__
MAPPING = FederationRequest.__table__
JURISDICTION = Jurisdiction.__table__
SERVICE = ServiceType.__table__
REQUEST = ServiceRequest.__table__
BOUNDARY_SET = BoundarySet.__table__
FORMATS = ("json", "xml")


@dataclass(frozen=True, slots=True)
class PartnerState:
    """A partner row with its jurisdiction."""

    config: PartnerConfig
    kind: str
    name: str
    status: str
    consecutive_failures: int
    breaker_open_until: datetime | None
    last_refresh_at: datetime | None
    last_synced_at: datetime | None
    last_error: str | None


# ---------------------------------------------------------------------------------------
# Configuration (CLI)


async def _upsert(
    conn: AsyncConnection, code: str, name: str, timezone: str, values: dict[str, Any]
) -> int:
    ZoneInfo(timezone)  # a bad zone fails here, before anything is stored
    found = await find_jurisdiction(conn, code)
    if found is not None:
        partner = (
            await conn.execute(select(PARTNER.c.kind).where(PARTNER.c.jurisdiction_id == found[0]))
        ).scalar()
        if partner is None:
            raise BadRequest(f"{found[1]} is a local jurisdiction; it cannot become a partner.")
        code = found[1]
    pk = await upsert_jurisdiction(
        conn, {"jurisdiction_id": code, "name": name, "timezone": timezone}
    )
    exists = (
        await conn.execute(select(PARTNER.c.kind).where(PARTNER.c.jurisdiction_id == pk))
    ).scalar()
    if exists is None:
        await conn.execute(
            insert(PARTNER).values(
                jurisdiction_id=pk,
                status="unknown",
                consecutive_failures=0,
                created_at=utcnow(),
                **values,
            )
        )
    else:
        await conn.execute(update(PARTNER).where(PARTNER.c.jurisdiction_id == pk).values(**values))
    return pk


async def add_remote(
    engine: AsyncEngine,
    *,
    code: str,
    name: str,
    url: str,
    fmt: str = "json",
    partner_key: str | None = None,
    partner_jurisdiction: str | None = None,
    timezone: str = "UTC",
) -> int:
    """Create or update a remote jurisdiction backed by a partner's endpoint; its pk."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise BadRequest("format must be json or xml.")
    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise BadRequest("url must be the partner's http(s) GeoReport v2 base URL.")
    async with write_transaction(engine) as conn:
        return await _upsert(
            conn,
            code,
            name,
            timezone,
            {
                "kind": "remote",
                "base_url": base,
                "format": fmt,
                "partner_api_key": partner_key or None,
                "partner_jurisdiction_id": partner_jurisdiction or None,
            },
        )


async def add_region(
    engine: AsyncEngine,
    *,
    code: str,
    name: str,
    areas: list[AreaInput] | None = None,
    timezone: str = "UTC",
) -> int:
    """Create or update a region; ``areas`` (codes = remote jurisdiction codes) become its
    current partner boundary set."""
    async with write_transaction(engine) as conn:
        pk = await _upsert(conn, code, name, timezone, {"kind": "region"})
        region_code = (
            await conn.execute(select(JURISDICTION.c.code).where(JURISDICTION.c.id == pk))
        ).scalar_one()
        if areas:
            remotes = {
                row[0].lower(): row[0]
                for row in await conn.execute(
                    select(JURISDICTION.c.code)
                    .join(PARTNER, PARTNER.c.jurisdiction_id == JURISDICTION.c.id)
                    .where(PARTNER.c.kind == "remote")
                )
            }
            unknown = [a.code for a in areas if a.code.lower() not in remotes]
            if unknown:
                raise BadRequest(
                    "Partner boundaries must be coded with remote jurisdiction ids; unknown: "
                    + ", ".join(sorted(set(unknown))[:10])
                )
            for area in areas:
                area.code = remotes[area.code.lower()]
    if areas:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        await import_boundary_set(
            engine,
            jurisdiction=region_code,
            name=f"partners-{stamp}",
            areas=areas,
            kind=PARTNER_SET_KIND,
            make_current=True,
            source="federation add-region",
        )
    return pk


# ---------------------------------------------------------------------------------------
# Reading partners


async def load_partners(
    conn: AsyncConnection, code: str | None = None, kind: str | None = None
) -> list[PartnerState]:
    """Partner rows (optionally one code or one kind), ordered by code."""
    query = (
        select(
            PARTNER,
            JURISDICTION.c.code,
            JURISDICTION.c.name,
            JURISDICTION.c.timezone,
        )
        .join(JURISDICTION, JURISDICTION.c.id == PARTNER.c.jurisdiction_id)
        .order_by(JURISDICTION.c.code)
    )
    if code is not None:
        query = query.where(func.lower(JURISDICTION.c.code) == code.strip().lower())
    if kind is not None:
        query = query.where(PARTNER.c.kind == kind)
    rows = (await conn.execute(query)).mappings().all()
    return [
        PartnerState(
            config=PartnerConfig(
                pk=row["jurisdiction_id"],
                code=row["code"],
                base_url=row["base_url"] or "",
                fmt=row["format"],
                api_key=row["partner_api_key"],
                partner_jurisdiction_id=row["partner_jurisdiction_id"],
                tz=ZoneInfo(row["timezone"]),
            ),
            kind=row["kind"],
            name=row["name"],
            status=row["status"],
            consecutive_failures=row["consecutive_failures"],
            breaker_open_until=row["breaker_open_until"],
            last_refresh_at=row["last_refresh_at"],
            last_synced_at=row["last_synced_at"],
            last_error=row["last_error"],
        )
        for row in rows
    ]


async def region_partners(conn: AsyncConnection, region_pk: int) -> list[str]:
    """Codes of the partners in a region's current partner boundary set."""
    from app.store.tables import Area

    area = Area.__table__
    rows = await conn.execute(
        select(area.c.code)
        .join(BOUNDARY_SET, BOUNDARY_SET.c.id == area.c.boundary_set_id)
        .where(
            BOUNDARY_SET.c.jurisdiction_id == region_pk,
            BOUNDARY_SET.c.kind == PARTNER_SET_KIND,
            BOUNDARY_SET.c.current.is_(True),
        )
        .order_by(area.c.code)
    )
    return list(dict.fromkeys(r[0] for r in rows))


# ---------------------------------------------------------------------------------------
# Health and the circuit breaker


def breaker_open(state: PartnerState, now: datetime) -> float | None:
    """Seconds until the circuit half-opens, or None when a call may be tried."""
    until = state.breaker_open_until
    if until is None or now >= until:
        return None
    return (until - now).total_seconds()


async def record_success(
    engine: AsyncEngine,
    pk: int,
    *,
    refreshed: bool = False,
    synced: bool = False,
    warning: str | None = None,
) -> None:
    """A partner call succeeded: close the circuit; a refresh also stamps its times."""
    now = utcnow()
    values: dict[str, Any] = {
        "consecutive_failures": 0,
        "breaker_open_until": None,
        "status": "degraded" if warning else "ok",
    }
    if refreshed:
        values["last_refresh_at"] = now
    if synced:
        values["last_synced_at"] = now
    if warning:
        values.update(last_error=warning[:2000], last_error_at=now)
    async with write_transaction(engine) as conn:
        await conn.execute(update(PARTNER).where(PARTNER.c.jurisdiction_id == pk).values(**values))


async def claim_refresh(engine: AsyncEngine, pk: int, seen: datetime | None) -> bool:
    """Claim a partner's due refresh: stamp ``last_refresh_at`` if it is still ``seen``.

    A conditional UPDATE, so of several worker loops that found the partner due exactly one
    wins (on PostgreSQL the row lock makes the others re-check and miss; SQLite writes one at a
    time). The refresh stamps the time again when it ends.
    """
    column = PARTNER.c.last_refresh_at
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(PARTNER)
            .where(
                PARTNER.c.jurisdiction_id == pk,
                column.is_(None) if seen is None else column == seen,
            )
            .values(last_refresh_at=utcnow())
        )
    return result.rowcount == 1


async def record_failure(
    engine: AsyncEngine,
    pk: int,
    error: str,
    settings: FederationSettings,
    *,
    refreshed: bool = False,
) -> None:
    """A partner call failed: count it, open the circuit at the threshold."""
    now = utcnow()
    async with write_transaction(engine) as conn:
        failures = (
            await conn.execute(
                update(PARTNER)
                .where(PARTNER.c.jurisdiction_id == pk)
                .values(consecutive_failures=PARTNER.c.consecutive_failures + 1)
                .returning(PARTNER.c.consecutive_failures)
            )
        ).scalar_one()
        down = failures >= settings.breaker_failures
        values: dict[str, Any] = {
            "status": "down" if down else "degraded",
            "last_error": error[:2000],
            "last_error_at": now,
        }
        if down:
            values["breaker_open_until"] = now + timedelta(seconds=settings.breaker_reset_s)
        if refreshed:
            values["last_refresh_at"] = now
        await conn.execute(update(PARTNER).where(PARTNER.c.jurisdiction_id == pk).values(**values))


# ---------------------------------------------------------------------------------------
# Mirrored services


async def mirror_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: list[dict[str, Any]]
) -> dict[str, int]:
    """Make the jurisdiction's active services exactly ``services`` (others deactivated)."""
    pks = await upsert_services(conn, jurisdiction_pk, services)
    await conn.execute(
        update(SERVICE)
        .where(SERVICE.c.jurisdiction_id == jurisdiction_pk, SERVICE.c.id.not_in(pks.values()))
        .values(active=False, updated_at=utcnow())
    )
    return pks


# ---------------------------------------------------------------------------------------
# Synced request copies


async def _service_pks(
    conn: AsyncConnection, jurisdiction_pk: int, items: list[dict[str, Any]]
) -> dict[str, int]:
    known = await service_pks(conn, jurisdiction_pk)
    now = utcnow()
    for item in items:
        code = item["service_code"]
        if code in known:
            continue
        # A code the partner's list does not show (retired, or named differently): an inactive
        # service row keeps the request readable without offering the service.
        known[code] = (
            await conn.execute(
                insert(SERVICE)
                .values(
                    jurisdiction_id=jurisdiction_pk,
                    service_code=code,
                    service_name=item["service_name"],
                    type="realtime",
                    active=False,
                    created_at=now,
                    updated_at=now,
                )
                .returning(SERVICE.c.id)
            )
        ).scalar_one()
    return known


SYNCED_FIELDS = (
    "status",
    "status_notes",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_at",
    "updated_at",
    "expected_at",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "lon",
    "media_url",
)


async def upsert_requests(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    items: list[dict[str, Any]],
    *,
    postgis: bool,
    chunk: int = 500,
) -> tuple[dict[str, int], int, int]:
    """Store or refresh synced copies; ``(partner id -> our id, added, updated)``."""
    ids: dict[str, int] = {}
    added = updated = 0
    now = utcnow()
    unique = list({item["partner_request_id"]: item for item in items}.values())
    for start in range(0, len(unique), chunk):
        part = unique[start : start + chunk]
        services = await _service_pks(conn, jurisdiction_pk, part)
        existing = dict(
            (
                await conn.execute(
                    select(MAPPING.c.partner_request_id, MAPPING.c.service_request_id).where(
                        MAPPING.c.jurisdiction_id == jurisdiction_pk,
                        MAPPING.c.partner_request_id.in_([i["partner_request_id"] for i in part]),
                    )
                )
            ).all()
        )
        fresh = [i for i in part if i["partner_request_id"] not in existing]
        old = [i for i in part if i["partner_request_id"] in existing]
        touched: list[int] = []
        if fresh:
            rows = []
            for item in fresh:
                row = {name: item[name] for name in SYNCED_FIELDS}
                row["requested_at"] = row["requested_at"] or now
                row["updated_at"] = row["updated_at"] or row["requested_at"]
                row.update(
                    jurisdiction_id=jurisdiction_pk,
                    service_type_id=services[item["service_code"]],
                    created_at=now,
                    sandbox=False,
                )
                rows.append(row)
            new_ids = (
                (
                    await conn.execute(
                        insert(REQUEST).returning(REQUEST.c.id, sort_by_parameter_order=True), rows
                    )
                )
                .scalars()
                .all()
            )
            await conn.execute(
                insert(MAPPING),
                [
                    {
                        "service_request_id": pk,
                        "jurisdiction_id": jurisdiction_pk,
                        "partner_request_id": item["partner_request_id"],
                        "synced_at": now,
                    }
                    for pk, item in zip(new_ids, fresh, strict=True)
                ],
            )
            for pk, item in zip(new_ids, fresh, strict=True):
                ids[item["partner_request_id"]] = int(pk)
            touched += new_ids
            added += len(fresh)
        if old:
            params = []
            for item in old:
                row = {f"v_{name}": item[name] for name in SYNCED_FIELDS}
                row["v_requested_at"] = row["v_requested_at"] or now
                row["v_updated_at"] = row["v_updated_at"] or row["v_requested_at"]
                row["v_service_type_id"] = services[item["service_code"]]
                row["k_id"] = existing[item["partner_request_id"]]
                params.append(row)
                ids[item["partner_request_id"]] = int(existing[item["partner_request_id"]])
            await conn.execute(
                update(REQUEST)
                .where(REQUEST.c.id == bindparam("k_id"))
                .values(
                    {name: bindparam(f"v_{name}") for name in (*SYNCED_FIELDS, "service_type_id")}
                ),
                params,
            )
            await conn.execute(
                update(MAPPING)
                .where(
                    MAPPING.c.jurisdiction_id == jurisdiction_pk,
                    MAPPING.c.partner_request_id.in_([i["partner_request_id"] for i in old]),
                )
                .values(synced_at=now)
            )
            touched += [existing[i["partner_request_id"]] for i in old]
            updated += len(old)
        if postgis and touched:
            await conn.execute(
                update(REQUEST)
                .where(REQUEST.c.id.in_(touched))
                .values(location=point_expression(REQUEST.c.lat, REQUEST.c.lon))
            )
    return ids, added, updated


# ---------------------------------------------------------------------------------------
# Listing


def region_status(statuses: list[str]) -> str:
    """A region's status from its partners' statuses."""
    if not statuses:
        return "unknown"
    if all(s == "ok" for s in statuses):
        return "ok"
    if all(s == "down" for s in statuses):
        return "down"
    if all(s == "unknown" for s in statuses):
        return "unknown"
    return "degraded"


async def listing(conn: AsyncConnection) -> list[dict[str, Any]]:
    """GET jurisdictions: every jurisdiction with its kind, status and freshness."""
    rows = (
        await conn.execute(
            select(JURISDICTION.c.id, JURISDICTION.c.code, JURISDICTION.c.name).order_by(
                JURISDICTION.c.code
            )
        )
    ).all()
    partners = {p.config.pk: p for p in await load_partners(conn)}
    by_code = {p.config.code.lower(): p for p in partners.values()}
    items = []
    for pk, code, name in rows:
        partner = partners.get(pk)
        kind = partner.kind if partner else "local"
        status = "ok"
        synced: datetime | None = None
        if partner is not None and kind == "remote":
            status, synced = partner.status, partner.last_synced_at
        elif partner is not None:
            members = [
                by_code[c.lower()] for c in await region_partners(conn, pk) if c.lower() in by_code
            ]
            status = region_status([m.status for m in members])
            stamps = [m.last_synced_at for m in members]
            synced = min(stamps) if stamps and None not in stamps else None  # type: ignore[type-var]
        items.append(
            {
                "jurisdiction_id": code,
                "name": name,
                "kind": kind,
                "status": status,
                "last_synced_at": format_w3c(synced, partner.config.tz)
                if synced is not None and partner is not None
                else None,
                "partner_url": partner.config.base_url if partner and kind == "remote" else None,
            }
        )
    return items


async def synced_at(conn: AsyncConnection, jurisdiction_pk: int) -> datetime | None:
    """When a remote jurisdiction (or every partner of a region) was last synced."""
    partner = (
        await conn.execute(
            select(PARTNER.c.kind, PARTNER.c.last_synced_at).where(
                PARTNER.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).first()
    if partner is None:
        return None
    if partner[0] == "remote":
        synced: datetime | None = partner[1]
        return synced
    codes = [c.lower() for c in await region_partners(conn, jurisdiction_pk)]
    stamps = [
        p.last_synced_at
        for p in await load_partners(conn, kind="remote")
        if p.config.code.lower() in codes
    ]
    if not stamps or None in stamps:
        return None
    return min(s for s in stamps if s is not None)


def require(found: list[PartnerState], code: str) -> PartnerState:
    """The one partner row of a code, or 404."""
    if not found:
        raise NotFound(f"No remote or region jurisdiction {code!r}.")
    return found[0]
