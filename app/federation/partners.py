"""Federation state: partners, mirrored services, synced request copies, health, listing.

Backend-free: the statements are ``app.store.federation``'s; this module decides what they
write (validation, the breaker's policy, a region's status).

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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.domain.boundaries import PARTNER_SET_KIND, AreaInput, import_boundary_set
from app.domain.catalog_import import service_pks, upsert_jurisdiction, upsert_services
from app.domain.jurisdictions import find_jurisdiction
from app.domain.records import field_values
from app.errors import BadRequest, NotFound
from app.federation.client import PartnerConfig
from app.georeport.datetimes import format_w3c
from app.settings import FederationSettings
from app.store import federation as sql
from app.store.engine import write_transaction
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

FORMATS = ("json", "xml")


@dataclass(frozen=True, slots=True)
class PartnerState(sql.PartnerStatus):
    """A partner's status with how it is reached (``config``)."""

    config: PartnerConfig


# ---------------------------------------------------------------------------------------
# Configuration (CLI)


async def _upsert(
    conn: AsyncConnection,
    code: str,
    name: str,
    timezone: str,
    kind: str,
    endpoint: sql.Endpoint | None = None,
) -> int:
    ZoneInfo(timezone)  # a bad zone fails here, before anything is stored
    found = await find_jurisdiction(conn, code)
    if found is not None:
        if await sql.partner_kind(conn, found[0]) is None:
            raise BadRequest(f"{found[1]} is a local jurisdiction; it cannot become a partner.")
        code = found[1]
    pk = await upsert_jurisdiction(
        conn, {"jurisdiction_id": code, "name": name, "timezone": timezone}
    )
    await sql.save_partner(conn, pk, kind, endpoint, utcnow())
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
            "remote",
            sql.Endpoint(
                base_url=base,
                fmt=fmt,
                api_key=partner_key or None,
                partner_jurisdiction_id=partner_jurisdiction or None,
            ),
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
        pk = await _upsert(conn, code, name, timezone, "region")
        region_code = await sql.jurisdiction_code(conn, pk)
        if areas:
            remotes = {remote.lower(): remote for remote in await sql.remote_codes(conn)}
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
    rows = await sql.partners(conn, None if code is None else code.strip(), kind)
    return [
        PartnerState(
            config=PartnerConfig(
                pk=row.jurisdiction_pk,
                code=row.code,
                base_url=row.base_url or "",
                fmt=row.fmt,
                api_key=row.api_key,
                partner_jurisdiction_id=row.partner_jurisdiction_id,
                tz=ZoneInfo(row.timezone),
            ),
            **field_values(row, sql.PartnerStatus),
        )
        for row in rows
    ]


async def region_partners(conn: AsyncConnection, region_pk: int) -> list[str]:
    """Codes of the partners in a region's current partner boundary set."""
    codes = await sql.current_set_area_codes(conn, region_pk, PARTNER_SET_KIND)
    return list(dict.fromkeys(codes))


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
    async with write_transaction(engine) as conn:
        await sql.partner_succeeded(
            conn,
            pk,
            status="degraded" if warning else "ok",
            refreshed_at=now if refreshed else None,
            synced_at=now if synced else None,
            warning=warning[:2000] if warning else None,
            warning_at=now,
        )


async def claim_refresh(engine: AsyncEngine, pk: int, seen: datetime | None) -> bool:
    """Claim a partner's due refresh: stamp ``last_refresh_at`` if it is still ``seen``.

    A conditional UPDATE, so of several worker loops that found the partner due exactly one
    wins (on PostgreSQL the row lock makes the others re-check and miss; SQLite writes one at a
    time). The refresh stamps the time again when it ends.
    """
    async with write_transaction(engine) as conn:
        return await sql.claim_refresh(conn, pk, seen, utcnow())


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
        failures = await sql.count_failure(conn, pk)
        down = failures >= settings.breaker_failures
        await sql.partner_failed(
            conn,
            pk,
            status="down" if down else "degraded",
            error=error[:2000],
            error_at=now,
            breaker_open_until=now + timedelta(seconds=settings.breaker_reset_s) if down else None,
            refreshed_at=now if refreshed else None,
        )


# ---------------------------------------------------------------------------------------
# Mirrored services


async def mirror_services(
    conn: AsyncConnection, jurisdiction_pk: int, services: list[dict[str, Any]]
) -> dict[str, int]:
    """Make the jurisdiction's active services exactly ``services`` (others deactivated)."""
    pks = await upsert_services(conn, jurisdiction_pk, services)
    await sql.deactivate_services_except(conn, jurisdiction_pk, list(pks.values()), utcnow())
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
        known[code] = await sql.add_inactive_service(
            conn, jurisdiction_pk, code, item["service_name"], now
        )
    return known


async def upsert_requests(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    items: list[dict[str, Any]],
    *,
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
        synced = await sql.save_synced(conn, jurisdiction_pk, part, services, now)
        ids.update(synced.ids)
        added += synced.added
        updated += synced.updated
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
    rows = await sql.jurisdictions(conn)
    partners = {p.config.pk: p for p in await load_partners(conn)}
    by_code = {p.config.code.lower(): p for p in partners.values()}
    items = []
    for row in rows:
        pk = row.pk
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
                "jurisdiction_id": row.code,
                "name": row.name,
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
    partner = await sql.partner_sync(conn, jurisdiction_pk)
    if partner is None:
        return None
    if partner.kind == "remote":
        return partner.last_synced_at
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
