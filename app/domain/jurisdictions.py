"""Jurisdictions: which city a call is about, with the spec's 400/404 rules.

A jurisdiction's ``kind`` is ``local`` (served from our database), ``remote`` (a partner's
GeoReport v2 endpoint, mirrored and synced by ``app.federation``) or ``region`` (POSTs routed by
location to the partner whose boundary contains the point). See ``app/federation``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import JurisdictionNotFound, JurisdictionRequired
from app.settings import Settings
from app.store.tables import BoundarySet, FederationPartner, Jurisdiction
from app.store.tables.base import utcnow

JURISDICTION = Jurisdiction.__table__


async def find_jurisdiction(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """The primary key and stored spelling of a jurisdiction code (any case), or None."""
    found = (
        await conn.execute(
            select(JURISDICTION.c.id, JURISDICTION.c.code).where(
                func.lower(JURISDICTION.c.code) == code.strip().lower()
            )
        )
    ).first()
    return None if found is None else (int(found[0]), str(found[1]))


async def create_jurisdiction(
    conn: AsyncConnection,
    *,
    code: str,
    name: str,
    timezone: str,
    contact: str | None = None,
    key_service: str | None = None,
    accepts_outside: bool = False,
) -> str | None:
    """Create a jurisdiction; None, or the stored code of one that exists (in any case)."""
    found = await find_jurisdiction(conn, code)
    if found is not None:
        return found[1]
    now = utcnow()
    await conn.execute(
        insert(JURISDICTION).values(
            code=code,
            name=name,
            timezone=timezone,
            contact=contact,
            key_service=key_service,
            accepts_outside=accepts_outside,
            created_at=now,
            updated_at=now,
        )
    )
    return None


async def list_jurisdictions(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """Every jurisdiction's code, name and time zone, ordered by code."""
    rows = await conn.execute(
        select(JURISDICTION.c.code, JURISDICTION.c.name, JURISDICTION.c.timezone).order_by(
            JURISDICTION.c.code
        )
    )
    return [(str(code), str(name), str(tz)) for code, name, tz in rows]


@dataclass(frozen=True, slots=True)
class JurisdictionInfo:
    """What request handling needs to know of a jurisdiction (cached in process)."""

    pk: int
    code: str
    name: str
    tz: ZoneInfo
    contact: str | None
    key_service: str | None
    accepts_outside: bool = False
    ward_set_id: int | None = None
    # local | remote | region (a federation_partner row makes it non-local)
    kind: str = "local"


class JurisdictionRegistry:
    """In-process view of the jurisdiction table, refreshed after ``ttl`` seconds.

    Jurisdictions change rarely (an operator command), so every call resolves
    ``jurisdiction_id`` without a database round trip.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings, ttl: float = 5.0) -> None:
        self._engine = engine
        self._settings = settings
        self._ttl = ttl
        self._by_code: dict[str, JurisdictionInfo] = {}
        self._loaded_at = -1e9
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached table (after a change made in this process)."""
        self._loaded_at = -1e9

    async def _load(self) -> dict[str, JurisdictionInfo]:
        now = time.monotonic()
        if now - self._loaded_at < self._ttl:
            return self._by_code
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._ttl:
                return self._by_code
            wards = BoundarySet.__table__
            partners = FederationPartner.__table__
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(JURISDICTION))).mappings().all()
                current = dict(
                    (
                        await conn.execute(
                            select(wards.c.jurisdiction_id, wards.c.id).where(
                                wards.c.kind == "ward", wards.c.current.is_(True)
                            )
                        )
                    ).all()
                )
                kinds = dict(
                    (await conn.execute(select(partners.c.jurisdiction_id, partners.c.kind))).all()
                )
            self._by_code = {
                row["code"].lower(): JurisdictionInfo(
                    pk=row["id"],
                    code=row["code"],
                    name=row["name"],
                    tz=ZoneInfo(row["timezone"]),
                    contact=row["contact"],
                    key_service=row["key_service"],
                    accepts_outside=row["accepts_outside"],
                    ward_set_id=current.get(row["id"]),
                    kind=kinds.get(row["id"], "local"),
                )
                for row in rows
            }
            self._loaded_at = time.monotonic()
            return self._by_code

    async def all(self) -> list[JurisdictionInfo]:
        """Every jurisdiction, ordered by code."""
        return sorted((await self._load()).values(), key=lambda j: j.code)

    async def is_multi(self) -> bool:
        """True when jurisdiction_id is required on every call."""
        if self._settings.multi_jurisdiction is not None:
            return self._settings.multi_jurisdiction
        if self._settings.default_jurisdiction:
            return False
        return len(await self._load()) > 1

    async def resolve(self, jurisdiction_id: str | None) -> JurisdictionInfo:
        """The jurisdiction a call is about.

        Single-jurisdiction mode: absent or empty means the default one; any other value must
        name it. Multi-jurisdiction mode: absent or empty is 400, unknown is 404.
        Ids compare case-insensitively (they are domain names).
        """
        table = await self._load()
        given = (jurisdiction_id or "").strip().lower()
        if await self.is_multi():
            if not given:
                raise JurisdictionRequired()
            found = table.get(given)
            if found is None:
                raise JurisdictionNotFound(
                    f"jurisdiction_id {jurisdiction_id!r} is not served here."
                )
            return found
        default = self._default(table)
        if not given or given == default.code.lower():
            return default
        raise JurisdictionNotFound(f"jurisdiction_id {jurisdiction_id!r} is not served here.")

    def _default(self, table: dict[str, JurisdictionInfo]) -> JurisdictionInfo:
        code = self._settings.default_jurisdiction.strip().lower()
        if code:
            found = table.get(code)
            if found is None:
                raise JurisdictionNotFound(
                    f"The configured default jurisdiction {code!r} does not exist yet: "
                    "load it with 'open311 demo' or 'open311 jurisdictions create'."
                )
            return found
        if not table:
            raise JurisdictionNotFound(
                "No jurisdiction is configured on this server yet: "
                "load one with 'open311 demo' or 'open311 jurisdictions create'."
            )
        return next(iter(table.values()))
