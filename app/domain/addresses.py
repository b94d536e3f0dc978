"""Address points of a jurisdiction and the embedded geocoder built from them.

``import_address_points`` stores the records of a file (``app.geo.address_points``: CSV,
GeoJSON or GeoReport requests, bounded by ``geocode.max_import_bytes`` and
``max_import_records``), adding to or replacing the jurisdiction's. ``Gazetteers`` keeps one
built ``Gazetteer`` per jurisdiction and builds it again when its points change (one small
aggregate per lookup tells); the build runs in a worker thread, once at a time per
jurisdiction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain.boundaries import jurisdiction_pk
from app.errors import BadRequest
from app.geo.address_points import AddressPointsError, AddressRecord, read_address_points
from app.geo.geocode import build_gazetteer
from app.store import addresses as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.geo.gazetteer import Gazetteer
    from app.geo.settings import GeocodeSettings
    from app.store.addresses import AddressPointsVersion


class AddressImportError(BadRequest):
    """400: a file of address points that cannot be imported (the message says why)."""


@dataclass(frozen=True, slots=True)
class AddressImport:
    """What an import read and did."""

    jurisdiction: str
    read: int
    skipped: int
    removed: int
    stored: int
    dry_run: bool


def read_points(path: Path, settings: GeocodeSettings) -> tuple[list[AddressRecord], int]:
    """The records of a file and how many rows were skipped, within the settings' bounds."""
    try:
        points = read_address_points(
            path,
            max_bytes=settings.max_import_bytes,
            max_records=settings.max_import_records,
        )
    except AddressPointsError as exc:
        raise AddressImportError(str(exc)) from exc
    return points.records, points.skipped


async def import_address_points(
    conn: AsyncConnection,
    code: str,
    records: list[AddressRecord],
    *,
    skipped: int = 0,
    replace: bool = False,
    dry_run: bool = False,
) -> AddressImport:
    """Add the records to the jurisdiction's address points (``replace``: instead of the
    ones stored); ``dry_run``: only count (nothing written)."""
    pk = await jurisdiction_pk(conn, code)
    removed = stored = 0
    if dry_run:
        removed = (await store.address_points_version(conn, pk)).count if replace else 0
    else:
        if replace:
            removed = await store.delete_address_points(conn, pk)
        stored = await store.insert_address_points(conn, pk, records)
    return AddressImport(code, len(records), skipped, removed, stored, dry_run)


class Gazetteers:
    """The embedded geocoder of each jurisdiction, built from its stored address points."""

    def __init__(self, settings: GeocodeSettings) -> None:
        self.settings = settings
        self._built: dict[int, tuple[AddressPointsVersion, Gazetteer]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(self, conn: AsyncConnection, jurisdiction: int) -> Gazetteer:
        """The jurisdiction's gazetteer (empty without address points), rebuilt when they
        changed since it was built."""
        version = await store.address_points_version(conn, jurisdiction)
        built = self._built.get(jurisdiction)
        if built is not None and built[0] == version:
            return built[1]
        lock = self._locks.setdefault(jurisdiction, asyncio.Lock())
        async with lock:
            built = self._built.get(jurisdiction)
            if built is not None and built[0] == version:
                return built[1]
            records = await store.load_address_points(conn, jurisdiction)
            gazetteer = await asyncio.to_thread(build_gazetteer, self.settings, records)
            self._built[jurisdiction] = (version, gazetteer)
            return gazetteer

    def forget(self, jurisdiction: int | None = None) -> None:
        """Drop the built gazetteer of one jurisdiction (or all)."""
        if jurisdiction is None:
            self._built.clear()
        else:
            self._built.pop(jurisdiction, None)
