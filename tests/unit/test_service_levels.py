"""Service-level targets: the catalogue format, due instants on Toronto's calendar, overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.business_calendar import EXAMPLE_CALENDARS, BusinessCalendar
from app.domain.service_levels import (
    MAX_AMOUNT,
    ServiceLevel,
    ServiceLevelError,
    TargetKind,
    Unit,
    closed_within_target,
    due_at,
    expected_datetime,
    format_service_levels,
    is_overdue,
    parse_service_levels,
)

TORONTO_TZ = ZoneInfo("America/Toronto")
TORONTO = BusinessCalendar.from_config(EXAMPLE_CALENDARS["toronto.ca"])
ACK = TargetKind.ACKNOWLEDGE
RESOLVE = TargetKind.RESOLVE


def toronto(*fields: int) -> datetime:
    """A Toronto wall-clock instant."""
    return datetime(*fields, tzinfo=TORONTO_TZ)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "acknowledge=1 business_day; resolve=5 business_days",
            (
                ServiceLevel(ACK, 1, Unit.BUSINESS_DAYS),
                ServiceLevel(RESOLVE, 5, Unit.BUSINESS_DAYS),
            ),
        ),
        ("resolve=24 calendar_hours", (ServiceLevel(RESOLVE, 24, Unit.CALENDAR_HOURS),)),
        (
            " Resolve = 10 Calendar Days , ACKNOWLEDGE=4 business hours ",
            (
                ServiceLevel(ACK, 4, Unit.BUSINESS_HOURS),
                ServiceLevel(RESOLVE, 10, Unit.CALENDAR_DAYS),
            ),
        ),
        ("", ()),
        (" ; ", ()),
        (None, ()),
        (
            {"acknowledge": "1 business_day", "resolve": "24 calendar_hours"},
            (
                ServiceLevel(ACK, 1, Unit.BUSINESS_DAYS),
                ServiceLevel(RESOLVE, 24, Unit.CALENDAR_HOURS),
            ),
        ),
        ({}, ()),
    ],
)
def test_parse(value: str | dict[str, object] | None, expected: tuple[ServiceLevel, ...]) -> None:
    assert parse_service_levels(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("resolve=5 days", "not an amount and unit"),
        ("resolve=5 hours", "not an amount and unit"),
        ("resolve 5 business_days", "not KIND=AMOUNT UNIT"),
        ("close=5 business_days", "acknowledge or resolve"),
        ("resolve=0 business_days", "from 1 to 366"),
        ("resolve=367 business_days", "from 1 to 366"),
        ("resolve=9000 calendar_hours", "from 1 to 8784"),
        ("resolve=1.5 business_days", "not an amount and unit"),
        ("resolve=-1 business_days", "not an amount and unit"),
        ("resolve=1 business_day; resolve=2 business_days", "more than once"),
        ("acknowledge=3 business_days; resolve=2 business_days", "later than"),
        ("resolve=5 business_days;" * 10, "longer than 200"),
        ({"resolve": 5}, "a target is a string"),
        ({"acknowledge": "1 business_day", "resolve": "2 business_days", "x": "1"}, "at most"),
        (["resolve=1 business_day"], "a string or an object"),
    ],
)
def test_bad_levels_are_refused(value: object, message: str) -> None:
    with pytest.raises(ServiceLevelError, match=message):
        parse_service_levels(value)  # type: ignore[arg-type]


def test_every_problem_is_reported() -> None:
    with pytest.raises(ServiceLevelError) as caught:
        parse_service_levels("acknowledge=0 business_days; resolve=5 weeks; fix=1 business_day")
    assert len(caught.value.problems) == 3


def test_a_level_checks_its_own_fields() -> None:
    with pytest.raises(ServiceLevelError):
        ServiceLevel(RESOLVE, True, Unit.BUSINESS_DAYS)
    with pytest.raises(ValueError, match="weeks"):
        ServiceLevel(RESOLVE, 1, "weeks")  # type: ignore[arg-type]
    assert ServiceLevel("resolve", 2, "business_hours") == ServiceLevel(  # type: ignore[arg-type]
        RESOLVE, 2, Unit.BUSINESS_HOURS
    )


def test_format_is_canonical() -> None:
    levels = parse_service_levels("resolve = 5 Business Days, acknowledge=1 business days")
    assert format_service_levels(levels) == "acknowledge=1 business_day; resolve=5 business_days"


@given(
    st.lists(
        st.builds(
            ServiceLevel,
            st.sampled_from(TargetKind),
            st.integers(1, min(MAX_AMOUNT.values())),
            st.sampled_from(Unit),
        ),
        max_size=2,
        unique_by=lambda level: level.kind,
    )
)
def test_format_round_trips(levels: list[ServiceLevel]) -> None:
    levels.sort(key=lambda level: list(TargetKind).index(level.kind))
    try:
        text = format_service_levels(levels)
    except ServiceLevelError:
        return  # acknowledge later than resolve in one unit: refused either way
    assert parse_service_levels(text) == tuple(levels)


# -- due instants -----------------------------------------------------------------------------


def test_expected_datetime_of_a_toronto_request() -> None:
    levels = parse_service_levels("acknowledge=1 business_day; resolve=5 business_days")
    # Friday 3 August 2018 at 15:00; Monday the 6th is the Civic Holiday.
    requested = toronto(2018, 8, 3, 15)
    assert due_at(requested, levels, TORONTO, ACK) == toronto(2018, 8, 7, 15)
    assert expected_datetime(requested, levels, TORONTO) == toronto(2018, 8, 13, 15)
    assert expected_datetime(requested, levels[:1], TORONTO) is None


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("resolve=4 business_hours", toronto(2018, 11, 5, 10, 30)),
        ("resolve=1 business_day", toronto(2018, 11, 5, 14, 30)),
        ("resolve=24 calendar_hours", toronto(2018, 11, 3, 14, 30)),
        ("resolve=3 calendar_days", toronto(2018, 11, 5, 13, 30)),  # the clocks fell back
    ],
)
def test_each_unit_over_the_2018_fall_back_weekend(text: str, due: datetime) -> None:
    requested = toronto(2018, 11, 2, 14, 30)  # Friday, EDT
    result = expected_datetime(requested, parse_service_levels(text), TORONTO)
    assert result == due
    assert result is not None
    assert result.tzinfo is UTC


def test_overdue_and_closed_within_target() -> None:
    due = datetime(2026, 3, 3, 21, 30, tzinfo=UTC)
    assert not is_overdue(due, due)
    assert is_overdue(due, due + timedelta(microseconds=1))
    assert not is_overdue(due, due + timedelta(days=9), closed_at=due + timedelta(days=1))
    assert not is_overdue(None, due)
    assert closed_within_target(due, due)
    assert not closed_within_target(due, due + timedelta(seconds=1))
    assert closed_within_target(None, due) is None
    # Any offset compares as the instant it is.
    assert not is_overdue(due, due.astimezone(TORONTO_TZ))
