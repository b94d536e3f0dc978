"""Counts behind the public map page: requests per ward and per service in a window.

The page draws every request point from GET requests (at most ``max_results`` of them), but
counts must cover the whole window, so they are aggregated here in SQL. The filters are the
ones of GET requests (``app.api.filters.parse_filters``), so both always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.domain.catalog import Catalog
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import RequestFilters
from app.georeport.datetimes import format_w3c
from app.georeport.models import STATUSES
from app.store.areas import area_names
from app.store.stats import requested_range, window_counts

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Window:
    """A window of requested_datetime: [start, end], both inclusive."""

    start: datetime
    end: datetime

    def days(self, tz: ZoneInfo) -> tuple[date, date]:
        """First and last local day of the window (an end at midnight ends the day before).

        GET requests reads a whole-second end_date as the end of that second (+999999 µs).
        """
        first = self.start.astimezone(tz).date()
        end = self.end.astimezone(tz)
        last = end.date() - timedelta(days=1) if end.time() < time(0, 0, 1) else end.date()
        return first, max(first, last)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tz)


async def data_range(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo
) -> tuple[datetime | None, datetime | None]:
    """The first and last requested_datetime of the jurisdiction's public requests."""
    return await requested_range(conn, jurisdiction.pk)


def default_window(last: datetime | None, now: datetime, days: int, tz: ZoneInfo) -> Window:
    """``days`` whole local days ending with the day of the newest request (else today).

    A map of the last 90 days of a city whose data stopped a while ago (an import, the demo)
    would be empty; ending the window at the newest request always shows something.
    """
    last_day = (last or now).astimezone(tz).date()
    first_day = last_day - timedelta(days=days - 1)
    return Window(_midnight(first_day, tz), _midnight(last_day + timedelta(days=1), tz))


async def summarize(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    window: Window,
) -> dict[str, Any]:
    """Counts of matching public requests per ward (every current ward) and per service."""
    counts = await window_counts(
        conn,
        jurisdiction.pk,
        start=window.start,
        end=window.end,
        statuses=filters.statuses,
        service_codes=filters.service_codes,
    )
    by_ward_id = counts.by_ward_id
    wards: list[dict[str, Any]] = []
    if jurisdiction.ward_set_id is not None:
        wards = [
            {"code": area.code, "name": area.name, "count": by_ward_id.pop(area.pk, 0)}
            for area in await area_names(conn, jurisdiction.ward_set_id)
        ]
    counted = {c.service_code: (c.service_name, c.count) for c in counts.by_service}
    services = [
        {"service_code": s.code, "service_name": s.name, "count": counted.pop(s.code, ("", 0))[1]}
        for s in catalog.services
    ]
    # Requests of services no longer in the catalogue still count.
    services += [
        {"service_code": code, "service_name": name, "count": n}
        for code, (name, n) in sorted(counted.items())
    ]
    tz = jurisdiction.tz
    first_day, last_day = window.days(tz)
    return {
        "window": {
            "start_date": first_day.isoformat(),
            "end_date": last_day.isoformat(),
            "start": format_w3c(window.start, tz),
            "end": format_w3c(window.end, tz),
        },
        "statuses": filters.statuses or list(STATUSES),
        "service_codes": filters.service_codes,
        "total": sum(s["count"] for s in services),
        "by_ward": wards,
        # Requests without a ward of the current set (no location, or outside every ward).
        "outside_wards": sum(by_ward_id.values()),
        "by_service": services,
    }
