"""Property tests of business calendars: real and generated ones, instants around DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.domain.business_calendar import (
    EXAMPLE_CALENDARS,
    BusinessCalendar,
    Closure,
    PublicHolidays,
    Span,
    format_hours,
    local_to_utc,
    parse_hours,
)

ZONES = [ZoneInfo("America/Toronto"), ZoneInfo("America/Chicago")]
MICROSECOND = timedelta(microseconds=1)


def _local(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


FIXED = [BusinessCalendar.from_config(config) for config in EXAMPLE_CALENDARS.values()] + [
    BusinessCalendar(
        "America/Toronto",
        parse_hours("Mon-Fri 08:30-12:00,13:00-16:30"),
        PublicHolidays("CA", "ON", also=("Civic Holiday",)),
        closed_dates=frozenset({date(2026, 1, 15), date(2018, 3, 12)}),
        closures=(
            Closure(_local(ZONES[0], 2026, 1, 22, 12), _local(ZONES[0], 2026, 1, 23, 10)),
            Closure(_local(ZONES[0], 2018, 11, 2, 15), _local(ZONES[0], 2018, 11, 5, 9)),
        ),
    ),
    BusinessCalendar("America/Toronto", parse_hours("Mon-Sun 00:00-24:00")),
    BusinessCalendar(
        "America/Chicago",
        parse_hours("Mon-Fri 07:00-19:00; Sat 09:00-13:00; Sun 01:30-02:30"),
        PublicHolidays("US", "IL"),
    ),
]

# Instants near what makes calendars hard: DST changes and holidays of both years.
LANDMARKS = [
    _local(zone, *fields)
    for zone in ZONES
    for fields in [
        (2018, 3, 11, 2),
        (2018, 11, 4, 1),
        (2026, 3, 8, 2),
        (2026, 11, 1, 1),
        (2018, 3, 30, 12),
        (2018, 8, 6, 12),
        (2018, 12, 25, 12),
        (2026, 4, 3, 12),
        (2026, 7, 3, 12),
        (2026, 12, 28, 12),
        (2026, 1, 15, 12),
    ]
]
EARLIEST = datetime(2017, 6, 1, tzinfo=UTC)
LATEST = datetime(2027, 6, 1, tzinfo=UTC)

instants = st.one_of(
    st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(LANDMARKS),
        st.integers(-4 * 86400, 4 * 86400),
    ),
    st.integers(int(EARLIEST.timestamp()), int(LATEST.timestamp())).map(
        lambda seconds: datetime.fromtimestamp(seconds, UTC)
    ),
).map(lambda instant: instant.astimezone(ZONES[instant.second % 2]))  # any offset, same instant


@st.composite
def _week(draw: st.DrawFn) -> tuple[tuple[Span, ...], ...]:
    days = []
    for _ in range(7):
        # Half-hour boundaries, so spans start and end inside the DST gap and repeated hour too.
        points = sorted(draw(st.sets(st.integers(0, 48), max_size=6)))
        points = points[: len(points) // 2 * 2]
        days.append(
            tuple(Span(a * 30, b * 30) for a, b in zip(points[::2], points[1::2], strict=True))
        )
    assume(any(days))
    return tuple(days)


@st.composite
def _generated(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    public = draw(st.sampled_from([None, PublicHolidays("CA", "ON"), PublicHolidays("US", "IL")]))
    closures = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.sampled_from(LANDMARKS)) + timedelta(minutes=draw(st.integers(-5000, 5000)))
        closures.append(Closure(start, start + timedelta(minutes=draw(st.integers(1, 4000)))))
    closed = draw(st.frozensets(st.sampled_from([lm.date() for lm in LANDMARKS]), max_size=3))
    return BusinessCalendar(zone.key, draw(_week()), public, closed, tuple(closures))


calendars = st.one_of(st.sampled_from(FIXED), _generated())
business_durations = st.integers(0, 10 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))
PROPERTY = settings(max_examples=150, deadline=None)


def _on_business_time(calendar: BusinessCalendar, instant: datetime) -> bool:
    """Open at ``instant``, or the end of an interval of open time (a closing)."""
    if calendar.is_open(instant):
        return True
    day = calendar.local_date(instant - MICROSECOND)
    return any(end == instant for _, end in calendar.day_intervals(day))


def _business_day_of(calendar: BusinessCalendar, instant: datetime) -> date:
    """The business day whose open time holds ``instant`` (or closes at it)."""
    if calendar.is_open(instant):
        return calendar.local_date(instant)
    return calendar.local_date(instant - MICROSECOND)


@PROPERTY
@given(calendars, instants, instants, business_durations)
def test_a_later_start_is_never_due_earlier(
    calendar: BusinessCalendar, first: datetime, second: datetime, duration: timedelta
) -> None:
    # Sorted as instants (aware datetimes sharing a tzinfo compare as wall-clock times).
    first, second = sorted(instant.astimezone(UTC) for instant in (first, second))
    assert calendar.add_business_time(first, duration) <= calendar.add_business_time(
        second, duration
    )
    days = duration.days % 12 + 1
    assert calendar.add_business_days(first, days) <= calendar.add_business_days(second, days)
    hours = timedelta(hours=duration.seconds // 3600)
    assert calendar.add_calendar_time(first, hours) <= calendar.add_calendar_time(second, hours)


@PROPERTY
@given(calendars, instants, business_durations, business_durations)
def test_business_time_adds_up(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    step = calendar.add_business_time(calendar.add_business_time(start, first), second)
    assert step == calendar.add_business_time(start, first + second)


@PROPERTY
@given(calendars, instants, business_durations)
def test_business_time_is_due_on_business_time(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    assume(duration)
    due = calendar.add_business_time(start, duration)
    assert due.tzinfo is UTC
    assert due > start
    assert _on_business_time(calendar, due)
    day = _business_day_of(calendar, due)
    assert not calendar.is_holiday(day)
    assert calendar.is_business_day(day)
    assert calendar.business_time_between(start, due) == duration


@PROPERTY
@given(calendars, instants, instants, instants)
def test_business_time_between_adds_up(
    calendar: BusinessCalendar, first: datetime, second: datetime, third: datetime
) -> None:
    a, b, c = sorted(instant.astimezone(UTC) for instant in (first, second, third))
    between = calendar.business_time_between
    assert between(a, c) == between(a, b) + between(b, c)
    assert timedelta(0) <= between(a, c) <= c - a
    assert between(c, a) == -between(a, c)


@PROPERTY
@given(calendars, instants)
def test_the_clock_starts_at_the_instant_only_when_open(
    calendar: BusinessCalendar, instant: datetime
) -> None:
    # In UTC: == between zones is False for an instant in a repeated hour (PEP 495).
    instant = instant.astimezone(UTC)
    start = calendar.clock_start(instant)
    assert start >= instant
    assert calendar.is_open(start)
    assert (start == instant) == calendar.is_open(instant)
    assert calendar.business_time_between(instant, start) == timedelta(0)


@PROPERTY
@given(calendars, instants, st.integers(1, 12))
def test_business_days_land_on_the_nth_business_day(
    calendar: BusinessCalendar, requested: datetime, days: int
) -> None:
    due = calendar.add_business_days(requested, days)
    start = calendar.clock_start(requested)
    day = calendar.local_date(start)
    following = [day]
    while len(following) <= days:
        following.append(calendar.next_business_day(following[-1]))
    assert due.tzinfo is UTC
    assert due > requested
    assert _on_business_time(calendar, due)
    if start == calendar.day_intervals(day)[0][0]:
        # A whole business day ahead: the close of the (n-1)-th business day after.
        assert due == calendar.day_intervals(following[-2])[-1][1]
        return
    target = following[-1]
    assert _business_day_of(calendar, due) == target
    assert not calendar.is_holiday(target)
    # The same wall-clock time, when that time is open on the due day.
    local = start.astimezone(calendar.zone)
    if not local.fold:
        same_time = local_to_utc(datetime.combine(target, local.time()), calendar.zone)
        if calendar.is_open(same_time) and calendar.local_date(same_time) == target:
            assert due == same_time


@PROPERTY
@given(instants, st.integers(0, 24 * 400))
def test_calendar_hours_are_real_seconds(requested: datetime, hours: int) -> None:
    calendar = FIXED[0]
    due = calendar.add_calendar_time(requested, timedelta(hours=hours))
    assert due.tzinfo is UTC
    assert due.timestamp() - requested.timestamp() == hours * 3600


@PROPERTY
@given(st.sampled_from(ZONES), st.sampled_from(LANDMARKS), st.integers(0, 6 * 3600 // 60))
def test_local_wall_clock_resolves_in_order(
    zone: ZoneInfo, landmark: datetime, minutes: int
) -> None:
    # Walking wall-clock times a minute apart around a change never goes back in time.
    wall = datetime.combine(landmark.astimezone(zone).date(), time()) + timedelta(minutes=minutes)
    here = local_to_utc(wall, zone)
    later = local_to_utc(wall + timedelta(minutes=1), zone)
    assert here <= later
    assert later - here <= timedelta(hours=1, minutes=1)


@given(_week())
def test_hours_text_round_trips(week: tuple[tuple[Span, ...], ...]) -> None:
    assert parse_hours(format_hours(week)) == week
