"""GET requests: the query string read once into the typed filters the domain takes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.api.schemas import PAGE_MAX, PAGE_SIZE_MAX
from app.domain.requests import decode_cursor, split_list, with_default_window
from app.errors import InvalidParameter
from app.georeport.datetimes import parse_w3c, shift, to_utc
from app.georeport.models import STATUSES
from app.georeport.params import Parameters
from app.models.requests import RequestFilters
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
