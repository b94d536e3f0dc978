"""Load the demo: Toronto (jurisdiction, real service types, 1000 real 2018 requests) and
Greater Sudbury (a second, bilingual jurisdiction: its 12 real wards and an illustrative
service list in English with French translations; no requests).

Sources and licences: ``app/demo/data/NOTICE.md``. Loading is idempotent: services are
upserted by code, translations by what they translate, requests are inserted once (by their
original Toronto id). Toronto stays the jurisdiction of calls without ``jurisdiction_id`` when
``default_jurisdiction`` says so (``make run`` sets it); Sudbury is reached with
``jurisdiction_id=greatersudbury.ca``.

Dates: the captured requests are from autumn 2018, outside every default window, so by default
they are **moved forward**: every datetime of every request (requested, updated, expected) is
moved by the same whole number of days, counted on the jurisdiction's calendar, so that the
newest request was made yesterday. Local times of day stay as captured (a request made at
17:00 in Toronto is still made at 17:00), and so do the order and the spacing in days; across
a daylight-saving change the elapsed hours between two requests differ by one. A later load
moves them again (to the new yesterday) unless a request was changed since it was loaded; with
``original_dates`` they keep (or get back) their 2018 dates.

Service promise (illustrative, not the City's): the catalogue's five divisions and each
service's division and service levels are imported with it (``app.domain.catalog_import``),
and each captured request gets an intake channel drawn from a fixed mix (``CHANNEL_MIX``), the
same for a request on every load. The captured requests keep their real expected_datetime.
First-contact resolution (illustrative too): a captured request that the capture shows closed
at most ``FIRST_CONTACT_WINDOW`` (30 minutes, ``service_promise.first_contact_minutes``'s
default) after it was made (``demo_first_contact``) is recorded as resolved at first contact,
taken by a contact centre agent or at a counter (``CONTACT_MIX``): its history (closed
minutes after it was made, no later update) is the one such a contact leaves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.domain import reports
from app.domain.catalog_files import check_catalogue, read_catalog
from app.domain.catalog_import import apply_import, upsert_jurisdiction, upsert_services
from app.domain.catalog_translations import import_translations, read_translations_csv
from app.domain.updates import FIRST_CONTACT_WINDOW
from app.georeport.datetimes import parse_w3c
from app.store import areas as areas_store
from app.store import catalog as catalog_store
from app.store import demo as store
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

DATA = Path(__file__).parent / "data"
CATALOG_FILE = DATA / "toronto_catalog.json"
BOUNDARIES = DATA / "boundaries"
# Ward maps shipped for the demo and the tests: jurisdiction -> (set name, file, zone, name).
WARD_MAPS: dict[str, tuple[str, str, str, str]] = {
    "toronto.ca": (
        "toronto-wards-2018",
        "toronto_wards_25.geojson",
        "America/Toronto",
        "City of Toronto",
    ),
    "cityofchicago.org": (
        "chicago-wards-2023",
        "chicago_wards_50_2023.geojson",
        "America/Chicago",
        "City of Chicago",
    ),
    "greatersudbury.ca": (
        "sudbury-wards-2005",
        "greater_sudbury_wards_12.geojson",
        "America/Toronto",
        "City of Greater Sudbury",
    ),
}
REQUESTS_FILE = DATA / "toronto_requests_2018.json"
SUDBURY_CATALOG_FILE = DATA / "sudbury_catalog.json"
SUDBURY_TRANSLATIONS_FILE = DATA / "sudbury_translations_fr.csv"
# The demo's illustrative intake channels of the captured requests (percent of requests); the
# capture does not say how each came in.
CHANNEL_MIX = (
    ("phone", 48),
    ("web", 24),
    ("mobile_app", 16),
    ("email", 5),
    ("social_media", 3),
    ("counter", 2),
    ("partner", 2),
)


# The channels of the demo's first-contact resolutions (a contact centre agent or a counter
# clerk closes the request during the contact), as shares of CHANNEL_MIX.
CONTACT_MIX = (("phone", 48), ("counter", 2))


def demo_channel(request_id: int, *, first_contact: bool = False) -> str:
    """The illustrative channel of a captured request (stable: from a hash of its id); one
    resolved at first contact came in through a contact (``CONTACT_MIX``)."""
    mix = CONTACT_MIX if first_contact else CHANNEL_MIX
    total = sum(share for _, share in mix)
    slot = int.from_bytes(hashlib.sha256(str(request_id).encode()).digest()[:4], "big") % total
    for channel, share in mix:
        if slot < share:
            return channel
        slot -= share
    return mix[0][0]  # pragma: no cover - slot < total


def demo_first_contact(record: dict[str, Any]) -> bool:
    """Whether the demo records a captured request as resolved at first contact: the capture
    shows it closed at most ``FIRST_CONTACT_WINDOW`` after it was made (illustrative: the
    capture does not say who closed it)."""
    if str(record.get("status", "")).lower() != "closed":
        return False
    requested, updated = _dt(record["requested_datetime"]), _dt(record.get("updated_datetime"))
    if requested is None or updated is None:
        return False
    return timedelta(0) <= updated - requested <= FIRST_CONTACT_WINDOW


@dataclass(slots=True)
class LoadReport:
    """What a catalogue or demo load did."""

    jurisdiction: str
    services: int = 0
    requests_added: int = 0
    requests_skipped: int = 0
    # Days the captured requests were moved forward (0: their original dates).
    days_moved: int = 0
    requests_redated: int = 0
    translations: int = 0
    # Address points of the embedded geocoder (the captured requests' own addresses).
    address_points: int = 0


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _dt(value: Any) -> datetime | None:
    return parse_w3c(value) if value else None


@dataclass(frozen=True, slots=True)
class DateShift:
    """Moves instants by whole days on a zone's calendar, keeping their local times of day."""

    days: int
    tz: tzinfo

    def __call__(self, value: datetime | None) -> datetime | None:
        if value is None or not self.days:
            return value
        local = value.astimezone(self.tz).replace(tzinfo=None) + timedelta(days=self.days)
        return local.replace(tzinfo=self.tz)


def days_to_yesterday(records: list[dict[str, Any]], tz: tzinfo, today: date) -> int:
    """Days that move the newest captured request to ``today - 1`` (calendar of ``tz``)."""
    newest = max(parse_w3c(r["requested_datetime"]) for r in records)
    return (today - timedelta(days=1) - newest.astimezone(tz).date()).days


def _captured_times(record: dict[str, Any], move: DateShift) -> dict[str, datetime | None]:
    requested = _dt(record["requested_datetime"])
    assert requested is not None  # noqa: S101 - invariant, not an input check
    return {
        "requested_at": move(requested),
        # Toronto left updated_datetime empty on 55 requests; the spec always has one.
        "updated_at": move(_dt(record.get("updated_datetime")) or requested),
        "expected_at": move(_dt(record.get("expected_datetime"))),
    }


def _request_rows(
    records: list[dict[str, Any]],
    jurisdiction_pk: int,
    service_pks: dict[str, int],
    move: DateShift,
) -> Iterator[store.CapturedRequest]:
    now = utcnow()
    for record in records:
        times = _captured_times(record, move)
        requested, updated = times["requested_at"], times["updated_at"]
        assert requested is not None  # noqa: S101 - invariant, not an input check
        assert updated is not None  # noqa: S101 - invariant, not an input check
        lat, lon = record.get("lat"), record.get("long")
        resolved = demo_first_contact(record)
        yield store.CapturedRequest(
            id=int(record["service_request_id"]),
            jurisdiction_id=jurisdiction_pk,
            service_type_id=service_pks[str(record["service_code"])],
            status=str(record["status"]).lower(),
            status_notes=_text(record.get("status_notes")),
            description=_text(record.get("description")),
            agency_responsible=_text(record.get("agency_responsible")),
            service_notice=_text(record.get("service_notice")),
            requested_at=requested,
            updated_at=updated,
            expected_at=times["expected_at"],
            address=_text(record.get("address")),
            address_id=_text(record.get("address_id")),
            zipcode=_text(record.get("zipcode")),
            lat=float(lat) if lat is not None else None,
            lon=float(lon) if lon is not None else None,
            media_url=_text(record.get("media_url")),
            created_at=now,
            channel=demo_channel(int(record["service_request_id"]), first_contact=resolved),
            first_contact_resolved=resolved,
        )


async def load_requests(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    service_pks: dict[str, int],
    records: list[dict[str, Any]],
    move: DateShift | None = None,
) -> tuple[int, int, int]:
    """Insert captured requests that are not stored yet, keeping their ids.

    ``move`` shifts their dates (default: none); requests stored by an earlier load get the
    same dates unless they were changed since (their ``updated_at`` is not the loaded one).
    (added, skipped, re-dated).
    """
    move = move or DateShift(0, ZoneInfo("UTC"))
    ids = [int(r["service_request_id"]) for r in records]
    present: set[int] = set()
    ours: dict[int, tuple[datetime, datetime]] = {}
    for stored in await store.stored_dates(conn, ids):
        present.add(stored.id)
        if stored.jurisdiction_pk == jurisdiction_pk:
            ours[stored.id] = (stored.requested_at, stored.updated_at)
    redated = await _redate(
        conn, [r for r in records if int(r["service_request_id"]) in ours], ours, move
    )
    contacts = {
        int(r["service_request_id"])
        for r in records
        if int(r["service_request_id"]) in ours and demo_first_contact(r)
    }
    await store.fill_channels(
        conn, {pk: demo_channel(pk, first_contact=pk in contacts) for pk in ours}
    )
    # Requests loaded before first contact was recorded get it now (unless reopened since).
    marked = await store.mark_first_contact(
        conn, {pk: demo_channel(pk, first_contact=True) for pk in contacts}
    )
    new = [r for r in records if int(r["service_request_id"]) not in present]
    rows = list(_request_rows(new, jurisdiction_pk, service_pks, move))
    await store.insert_captured(conn, jurisdiction_pk, rows)
    if rows or redated or marked:
        # Captured dates move no updated_at forward: the reports' rollups rebuild.
        await reports.invalidate(conn, jurisdiction_pk)
    return len(rows), len(present), redated


async def _redate(
    conn: AsyncConnection,
    records: list[dict[str, Any]],
    stored: dict[int, tuple[datetime, datetime]],
    move: DateShift,
) -> int:
    """Give stored captured requests the dates of ``move``, unless changed since loaded."""
    redated = 0
    for record in records:
        pk = int(record["service_request_id"])
        requested, updated = stored[pk]
        captured = _captured_times(record, DateShift(0, move.tz))
        original = captured["requested_at"]
        assert original is not None  # noqa: S101 - invariant, not an input check
        # requested_at never changes after a load: it tells how far the last load moved it.
        days = (requested.astimezone(move.tz).date() - original.astimezone(move.tz).date()).days
        before = DateShift(days, move.tz)
        if days == move.days or before(captured["updated_at"]) != updated:
            continue
        await store.set_dates(
            conn,
            pk,
            requested_at=move(captured["requested_at"]),
            updated_at=move(captured["updated_at"]),
            expected_at=move(captured["expected_at"]),
        )
        redated += 1
    return redated


async def load_ward_map(engine: AsyncEngine, jurisdiction: str, tolerance_m: float) -> bool:
    """Import the shipped ward map of a jurisdiction (once) and assign its requests to wards.

    The jurisdiction is created when missing. False when the map was already there.
    """
    from app.domain.boundaries import import_boundary_set, read_geojson, reassign_wards

    set_name, file_name, zone, name = WARD_MAPS[jurisdiction]
    async with engine.begin() as conn:
        pk = await catalog_store.jurisdiction_pk(conn, jurisdiction)
        if pk is None:
            pk = await upsert_jurisdiction(
                conn, {"jurisdiction_id": jurisdiction, "name": name, "timezone": zone}
            )
        present = await areas_store.boundary_set_id(conn, pk, set_name)
    if present is not None:
        return False
    areas = read_geojson(BOUNDARIES / file_name, code_field="ward_code", name_field="ward_name")
    await import_boundary_set(
        engine, jurisdiction=jurisdiction, name=set_name, areas=areas, source=file_name
    )
    await reassign_wards(engine, jurisdiction, tolerance_m=tolerance_m)
    return True


async def load_address_points(conn: AsyncConnection, code: str) -> int:
    """Replace the jurisdiction's address points with the captured requests' own addresses
    and points (its embedded geocoder: ``make run`` geocodes with no outside service)."""
    from app.domain.addresses import import_address_points
    from app.geo.address_points import read_address_points

    points = read_address_points(REQUESTS_FILE)
    done = await import_address_points(
        conn, code, points.records, skipped=points.skipped, replace=True
    )
    return done.stored


async def load_demo(
    engine: AsyncEngine,
    *,
    with_requests: bool = True,
    tolerance_m: float = 5.0,
    original_dates: bool = False,
    today: date | None = None,
) -> LoadReport:
    """Load (or refresh) the Toronto demo jurisdiction with its 25 wards.

    The captured requests are moved so the newest was made yesterday (``today`` on the
    jurisdiction's calendar, default: the clock's), or keep their 2018 dates with
    ``original_dates``.
    """
    catalog = read_catalog(CATALOG_FILE)
    tz = ZoneInfo(catalog["jurisdiction"].get("timezone", "UTC"))
    code = catalog["jurisdiction"]["jurisdiction_id"]
    async with engine.begin() as conn:
        jurisdiction_pk = await upsert_jurisdiction(conn, catalog["jurisdiction"])
        await apply_import(
            conn, jurisdiction_pk, code, check_catalogue(catalog, CATALOG_FILE.name), by="demo"
        )
        service_pks = await catalog_store.service_pks(conn, jurisdiction_pk)
        report = LoadReport(code, services=len(catalog["services"]))
        if with_requests:
            records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
            if not original_dates:
                today = today or utcnow().astimezone(tz).date()
                report.days_moved = days_to_yesterday(records, tz, today)
            move = DateShift(report.days_moved, tz)
            (
                report.requests_added,
                report.requests_skipped,
                report.requests_redated,
            ) = await load_requests(conn, jurisdiction_pk, service_pks, records, move)
        report.address_points = await load_address_points(conn, code)
    if not await load_ward_map(engine, report.jurisdiction, tolerance_m) and report.requests_added:
        from app.domain.boundaries import reassign_wards

        await reassign_wards(engine, report.jurisdiction, tolerance_m=tolerance_m)
    return report


async def load_sudbury_demo(engine: AsyncEngine, *, tolerance_m: float = 5.0) -> LoadReport:
    """Load (or refresh) the Greater Sudbury demo jurisdiction: its 12 wards and its
    illustrative service list in English with French translations."""
    catalog = read_catalog(SUDBURY_CATALOG_FILE)
    rows = read_translations_csv(SUDBURY_TRANSLATIONS_FILE)
    async with engine.begin() as conn:
        jurisdiction_pk = await upsert_jurisdiction(conn, catalog["jurisdiction"])
        service_pks = await upsert_services(conn, jurisdiction_pk, catalog["services"])
    code = catalog["jurisdiction"]["jurisdiction_id"]
    translated = await import_translations(engine, jurisdiction_pk, code, rows)
    await load_ward_map(engine, code, tolerance_m)
    return LoadReport(code, services=len(service_pks), translations=translated.rows)
