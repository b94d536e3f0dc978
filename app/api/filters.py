"""GET requests: the query string read once into the typed filters the domain takes."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from app.api.schemas import PAGE_MAX, PAGE_SIZE_MAX
from app.domain.requests import decode_cursor, search_words, split_list, with_default_window
from app.errors import InvalidParameter
from app.geo.points import check_lat_long
from app.georeport.datetimes import parse_w3c, shift, to_utc
from app.georeport.models import STATUSES
from app.georeport.params import Parameters
from app.models.requests import BoundingBox, Circle, RequestFilters
from app.settings import RequestsSettings

_DATES = (
    ("start_date", "start"),
    ("end_date", "end"),
    ("updated_after", "updated_after"),
    ("updated_before", "updated_before"),
)


def wants_extensions(value: str | None) -> bool:
    """``extensions=true`` (also 1 or all) asks for extension fields such as the ward."""
    return value is not None and value.strip().lower() in ("true", "1", "all")


def _whole(
    name: str, query: Parameters, top: int, problems: list[str], *, zero: int | None = None
) -> int | None:
    """A whole-number parameter in [1, top] (``zero``: what 0 stands for, if allowed).

    Documented as an integer, so an empty value is refused rather than "not given"."""
    values = query.every(name)
    if not values:
        return None
    text = query.one(name, problems)
    if text is None or any(not value.strip() for value in values):
        problems.append(f"{name} must be a whole number from 1 to {top}.")
        return None
    text = text.strip()
    # isascii(): isdigit() alone also accepts digits such as "²" that int() refuses.
    if not (text.isascii() and text.isdigit()):
        problems.append(f"{name} must be a whole number from 1 to {top}.")
        return None
    if text == "0" and zero is not None:
        return zero
    number = int(text)
    if not 1 <= number <= top:
        problems.append(f"{name} must be a whole number from 1 to {top}.")
        return None
    return number


def _bounded(name: str, values: list[str], top: int, problems: list[str]) -> list[str]:
    # Every list is bounded (at max_results values, distinct ones kept in order), so no query
    # comes near SQLite's limit of bound parameters, whatever the URL holds.
    distinct = list(dict.fromkeys(split_list(values)))
    if len(distinct) > top:
        problems.append(f"{name} may list at most {top} values.")
    return distinct


def _decimal(name: str, text: str, problems: list[str]) -> float | None:
    try:
        value = float(text.strip()) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.append(f"{name} must be a decimal number, got {text[:40]!r}.")
        return None
    return value


def parse_where(
    query: Parameters, limits: RequestsSettings, problems: list[str]
) -> tuple[BoundingBox | None, Circle | None]:
    """``bbox=minLong,minLat,maxLong,maxLat`` and ``lat`` + ``long`` + ``radius`` (metres),
    checked and bounded (coordinates in range, the box's sides and the radius capped)."""
    box = circle = None
    text = query.one("bbox", problems)
    if text is not None:
        parts = text.split(",")
        values = [_decimal("bbox", part, problems) for part in parts] if len(parts) == 4 else []
        if len(parts) != 4:
            problems.append("bbox must be four decimal numbers: minLong,minLat,maxLong,maxLat.")
        elif all(v is not None for v in values):
            west, south, east, north = (float(v) for v in values if v is not None)
            bad = check_lat_long(south, west) + check_lat_long(north, east)
            if bad:
                problems.append(
                    "bbox must be minLong,minLat,maxLong,maxLat in decimal degrees (WGS84): "
                    "longitudes from -180 to 180, latitudes from -90 to 90."
                )
            elif west > east or south > north:
                problems.append(
                    "bbox must be minLong,minLat,maxLong,maxLat with minLong <= maxLong and "
                    "minLat <= maxLat (a box across the antimeridian is two queries)."
                )
            elif max(east - west, north - south) > limits.bbox_max_span_deg:
                problems.append(
                    f"bbox is too large: each side at most {limits.bbox_max_span_deg:g} degrees."
                )
            else:
                box = BoundingBox(west, south, east, north)
    given = {name: query.one(name, problems) for name in ("lat", "long", "radius")}
    if any(v is not None for v in given.values()):
        if any(v is None for v in given.values()):
            problems.append("lat, long and radius (metres) must be given together.")
            return box, None
        lat = _decimal("lat", given["lat"] or "", problems)
        lon = _decimal("long", given["long"] or "", problems)
        radius = _decimal("radius", given["radius"] or "", problems)
        if lat is not None and lon is not None:
            bad = check_lat_long(lat, lon)
            problems.extend(bad)
            if radius is not None and not 0 < radius <= limits.radius_max_m:
                problems.append(
                    f"radius must be a distance in metres above 0 and at most "
                    f"{limits.radius_max_m:g}."
                )
            elif radius is not None and not bad:
                circle = Circle(lat, lon, radius)
    return box, circle


def parse_nearby(query: Parameters) -> tuple[str, float, float, bool]:
    """GET requests/nearby: ``service_code``, ``lat`` and ``long`` (all required) and
    ``extensions``; all problems at once in one 400."""
    problems: list[str] = []
    extensions = wants_extensions(query.one("extensions", problems))
    code = query.one("service_code", problems)
    if code is None:
        problems.append("service_code is required: the service of the report about to be filed.")
    texts = query.one("lat", problems), query.one("long", problems)
    lat = lon = None
    if texts[0] is None or texts[1] is None:
        problems.append("lat and long are required (decimal degrees, WGS84).")
    else:
        lat = _decimal("lat", texts[0], problems)
        lon = _decimal("long", texts[1], problems)
        if lat is not None and lon is not None:
            problems.extend(check_lat_long(lat, lon))
    if problems or code is None or lat is None or lon is None:
        raise InvalidParameter(*problems)
    return code.strip(), lat, lon, extensions


def parse_text(
    query: Parameters, limits: RequestsSettings, problems: list[str]
) -> list[str] | None:
    """``q``: its words (letters and digits), bounded in length and count."""
    text = query.one("q", problems)
    if text is None:
        return None
    if len(text) > limits.q_max_length:
        problems.append(f"q is too long: at most {limits.q_max_length} characters.")
        return None
    words = search_words(text)
    if not words:
        problems.append("q must hold at least one word (letters or digits).")
    elif len(words) > limits.q_max_words:
        problems.append(f"q may hold at most {limits.q_max_words} words.")
    return words


# The parameters that page GET requests: an export has no pages.
PAGING = ("page", "page_size", "cursor")


def parse_filters(
    query: Parameters, tz: Any, limits: RequestsSettings, *, export: bool = False
) -> RequestFilters:
    """Validate GET requests parameters; all problems at once in one 400.

    ``export``: the filters of an export (``GET exports/requests``): no paging parameters
    (refused), and no default window: without dates, every request matches."""
    problems: list[str] = []
    filters = RequestFilters(extensions=wants_extensions(query.one("extensions", problems)))
    top = limits.max_results
    if export:
        problems.extend(
            f"{name} does not apply to an export: it streams every matching request."
            for name in PAGING
            if query.every(name)
        )
    # At most the documented maximum too, whatever max_results allows without page_size.
    filters.page_size = _whole("page_size", query, min(top, PAGE_SIZE_MAX), problems)
    # page is 1-based; page=0 means the first page too (spec digest §10.1).
    filters.page = _whole("page", query, PAGE_MAX, problems, zero=1) or 1
    cursor = query.one("cursor", problems)
    if cursor is not None:
        try:
            filters.cursor = decode_cursor(cursor.strip())
        except ValueError:
            problems.append("cursor is not a cursor given by this server (X-Next-Cursor).")
    ids = _bounded("service_request_id", query.every("service_request_id"), top, problems)
    codes = _bounded("service_code", query.every("service_code"), top, problems)
    wards = _bounded("ward", query.every("ward"), top, problems)
    filters.service_codes = codes or None
    # A ward code with a NUL matches nothing: PostgreSQL text can neither hold nor take one.
    filters.wards = [w for w in wards if "\x00" not in w] if wards else None
    statuses = [s.lower() for s in split_list(query.every("status"))]
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        problems.append(f"status must be open or closed (comma-separated), got {bad[0][:40]!r}.")
    filters.statuses = sorted(set(statuses)) or None
    filters.bbox, filters.near = parse_where(query, limits, problems)
    filters.words = parse_text(query, limits, problems)
    for name, attr in _DATES:
        text = query.one(name, problems)
        if text is None:
            continue
        try:
            parsed = to_utc(parse_w3c(text, tz))
        except ValueError:
            problems.append(
                f"{name} must be a W3C datetime with a time zone, e.g. 2024-03-05T14:07:00-05:00."
            )
            continue
        if attr in ("end", "updated_before") and "." not in text:
            # Times are shown in whole seconds but stored finer: an upper bound given in whole
            # seconds covers that whole second, so a request is found by the time it shows.
            parsed = shift(parsed, timedelta(microseconds=999_999))
        setattr(filters, attr, parsed)
    if filters.start and filters.end and filters.end < filters.start:
        problems.append("end_date must not be before start_date.")
    if (
        filters.updated_after
        and filters.updated_before
        and filters.updated_before < filters.updated_after
    ):
        problems.append("updated_before must not be before updated_after.")
    if problems:
        raise InvalidParameter(*problems)
    if ids:
        # The ids override every other filter, which are still checked above: a malformed
        # parameter is a 400 whatever else the query holds. Our ids are integers; anything
        # else cannot exist and is simply absent.
        filters.ids = [int(i) for i in ids if i.isascii() and i.isdigit() and len(i) <= 18]
        return filters
    return filters if export else with_default_window(filters, limits)
