"""Jurisdictions: which city a call is about, with the spec's 400/404 rules.

A jurisdiction's ``kind`` is ``local`` (served from our database), ``remote`` (a partner's
GeoReport v2 endpoint, mirrored and synced by ``app.federation``) or ``region`` (POSTs routed by
location to the partner whose boundary contains the point). See ``app/federation``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.domain.business_calendar import BusinessCalendar
from app.domain.service_promise import jurisdiction_calendar
from app.errors import JurisdictionNotFound, JurisdictionRequired
from app.messages import Text
from app.settings import Settings
from app.store import jurisdictions as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


async def find_jurisdiction(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """The primary key and stored spelling of a jurisdiction code (any case), or None."""
    return await store.find_jurisdiction(conn, code)


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
    await store.insert_jurisdiction(
        conn,
        code=code,
        name=name,
        timezone=timezone,
        contact=contact,
        key_service=key_service,
        accepts_outside=accepts_outside,
    )
    return None


async def list_jurisdictions(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """Every jurisdiction's code, name and time zone, ordered by code."""
    return await store.list_jurisdictions(conn)


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
    # Its business calendar (stored, or a demo city's example; app.domain.service_promise).
    calendar: BusinessCalendar | None = field(default=None, compare=False, repr=False)


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
            async with self._engine.connect() as conn:
                rows = await store.load_jurisdictions(conn)
            self._by_code = {
                row.code.lower(): JurisdictionInfo(
                    pk=row.pk,
                    code=row.code,
                    name=row.name,
                    tz=ZoneInfo(row.timezone),
                    contact=row.contact,
                    key_service=row.key_service,
                    accepts_outside=row.accepts_outside,
                    ward_set_id=row.ward_set_id,
                    kind="local" if row.partner_kind is None else row.partner_kind,
                    calendar=jurisdiction_calendar(row.code, row.business_calendar),
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

        Single-jurisdiction mode: absent or empty means the default one (the configured
        ``default_jurisdiction``, else the only one); a given id names any jurisdiction
        served here (with one jurisdiction, that one). Multi-jurisdiction mode: absent or
        empty is 400. Unknown is 404. Ids compare case-insensitively (they are domain names).
        """
        table = await self._load()
        given = (jurisdiction_id or "").strip().lower()
        if await self.is_multi():
            if not given:
                raise JurisdictionRequired()
        elif not given:
            return self._default(table)
        found = table.get(given)
        if found is None:
            raise JurisdictionNotFound(
                Text("jurisdiction_id {id!r} is not served here.", id=jurisdiction_id)
            )
        return found

    def _default(self, table: dict[str, JurisdictionInfo]) -> JurisdictionInfo:
        code = self._settings.default_jurisdiction.strip().lower()
        if code:
            found = table.get(code)
            if found is None:
                raise JurisdictionNotFound(
                    Text(
                        "The configured default jurisdiction {code!r} does not exist yet: "
                        "load it with 'open311 demo' or 'open311 jurisdictions create'.",
                        code=code,
                    )
                )
            return found
        if not table:
            raise JurisdictionNotFound(
                Text(
                    "No jurisdiction is configured on this server yet: "
                    "load one with 'open311 demo' or 'open311 jurisdictions create'."
                )
            )
        return next(iter(table.values()))
