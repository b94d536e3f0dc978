"""Business calendars on real dates: Ontario and Illinois holidays, DST weekends, closures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.domain.business_calendar import (
    EXAMPLE_CALENDARS,
    BusinessCalendar,
    CalendarError,
    Closure,
    PublicHolidays,
    Span,
    format_hours,
    local_to_utc,
    parse_closure,
    parse_hours,
)

TORONTO_TZ = ZoneInfo("America/Toronto")
CHICAGO_TZ = ZoneInfo("America/Chicago")
TORONTO = BusinessCalendar.from_config(EXAMPLE_CALENDARS["toronto.ca"])
CHICAGO = BusinessCalendar.from_config(EXAMPLE_CALENDARS["cityofchicago.org"])
# Round the clock, no holidays: open time is real time.
TORONTO_24_7 = BusinessCalendar("America/Toronto", parse_hours("Mon-Sun 00:00-24:00"))
LUNCH = BusinessCalendar(
    "America/Toronto",
    parse_hours("Mon-Fri 08:30-12:00,13:00-16:30"),
    PublicHolidays("CA", "ON", also=("Civic Holiday",)),
)
HOUR = timedelta(hours=1)


def toronto(*fields: int) -> datetime:
    """A Toronto wall-clock instant."""
    return datetime(*fields, tzinfo=TORONTO_TZ)  # type: ignore[misc]


def chicago(*fields: int) -> datetime:
    """A Chicago wall-clock instant."""
    return datetime(*fields, tzinfo=CHICAGO_TZ)  # type: ignore[misc]


# -- holidays ---------------------------------------------------------------------------------

ONTARIO_CLOSED = [
    # 2018
    date(2018, 1, 1),  # New Year's Day
    date(2018, 2, 19),  # Family Day
    date(2018, 3, 30),  # Good Friday
    date(2018, 5, 21),  # Victoria Day
    date(2018, 7, 2),  # Canada Day (Sunday the 1st), observed Monday: added by "also"
    date(2018, 8, 6),  # Civic Holiday: "optional" in the library, added by "also"
    date(2018, 9, 3),  # Labour Day
    date(2018, 10, 8),  # Thanksgiving
    date(2018, 12, 25),  # Christmas Day
    date(2018, 12, 26),  # Boxing Day
    # 2026
    date(2026, 1, 1),
    date(2026, 2, 16),
    date(2026, 4, 3),
    date(2026, 5, 18),
    date(2026, 7, 1),
    date(2026, 8, 3),
    date(2026, 9, 7),
    date(2026, 10, 12),
    date(2026, 12, 25),
    date(2026, 12, 28),  # Boxing Day (Saturday the 26th), observed Monday
]
# Ontario days that are not closed in the ON public calendar: Easter Monday, Remembrance Day
# (and its observed Monday), the federal Truth and Reconciliation day.
ONTARIO_OPEN = [
    date(2018, 4, 2),
    date(2018, 11, 12),
    date(2026, 4, 6),
    date(2026, 9, 30),
    date(2026, 11, 11),
]


@pytest.mark.parametrize("day", ONTARIO_CLOSED)
def test_ontario_holidays_are_closed(day: date) -> None:
    assert TORONTO.is_holiday(day)
    assert not TORONTO.is_business_day(day)
    assert not TORONTO.is_open(toronto(day.year, day.month, day.day, 10))


@pytest.mark.parametrize("day", ONTARIO_OPEN)
def test_other_ontario_observances_are_business_days(day: date) -> None:
    assert not TORONTO.is_holiday(day)
    assert TORONTO.is_open(toronto(day.year, day.month, day.day, 10))


def test_the_library_files_the_civic_holiday_and_canada_day_observed_outside_public() -> None:
    # Why EXAMPLE_CALENDARS names them in "also": without it both are business days.
    plain = BusinessCalendar("America/Toronto", parse_hours("Mon-Fri 08:30-16:30"))
    plain_on = BusinessCalendar(
        "America/Toronto", parse_hours("Mon-Fri 08:30-16:30"), PublicHolidays("CA", "ON")
    )
    for day in (date(2018, 8, 6), date(2026, 8, 3), date(2018, 7, 2)):
        assert plain.is_business_day(day)
        assert plain_on.is_business_day(day)
    assert not plain_on.is_business_day(date(2018, 7, 1))  # a Sunday anyway


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        # The business day before each Ontario holiday, 10:00 -> the next business day, 10:00.
        (toronto(2018, 2, 16, 10), toronto(2018, 2, 20, 10)),  # Family Day
        (toronto(2018, 3, 29, 10), toronto(2018, 4, 2, 10)),  # Good Friday (Easter Monday open)
        (toronto(2018, 5, 18, 10), toronto(2018, 5, 22, 10)),  # Victoria Day
        (toronto(2018, 6, 29, 10), toronto(2018, 7, 3, 10)),  # Canada Day observed
        (toronto(2018, 8, 3, 10), toronto(2018, 8, 7, 10)),  # Civic Holiday
        (toronto(2018, 8, 31, 10), toronto(2018, 9, 4, 10)),  # Labour Day
        (toronto(2018, 10, 5, 10), toronto(2018, 10, 9, 10)),  # Thanksgiving
        (toronto(2018, 12, 24, 10), toronto(2018, 12, 27, 10)),  # Christmas, Boxing Day
        (toronto(2025, 12, 31, 10), toronto(2026, 1, 2, 10)),  # New Year's Day
        (toronto(2026, 2, 13, 10), toronto(2026, 2, 17, 10)),
        (toronto(2026, 4, 2, 10), toronto(2026, 4, 6, 10)),
        (toronto(2026, 5, 15, 10), toronto(2026, 5, 19, 10)),
        (toronto(2026, 6, 30, 10), toronto(2026, 7, 2, 10)),
        (toronto(2026, 7, 31, 10), toronto(2026, 8, 4, 10)),
        (toronto(2026, 9, 4, 10), toronto(2026, 9, 8, 10)),
        (toronto(2026, 10, 9, 10), toronto(2026, 10, 13, 10)),
        (toronto(2026, 12, 24, 10), toronto(2026, 12, 29, 10)),  # 25th, weekend, 28th observed
    ],
)
def test_one_business_day_skips_ontario_holidays(requested: datetime, due: datetime) -> None:
    result = TORONTO.add_business_days(requested, 1)
    assert result == due
    assert result.tzinfo is UTC


def test_five_business_days_over_christmas_and_new_year_2018() -> None:
    # Thursday 20 December 2018, 11:15: Fri 21, Mon 24, (25, 26 closed) Thu 27, Fri 28, Mon 31.
    assert TORONTO.add_business_days(toronto(2018, 12, 20, 11, 15), 5) == toronto(
        2018, 12, 31, 11, 15
    )
    # One more day passes New Year's Day.
    assert TORONTO.add_business_days(toronto(2018, 12, 20, 11, 15), 6) == toronto(
        2019, 1, 2, 11, 15
    )


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        (chicago(2018, 1, 12, 9), chicago(2018, 1, 16, 9)),  # Martin Luther King Jr. Day
        (chicago(2018, 3, 2, 9), chicago(2018, 3, 6, 9)),  # Casimir Pulaski Day
        (chicago(2018, 5, 25, 9), chicago(2018, 5, 29, 9)),  # Memorial Day
        (chicago(2018, 7, 3, 9), chicago(2018, 7, 5, 9)),  # Independence Day
        (chicago(2018, 11, 21, 9), chicago(2018, 11, 23, 9)),  # Thanksgiving
        (chicago(2026, 6, 18, 9), chicago(2026, 6, 22, 9)),  # Juneteenth (Friday)
        (chicago(2026, 7, 2, 9), chicago(2026, 7, 6, 9)),  # Independence Day observed Friday
    ],
)
def test_one_business_day_skips_illinois_holidays(requested: datetime, due: datetime) -> None:
    assert CHICAGO.add_business_days(requested, 1) == due


# -- the clock start and the conventions ----------------------------------------------------


def test_intake_after_hours_is_due_at_the_close_of_the_next_business_day() -> None:
    monday_evening = toronto(2026, 3, 2, 20)
    assert TORONTO.clock_start(monday_evening) == toronto(2026, 3, 3, 8, 30)
    assert TORONTO.add_business_days(monday_evening, 1) == toronto(2026, 3, 3, 16, 30)
    assert TORONTO.add_business_days(monday_evening, 5) == toronto(2026, 3, 9, 16, 30)
    # At the opening instant a whole day is still ahead; a minute later it is the next day's.
    assert TORONTO.add_business_days(toronto(2026, 3, 3, 8, 30), 1) == toronto(2026, 3, 3, 16, 30)
    assert TORONTO.add_business_days(toronto(2026, 3, 3, 8, 31), 1) == toronto(2026, 3, 4, 8, 31)
    # Closing time is closed (spans are half-open).
    assert not TORONTO.is_open(toronto(2026, 3, 3, 16, 30))
    assert TORONTO.add_business_days(toronto(2026, 3, 3, 16, 30), 1) == toronto(2026, 3, 4, 16, 30)


def test_weekend_intake_starts_on_monday() -> None:
    saturday = toronto(2026, 3, 14, 11)
    assert TORONTO.add_business_time(saturday, 4 * HOUR) == toronto(2026, 3, 16, 12, 30)
    assert TORONTO.add_business_days(saturday, 1) == toronto(2026, 3, 16, 16, 30)


def test_business_hours_carry_over_to_the_next_business_day() -> None:
    # Friday 14:30 + 4 business hours: 2 on Friday, 2 on Monday.
    assert TORONTO.add_business_time(toronto(2026, 3, 13, 14, 30), 4 * HOUR) == toronto(
        2026, 3, 16, 10, 30
    )
    # Ending exactly at closing is due at the close, not at the next opening.
    assert TORONTO.add_business_time(toronto(2026, 3, 13, 12, 30), 4 * HOUR) == toronto(
        2026, 3, 13, 16, 30
    )


def test_several_spans_a_day() -> None:
    monday_11 = toronto(2026, 3, 2, 11)
    assert LUNCH.add_business_time(monday_11, 2 * HOUR) == toronto(2026, 3, 2, 14)
    assert not LUNCH.is_open(toronto(2026, 3, 2, 12, 30))
    assert LUNCH.clock_start(toronto(2026, 3, 2, 12, 30)) == toronto(2026, 3, 2, 13)
    assert LUNCH.add_business_days(toronto(2026, 3, 2, 12, 30), 1) == toronto(2026, 3, 3, 13)
    assert LUNCH.business_time_between(toronto(2026, 3, 2), toronto(2026, 3, 3)) == 7 * HOUR
    assert LUNCH.add_business_days(toronto(2018, 8, 3, 11), 1) == toronto(2018, 8, 7, 11)


def test_business_time_between() -> None:
    # A week of 2018 with Christmas and Boxing Day: three 8-hour days.
    week = TORONTO.business_time_between(toronto(2018, 12, 24), toronto(2018, 12, 31))
    assert week == 24 * HOUR
    assert TORONTO.business_time_between(toronto(2018, 12, 31), toronto(2018, 12, 24)) == -week
    assert TORONTO.business_time_between(toronto(2018, 12, 24, 10), toronto(2018, 12, 24, 9)) == (
        -HOUR
    )
    assert TORONTO.business_time_between(toronto(2018, 12, 25), toronto(2018, 12, 27)) == (
        timedelta(0)
    )


# -- daylight saving time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "zone", "friday", "monday"),
    [
        (TORONTO, TORONTO_TZ, date(2018, 3, 9), date(2018, 3, 12)),  # spring forward
        (TORONTO, TORONTO_TZ, date(2018, 11, 2), date(2018, 11, 5)),  # fall back
        (TORONTO, TORONTO_TZ, date(2026, 3, 6), date(2026, 3, 9)),
        (TORONTO, TORONTO_TZ, date(2026, 10, 30), date(2026, 11, 2)),
        (CHICAGO, CHICAGO_TZ, date(2018, 3, 9), date(2018, 3, 12)),
        (CHICAGO, CHICAGO_TZ, date(2018, 11, 2), date(2018, 11, 5)),
        (CHICAGO, CHICAGO_TZ, date(2026, 3, 6), date(2026, 3, 9)),
        (CHICAGO, CHICAGO_TZ, date(2026, 10, 30), date(2026, 11, 2)),
    ],
)
def test_business_time_keeps_wall_clock_across_a_dst_weekend(
    calendar: BusinessCalendar, zone: ZoneInfo, friday: date, monday: date
) -> None:
    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)

    assert at(friday, 12).utcoffset() != at(monday, 12).utcoffset()
    assert calendar.add_business_days(at(friday, 10), 1) == at(monday, 10)
    assert calendar.add_business_time(at(friday, 14, 30), 4 * HOUR) == at(monday, 10, 30)
    assert calendar.business_time_between(at(friday, 12), at(monday, 12)) == 8 * HOUR
    # The real time between them is 72 hours less or plus the hour the clocks moved.
    # (Aware datetimes sharing a tzinfo subtract as wall-clock times: compare in UTC.)
    real = at(monday, 12).astimezone(UTC) - at(friday, 12).astimezone(UTC)
    assert abs(real - 72 * HOUR) == HOUR


def test_calendar_hours_are_real_time_across_dst() -> None:
    saturday_noon = toronto(2026, 3, 7, 12)  # 17:00Z; clocks spring forward Sunday 02:00
    due = TORONTO.add_calendar_time(saturday_noon, 24 * HOUR)
    assert due == datetime(2026, 3, 8, 17, tzinfo=UTC)
    assert due.astimezone(TORONTO_TZ).hour == 13
    autumn = TORONTO.add_calendar_time(toronto(2026, 10, 31, 12), 24 * HOUR)
    assert autumn.astimezone(TORONTO_TZ).hour == 11


def test_round_the_clock_days_of_23_and_25_hours() -> None:
    spring, autumn = date(2026, 3, 8), date(2026, 11, 1)
    assert TORONTO_24_7.business_time_between(toronto(2026, 3, 8), toronto(2026, 3, 9)) == (
        23 * HOUR
    )
    assert TORONTO_24_7.business_time_between(toronto(2026, 11, 1), toronto(2026, 11, 2)) == (
        25 * HOUR
    )
    assert len(TORONTO_24_7.day_intervals(spring)) == 1
    assert len(TORONTO_24_7.day_intervals(autumn)) == 1
    # A business day is the same time of day on the next day; 24 business hours are real hours.
    assert TORONTO_24_7.add_business_days(toronto(2026, 3, 7, 12), 1) == toronto(2026, 3, 8, 12)
    assert TORONTO_24_7.add_business_time(toronto(2026, 3, 7, 12), 24 * HOUR) == toronto(
        2026, 3, 8, 13
    )
    assert TORONTO_24_7.add_business_days(toronto(2026, 10, 31, 12), 1) == toronto(2026, 11, 1, 12)


def test_wall_clock_times_in_the_gap_and_the_repeated_hour() -> None:
    # 02:30 on 8 March 2026 does not exist in Toronto: the jump's instant (03:00 EDT, 07:00Z).
    assert local_to_utc(datetime(2026, 3, 8, 2, 30), TORONTO_TZ) == datetime(
        2026, 3, 8, 7, tzinfo=UTC
    )
    assert local_to_utc(datetime(2026, 3, 8, 3), TORONTO_TZ) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    # 01:30 on 1 November 2026 happens twice: the first (EDT, 05:30Z).
    assert local_to_utc(datetime(2026, 11, 1, 1, 30), TORONTO_TZ) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    # A span inside the gap has no open time that day.
    night = BusinessCalendar("America/Toronto", parse_hours("Sun 02:00-03:00"))
    assert night.day_intervals(date(2026, 3, 8)) == ()
    assert night.business_time_between(toronto(2026, 11, 1), toronto(2026, 11, 2)) == HOUR


# -- local closures -------------------------------------------------------------------------


def test_a_snow_day_and_an_early_closing() -> None:
    snowy = BusinessCalendar(
        "America/Toronto",
        parse_hours("Mon-Fri 08:30-16:30"),
        PublicHolidays("CA", "ON"),
        closed_dates=frozenset({date(2026, 1, 15)}),
        closures=(
            Closure(toronto(2026, 1, 22, 12), toronto(2026, 1, 22, 16, 30), "early closing"),
        ),
    )
    assert snowy.add_business_days(toronto(2026, 1, 14, 10), 1) == toronto(2026, 1, 16, 10)
    assert snowy.add_business_time(toronto(2026, 1, 22, 10), 4 * HOUR) == toronto(
        2026, 1, 23, 10, 30
    )
    # Due on the short day after its last closing: that closing.
    assert snowy.add_business_days(toronto(2026, 1, 21, 14), 1) == toronto(2026, 1, 22, 12)
    assert snowy.business_time_between(toronto(2026, 1, 12), toronto(2026, 1, 24)) == (
        timedelta(hours=8 * 8 + 3.5)
    )


def test_closures_parse_and_merge() -> None:
    assert parse_closure("2026-01-15", TORONTO_TZ) == date(2026, 1, 15)
    closure = parse_closure("2026-01-22T12:00/2026-01-22T16:30", TORONTO_TZ, "storm")
    assert closure == Closure(toronto(2026, 1, 22, 12), toronto(2026, 1, 22, 16, 30))
    offset = parse_closure("2026-01-22T17:00Z/2026-01-22 21:30+00:00", TORONTO_TZ)
    assert offset == closure
    calendar = BusinessCalendar.from_config(
        {
            "timezone": "America/Toronto",
            "hours": "Mon-Fri 08:30-16:30",
            "closures": [
                "2026-01-15",
                {"when": "2026-01-22T12:00/2026-01-22T14:00", "reason": "storm"},
                "2026-01-22T13:00/2026-01-22T16:30",
            ],
        }
    )
    assert calendar.closures == (
        Closure(toronto(2026, 1, 22, 12), toronto(2026, 1, 22, 16, 30), "storm"),
    )
    assert BusinessCalendar.from_config(calendar.to_config()) == calendar
    for bad in ("2026-13-01", "yesterday", "2026-01-22T14:00/2026-01-22T12:00", "x" * 101):
        with pytest.raises(CalendarError):
            parse_closure(bad, TORONTO_TZ)


# -- configuration --------------------------------------------------------------------------


def test_hours_text_round_trips() -> None:
    week = parse_hours("mon-thu 08:30-12:00, 13:00-16:30; Fri 08:30-12:00; Sun 00:00-24:00")
    assert week[0] == (Span(510, 720), Span(780, 990))
    assert week[4] == (Span(510, 720),)
    assert week[5] == ()
    assert week[6] == (Span(0, 1440),)
    assert format_hours(week) == (
        "Mon-Thu 08:30-12:00,13:00-16:30; Fri 08:30-12:00; Sun 00:00-24:00"
    )
    assert parse_hours(format_hours(week)) == week


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Mon-Fri",
        "Mon-Fri 8:30-16:30",
        "Mon-Fri 16:30-08:30",
        "Mon-Fri 08:30-24:30",
        "Mon-Fri 08:60-16:00",
        "Fri-Mon 08:30-16:30",
        "Mon-Fri 08:30-16:30; Fri 18:00-20:00",
        "Mon 08:00-12:00,11:00-13:00",
        "Lun 08:30-16:30",
        "Mon 08:30-16:30;" * 40,
    ],
)
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(CalendarError):
        parse_hours(text)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timezone": "Mars/Olympus", "hours": "Mon 09:00-17:00"}, "time zone"),
        ({"timezone": "../etc/passwd", "hours": "Mon 09:00-17:00"}, "time zone"),
        ({"hours": "Mon 09:00-17:00"}, "timezone"),
        ({"timezone": "UTC", "hours": "Mon 09:00-17:00", "open": True}, "unknown"),
        (
            {"timezone": "UTC", "hours": "Mon 09:00-17:00", "holidays": {"country": "XX"}},
            "public holidays",
        ),
        (
            {
                "timezone": "UTC",
                "hours": "Mon 09:00-17:00",
                "holidays": {"country": "CA", "subdivision": "ZZ"},
            },
            "public holidays",
        ),
        (
            {
                "timezone": "UTC",
                "hours": "Mon 09:00-17:00",
                "holidays": {"country": "CA", "subdivision": "ON", "also": ["Civic Day"]},
            },
            "no holiday named 'Civic Day'",
        ),
        (
            {
                "timezone": "UTC",
                "hours": "Mon 09:00-17:00",
                "holidays": {"country": "US", "categories": ["festive"]},
            },
            "public holidays",
        ),
        ({"timezone": "UTC", "hours": "Mon 09:00-17:00", "closures": ["x"] * 501}, "at most"),
    ],
)
def test_bad_calendars_are_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_config(config)


def test_example_calendars_build_and_round_trip() -> None:
    for config in EXAMPLE_CALENDARS.values():
        calendar = BusinessCalendar.from_config(config)
        assert BusinessCalendar.from_config(calendar.to_config()) == calendar


def test_naive_instants_are_refused() -> None:
    with pytest.raises(CalendarError, match="time zone offset"):
        TORONTO.add_business_days(datetime(2026, 3, 2, 10), 1)
    with pytest.raises(CalendarError, match="time zone offset"):
        TORONTO.business_time_between(toronto(2026, 3, 2), datetime(2026, 3, 3))


def test_a_calendar_that_never_opens_refuses_instead_of_looping() -> None:
    # Open only on New Year's Day, which is a holiday: no open time ever.
    never = BusinessCalendar(
        "America/Toronto",
        parse_hours("Mon-Sun 09:00-17:00"),
        closures=(Closure(toronto(2026, 1, 1), toronto(2036, 1, 1)),),
    )
    with pytest.raises(CalendarError, match="no open time"):
        never.add_business_time(toronto(2026, 3, 2), HOUR)
    with pytest.raises(CalendarError, match="no open time"):
        never.add_business_days(toronto(2026, 3, 2), 1)
    assert never.business_time_between(toronto(2026, 3, 2), toronto(2030, 3, 2)) == timedelta(0)


def test_the_repeated_hours_second_pass_reads_as_its_end() -> None:
    # Sunday 1 November 2026, round the clock: 01:50 EDT (first pass) is before 01:10 EST
    # (second pass), so the second is due no earlier: at 02:00 the next day.
    first_pass = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)
    second_pass = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)
    walls = [
        instant.astimezone(TORONTO_TZ).strftime("%H:%M") for instant in (first_pass, second_pass)
    ]
    assert walls == ["01:50", "01:10"]
    assert TORONTO_24_7.add_business_days(first_pass, 1) == toronto(2026, 11, 2, 1, 50)
    assert TORONTO_24_7.add_business_days(second_pass, 1) == toronto(2026, 11, 2, 2)
    assert TORONTO_24_7.add_business_days(toronto(2026, 11, 1, 2, 30), 1) == toronto(
        2026, 11, 2, 2, 30
    )
