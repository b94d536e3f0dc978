"""The service promise at intake: a jurisdiction's business calendar and ``expected_at``.

A jurisdiction's calendar is the JSON form of ``BusinessCalendar`` stored with it
(``open311 jurisdictions calendar``, ``POST /admin/v1/calendar.json``); a jurisdiction that
stores none and is one of the demo cities (toronto.ca, greatersudbury.ca, cityofchicago.org)
uses its illustrative calendar from ``EXAMPLE_CALENDARS``. Calendars are built once per
distinct configuration and kept (with their cached days) across registry reloads.

``intake_columns(jurisdiction, service, key, requested_at, channel=, status=)`` gives all the
service-promise columns of a new request at once (expected_at, channel, first contact).

``expected_at(jurisdiction, service, requested_at)`` is the request's ``expected_datetime``:
when the service's resolve target falls due on that calendar. It is pure and cheap (the
service's targets are parsed when the catalogue is read, the calendar built when the
jurisdiction is), so the POST hot path calls it with what it already holds. A target in
calendar hours or days needs no calendar (real elapsed time); a target in business hours or
days gives no expected datetime in a jurisdiction without a calendar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from app.domain.business_calendar import EXAMPLE_CALENDARS, BusinessCalendar, CalendarError
from app.domain.channels import intake_channel, resolved_at_intake
from app.domain.service_levels import (
    ServiceLevel,
    ServiceLevelError,
    TargetKind,
    Unit,
    format_service_levels,
    is_overdue,
    parse_service_levels,
    target,
)
from app.errors import Forbidden, InvalidParameter

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.domain.api_keys import KeyInfo
    from app.domain.catalog import ServiceInfo
    from app.domain.jurisdictions import JurisdictionInfo

log = logging.getLogger("open311.service_promise")

# Largest calendar configuration read (its JSON text), checked before parsing.
MAX_CALENDAR_BYTES = 64 * 1024
CALENDAR_UNITS = (Unit.CALENDAR_HOURS, Unit.CALENDAR_DAYS)
CalendarSource = Literal["stored", "example", "none"]


@lru_cache(maxsize=64)
def _build(text: str) -> BusinessCalendar:
    return BusinessCalendar.from_config(json.loads(text))


def build_calendar(config: Mapping[str, Any]) -> BusinessCalendar:
    """A calendar from its JSON form (``CalendarError`` when wrong), shared per configuration."""
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"not a JSON calendar: {exc}") from None
    if len(text) > MAX_CALENDAR_BYTES:
        raise CalendarError(f"a calendar is at most {MAX_CALENDAR_BYTES} bytes of JSON")
    return _build(text)


def calendar_config(
    code: str, stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, CalendarSource]:
    """The calendar configuration a jurisdiction uses, and where it comes from."""
    if stored is not None:
        return dict(stored), "stored"
    example = EXAMPLE_CALENDARS.get(code.lower())
    if example is not None:
        return dict(example), "example"
    return None, "none"


def jurisdiction_calendar(code: str, stored: Mapping[str, Any] | None) -> BusinessCalendar | None:
    """The calendar a jurisdiction uses (stored, else its example), or None."""
    config, _ = calendar_config(code, stored)
    if config is None:
        return None
    try:
        return build_calendar(config)
    except CalendarError as exc:
        # Stored calendars are checked when written: this is a hand-edited row.
        log.warning("jurisdiction %s: business calendar ignored: %s", code, exc)
        return None


@lru_cache(maxsize=64)
def _elapsed_calendar(zone: str) -> BusinessCalendar:
    # Calendar hours and days are real elapsed time: any calendar computes them the same way.
    return build_calendar({"timezone": zone, "hours": "Mon-Sun 00:00-24:00"})


def due_at(
    jurisdiction: JurisdictionInfo,
    levels: tuple[ServiceLevel, ...],
    kind: TargetKind,
    requested_at: datetime,
) -> datetime | None:
    """When a target of ``kind`` falls due (UTC), or None (no such target, or a business
    target without a calendar, or a calendar that cannot answer)."""
    level = target(levels, kind)
    if level is None:
        return None
    calendar = jurisdiction.calendar
    if calendar is None:
        if level.unit not in CALENDAR_UNITS:
            return None
        calendar = _elapsed_calendar(jurisdiction.tz.key)
    try:
        return level.due_at(requested_at, calendar)
    except CalendarError as exc:
        log.warning("jurisdiction %s: no due instant: %s", jurisdiction.code, exc)
        return None


def expected_at(
    jurisdiction: JurisdictionInfo, service: ServiceInfo, requested_at: datetime
) -> datetime | None:
    """GeoReport ``expected_datetime`` of a request filed at ``requested_at`` (aware): when
    the service's resolve target falls due on the jurisdiction's calendar (UTC), or None.

    The hot path's call: the service's targets are parsed already (``ServiceInfo.levels``)
    and the calendar built (``JurisdictionInfo.calendar``); no database, no parsing.
    """
    if not service.levels:
        return None
    return due_at(jurisdiction, service.levels, TargetKind.RESOLVE, requested_at)


def intake_columns(
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    key: KeyInfo | None,
    requested_at: datetime,
    *,
    channel: str | None = None,
    status: str | None = None,
    expected: str | None = None,
) -> dict[str, Any]:
    """The service-promise columns of a new request, for ``request_row`` to add: its
    ``expected_at`` (``expected``: the POST ``expected_datetime``, staff keys only), its
    intake ``channel`` (``channel``: the POST field, staff keys only), its core ``status``
    and ``detailed_status`` and ``first_contact_resolved`` (``status``: the detailed status
    a staff key files it with; closed: resolved at first contact).

    403 when a key without the ``staff`` scope names a channel, a status other than open or
    an expected datetime; 400 for an unknown channel or status, or an unreadable datetime.
    No database, no parsing beyond the fields' few characters.
    """
    from app.domain.statuses import parse_status
    from app.georeport.datetimes import parse_w3c, to_utc

    core, detailed = parse_status(status) if status is not None else ("open", None)
    if detailed not in (None, "open") and (key is None or not key.can("staff")):
        raise Forbidden("Only a key with the staff scope may file a request with a status.")
    due: datetime | None
    if expected is not None:
        if key is None or not key.can("staff"):
            raise Forbidden("Only a key with the staff scope may set expected_datetime.")
        try:
            due = to_utc(parse_w3c(expected, jurisdiction.tz, allow_date_only=False))
        except ValueError:
            raise InvalidParameter("expected_datetime must be a W3C datetime.") from None
    else:
        due = expected_at(jurisdiction, service, requested_at)
    return {
        "expected_at": due,
        "channel": intake_channel(key, channel).value,
        "first_contact_resolved": resolved_at_intake(key, core if status is not None else None),
        "status": core,
        "detailed_status": detailed if detailed not in (None, core) else None,
    }


def check_calendar(config: object) -> dict[str, Any]:
    """A calendar configuration, checked (400 with the reason) and in canonical form."""
    if not isinstance(config, Mapping):
        raise InvalidParameter("A business calendar is a JSON object.")
    try:
        return build_calendar(config).to_config()
    except CalendarError as exc:
        raise InvalidParameter(f"Not a business calendar: {exc}.") from None


async def show_calendar(conn: AsyncConnection, jurisdiction: JurisdictionInfo) -> dict[str, Any]:
    """The calendar a jurisdiction uses and where it comes from (admin API, CLI)."""
    from app.store import jurisdictions as store

    config, source = calendar_config(
        jurisdiction.code, await store.business_calendar(conn, jurisdiction.pk)
    )
    return {"jurisdiction_id": jurisdiction.code, "source": source, "calendar": config}


async def set_calendar(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, config: object | None
) -> dict[str, Any]:
    """Store a jurisdiction's calendar (checked; None: none stored, the example if any then
    applies); what it uses now."""
    from app.store import jurisdictions as store

    stored = None if config is None else check_calendar(config)
    await store.set_business_calendar(conn, jurisdiction.pk, stored)
    return await show_calendar(conn, jurisdiction)


def overdue(expected: datetime | None, now: datetime, status: str) -> bool:
    """Whether a request is past its expected datetime and still open."""
    return is_overdue(expected, now) if status == "open" else False


async def set_service_levels(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    service_code: str,
    levels: str | Mapping[str, object] | None,
) -> str | None:
    """Set a service's targets (text or object as a catalogue gives them; None or empty:
    none); the canonical text stored. 400 when unreadable, 404 for no such service."""
    from app.domain.divisions import service_pk
    from app.store import catalog as catalog_store

    try:
        parsed = parse_service_levels(levels or None)
    except ServiceLevelError as exc:
        raise InvalidParameter(*(f"service_levels: {p}" for p in exc.problems)) from None
    text = format_service_levels(parsed) or None
    pk = await service_pk(conn, jurisdiction_pk, service_code)
    await catalog_store.set_service_levels(conn, pk, text)
    return text


async def request_facts(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, service_request_id: int
) -> dict[str, Any]:
    """A request's service promise as the admin API shows it (404 when there is none)."""
    from app.domain.channels import extension_fields
    from app.errors import RequestNotFound
    from app.georeport.datetimes import format_w3c
    from app.store import updates as store
    from app.store.tables.base import utcnow

    facts = await store.request_facts(conn, jurisdiction.pk, service_request_id)
    if facts is None:
        raise RequestNotFound(f"No service request with id {str(service_request_id)!r}.")
    tz = jurisdiction.tz
    return {
        "service_request_id": str(facts.id),
        "status": facts.status,
        "detailed_status": facts.detailed_status,
        "service_code": facts.service_code,
        "division": facts.division_code,
        "division_name": facts.division_name,
        "agency_responsible": facts.agency_responsible,
        **extension_fields(facts.channel, facts.first_contact_resolved),
        "requested_datetime": format_w3c(facts.requested_at, tz),
        "updated_datetime": format_w3c(facts.updated_at, tz),
        "expected_datetime": (
            format_w3c(facts.expected_at, tz) if facts.expected_at is not None else None
        ),
        "overdue": overdue(facts.expected_at, utcnow(), facts.status),
        "app": facts.app_name,
        "key_id": facts.api_key_id,
        "sandbox": facts.sandbox,
    }
