"""W3C-DTF parsing and formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.georeport.datetimes import EARLIEST, LATEST, format_w3c, parse_w3c, shift, to_utc

TORONTO = ZoneInfo("America/Toronto")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T19:07:00Z", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05T14:07:00-05:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05T14:07-05:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05T21:07:00 02:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05T21:07:00+0200", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05T19:07:00.123456789Z", datetime(2024, 3, 5, 19, 7, 0, 123456, tzinfo=UTC)),
        ("2024-07-01", datetime(2024, 7, 1, 4, 0, tzinfo=UTC)),
        # RFC 3339's space for T, also with an unencoded '+' that arrived as a space.
        ("2024-03-05 14:07:00-05:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05 19:07:00Z", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05 21:07:00 02:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05 21:07 02:00", datetime(2024, 3, 5, 19, 7, tzinfo=UTC)),
        ("2024-03-05 19:07:00.5z", datetime(2024, 3, 5, 19, 7, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse(text: str, expected: datetime) -> None:
    assert parse_w3c(text, TORONTO) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-05T19:07:00",
        "2024-13-05T19:07:00Z",
        "yesterday",
        "",
        "2024-03-05T25:00:00Z",
        "2024-03-05T10:00:00+24:00",
        # The space form without a zone names no instant either.
        "2024-03-05 19:07:00",
        "2024-03-05 19:07",
        # Two separators, or the offset's space doubled.
        "2024-03-05  19:07:00Z",
        "2024-03-05T 19:07:00Z",
        "2024-03-05 T19:07:00Z",
        "2024-03-05 19:07:00  02:00",
        # An offset needs a time.
        "2024-03-05 +02:00",
        "2024-03-05 02:00",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_w3c(text)


def test_date_only_can_be_refused() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_w3c("2024-03-05", allow_date_only=False)


def test_format_in_zone() -> None:
    instant = datetime(2024, 1, 15, 17, 30, 5, 999, tzinfo=UTC)
    assert format_w3c(instant, TORONTO) == "2024-01-15T12:30:05-05:00"
    assert format_w3c(instant, timezone(timedelta(hours=2))) == "2024-01-15T19:30:05+02:00"
    assert format_w3c(datetime(2024, 7, 15, 12, tzinfo=UTC), TORONTO).endswith("-04:00")


def test_bounds_beyond_the_representable_range_saturate() -> None:
    # Valid W3C datetimes that Python cannot express in UTC, or shift by a window.
    assert to_utc(parse_w3c("0001-01-01T00:00:00+05:00")) == EARLIEST
    assert to_utc(parse_w3c("9999-12-31T23:00:00-05:00")) == LATEST
    assert to_utc(parse_w3c("2024-03-05T10:00:00+02:00")) == datetime(2024, 3, 5, 8, tzinfo=UTC)
    assert shift(to_utc(parse_w3c("9999-12-31")), timedelta(days=90)) == LATEST
    assert shift(to_utc(parse_w3c("0001-01-01")), -timedelta(days=90)) == EARLIEST
    assert shift(EARLIEST, timedelta(days=1)) == datetime(1, 1, 2, tzinfo=UTC)
