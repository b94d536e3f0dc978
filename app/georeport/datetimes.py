"""W3C-DTF (ISO 8601 profile) datetimes, as GeoReport v2 requires."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# The one parser of datetimes from input (query parameters, form fields, attribute values,
# demo and partner data). Between date and time: ``T``, ``t`` or one space (RFC 3339 section
# 5.6 allows a space; clients send ``2026-12-05 00:00:00-06:00``).
_W3C = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"(?P<zone>[Zz]|[+\- ]\d{2}:?\d{2}))?$"
)


def parse_w3c(text: str, local_tz: tzinfo = UTC, *, allow_date_only: bool = True) -> datetime:
    """An aware datetime from a W3C-DTF string; a zone designator is mandatory with a time.

    ``YYYY-MM-DD`` means local midnight of ``local_tz``. The date and the time may be separated
    by ``T`` or one space (RFC 3339). A space in the offset position is read as ``+`` (an
    unencoded ``+`` in a query string decodes to a space), also after a space separator:
    ``2026-12-05 00:00:00 06:00`` is ``+06:00``. Still refused, because no instant follows
    from them: a time without a zone, two spaces or a ``T`` and a space in a row, an offset
    without a time. Raises ``ValueError``.
    """
    match = _W3C.match(text.strip())
    if match is None:
        raise ValueError(text)
    day = date.fromisoformat(match["date"])
    if match["time"] is None:
        if not allow_date_only:
            raise ValueError(text)
        return datetime.combine(day, time(0, 0), local_tz)
    clock = match["time"]
    if len(clock) == 5:
        clock += ":00"
    if "." in clock:
        main, frac = clock.split(".")
        clock = f"{main}.{frac[:6].ljust(6, '0')}"
    zone = match["zone"]
    if zone in ("Z", "z"):
        suffix = "+00:00"
    else:
        sign = "+" if zone[0] in "+ " else "-"
        digits = zone[1:].replace(":", "")
        suffix = f"{sign}{digits[:2]}:{digits[2:]}"
    parsed = datetime.fromisoformat(f"{day.isoformat()}T{clock}{suffix}")
    offset = parsed.utcoffset()
    if offset is None or abs(offset.total_seconds()) >= 24 * 3600:
        raise ValueError(text)
    return parsed


def format_w3c(value: datetime, tz: tzinfo) -> str:
    """``YYYY-MM-DDThh:mm:ss±hh:mm`` in the given zone, whole seconds."""
    return value.astimezone(tz).isoformat(timespec="seconds")


# The representable range, in UTC: bounds beyond it saturate instead of overflowing.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a valid W3C time that UTC cannot express saturates."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 5000 else LATEST


def shift(value: datetime, delta: timedelta) -> datetime:
    """``value + delta``, saturating at the ends of the representable range."""
    try:
        return value + delta
    except OverflowError:
        return EARLIEST if delta < timedelta(0) else LATEST
