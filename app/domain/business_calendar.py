"""A jurisdiction's business calendar: time zone, weekly hours, public holidays, local closures.

Pure computation (no database, no HTTP): service-level targets (``app.domain.service_levels``)
turn into due instants here. Every instant taken must be aware; every instant returned is UTC.

Conventions (the README's "Service levels" section says the same):

* **Open time.** A local date's open time is its weekday's spans (wall-clock, e.g. 08:30-16:30,
  several a day allowed, ``24:00`` is the next midnight) unless the date is a public holiday of
  the configured ``holidays`` library calendar or a closed date; closure ranges are then cut out.
  Spans are half-open: open at 08:30:00, closed at 16:30:00. A *business day* is a local date
  with some open time left.
* **Clock start.** Intake outside open time starts the clock at the next opening.
* **Business hours.** ``add_business_time(t, d)`` is the earliest instant by which ``d`` of open
  time has passed since ``t``; it is open or exactly a closing time, never past it (4 business
  hours from Friday 14:30 with 08:30-16:30 is Monday 10:30; from 12:30, Friday 16:30).
* **Business days.** ``add_business_days(t, n)`` is the same wall-clock time on the n-th
  business day after the clock start's day ("a call is returned within one business day":
  Tuesday 10:00 is due Wednesday 10:00, Friday 10:00 the next Monday 10:00, past a Monday
  holiday on Tuesday), whatever DST did in between. If that time is not open on the due day,
  the next opening that day is taken, or its last closing if none is left. A clock that starts
  at the day's first opening (so every intake outside open time) has a whole business day
  ahead of it and is due at the *close* of the (n-1)-th business day after (Monday 20:00 →
  clock starts Tuesday 08:30 → 1 business day is Tuesday 16:30): the earliest instant with as
  much business time elapsed as the next morning's opening.
* **Calendar hours and days** are real elapsed time: 24 calendar hours is 86,400 s whatever the
  clocks do, and n calendar days is n x 24 hours (the due wall-clock time moves by an hour
  across a DST change), as the City's "within two business days, or 48 hours where services
  operate on a 24-hour daily cycle" reads.
* **Clock changes.** A wall-clock time that does not exist (in the spring-forward gap) is the
  first instant after the jump; an ambiguous one (repeated at fall-back) is its first
  occurrence, and a clock start during the repeated hour's second pass reads as the hour's end
  (so a later request is never due earlier). Open time is real time: a round-the-clock day of
  23 or 25 hours has 23 or 25 business hours.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# A calendar with no open time this many days in a row has none to give (refused, not looped).
MAX_CLOSED_DAYS = 3 * 366
# Bounds on configuration text and lists (checked before any parsing work).
MAX_HOURS_TEXT = 500
MAX_CLOSURES = 500
MAX_CLOSURE_TEXT = 100
MAX_HOLIDAY_NAMES = 20
# Days of open time kept per calendar (a process touches a few years of dates).
_CACHE_DAYS = 20_000
# Years searched to check that a holiday name of ``PublicHolidays.also`` exists.
_NAME_CHECK_YEARS = range(2000, 2041)

_SPAN = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_DAYS = re.compile(r"([A-Za-z]{3})(?:-([A-Za-z]{3}))?")

Interval = tuple[datetime, datetime]


class CalendarError(ValueError):
    """A business calendar that cannot be built or cannot answer; the message says why."""


def require_aware(instant: datetime, name: str = "instant") -> datetime:
    """The instant in UTC; naive datetimes are refused (their time zone would be a guess)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(f"{name} must carry a time zone offset")
    return instant.astimezone(UTC)


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock time in ``zone`` as UTC: a gap time is the jump's instant, a repeat the first."""
    aware = naive.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive.replace(tzinfo=None, fold=0):
        return utc
    # In the spring-forward gap: fold=1 reads it with the offset after the jump (an instant
    # before the jump), fold=0 with the offset before it (an instant after).
    return _transition(aware.replace(fold=1).astimezone(UTC), utc, zone)


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the one offset change of ``zone`` in ``(before, after]``."""
    # Zone transitions fall on whole seconds: bisect the POSIX seconds.
    after_offset = after.astimezone(zone).utcoffset()
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time of an instant, the second pass of a repeated hour as its end.

    Monotonic (never earlier for a later instant): 01:10 on the second pass of 01:00-02:00
    comes after 01:50 on the first, so the whole second pass reads as 02:00.
    """
    local = instant.astimezone(zone)
    if not local.fold:
        return local.replace(tzinfo=None)
    first_pass = local.replace(fold=0).astimezone(UTC)
    jump = _transition(first_pass, instant.astimezone(UTC), zone)
    before = (jump - timedelta(seconds=1)).astimezone(zone)
    return before.replace(tzinfo=None) + timedelta(seconds=1)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Open from ``start`` to ``end`` minutes after local midnight (end 1440 is 24:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise CalendarError(
                f"a span runs from 00:00 to 24:00 at most and ends after it starts: {self}"
            )

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def length(self) -> timedelta:
        """The span's wall-clock length."""
        return timedelta(minutes=self.end - self.start)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hours: str, minutes: str, text: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY:
        raise CalendarError(f"not a time of day (00:00 to 24:00): {text!r}")
    return value


WeeklyHours = tuple[tuple[Span, ...], ...]


def check_hours(week: Iterable[Iterable[Span]]) -> WeeklyHours:
    """Seven days (Monday first) of sorted, non-overlapping spans, some open time in the week."""
    days = tuple(tuple(sorted(day)) for day in week)
    if len(days) != len(WEEKDAYS):
        raise CalendarError("weekly hours name seven days, Monday first")
    for name, spans in zip(WEEKDAYS, days, strict=True):
        for first, second in pairwise(spans):
            if second.start < first.end:
                raise CalendarError(f"{name}: spans {first} and {second} overlap")
    if not any(days):
        raise CalendarError("weekly hours have no open time")
    return days


def parse_hours(text: str) -> WeeklyHours:
    """Weekly hours from ``"Mon-Fri 08:30-12:00,13:00-16:30; Sat 09:00-12:00"``.

    Groups are separated by ``;``: a day or a day range (``Mon``, ``Mon-Fri``, ``Sat-Sun``;
    English three-letter names, any case) then one or more spans ``HH:MM-HH:MM`` separated by
    ``,``. Days not named are closed; a day named twice is refused. ``24:00`` ends a span at
    the next midnight; ``Mon-Sun 00:00-24:00`` is round the clock.
    """
    if len(text) > MAX_HOURS_TEXT:
        raise CalendarError(f"weekly hours are longer than {MAX_HOURS_TEXT} characters")
    week: list[list[Span] | None] = [None] * len(WEEKDAYS)
    for group in filter(None, (part.strip() for part in text.split(";"))):
        days_text, _, spans_text = group.partition(" ")
        days_match = _DAYS.fullmatch(days_text)
        if days_match is None:
            raise CalendarError(f"not a day or day range (Mon, Mon-Fri): {days_text!r}")
        first = _weekday(days_match.group(1))
        last = _weekday(days_match.group(2)) if days_match.group(2) else first
        if last < first:
            raise CalendarError(f"a day range runs Monday to Sunday: {days_text!r}")
        spans: list[Span] = []
        for span_text in (part.strip() for part in spans_text.split(",")):
            span_match = _SPAN.fullmatch(span_text)
            if span_match is None:
                raise CalendarError(f"not a span (HH:MM-HH:MM): {span_text!r} in {group!r}")
            spans.append(
                Span(
                    _minutes(span_match.group(1), span_match.group(2), span_text),
                    _minutes(span_match.group(3), span_match.group(4), span_text),
                )
            )
        for day in range(first, last + 1):
            if week[day] is not None:
                raise CalendarError(f"{WEEKDAYS[day].title()} is named twice in {text!r}")
            week[day] = list(spans)
    return check_hours(day or [] for day in week)


def _weekday(name: str) -> int:
    try:
        return WEEKDAYS.index(name.lower())
    except ValueError:
        raise CalendarError(f"not a day name (Mon to Sun): {name!r}") from None


def format_hours(week: WeeklyHours) -> str:
    """The text ``parse_hours`` reads back, consecutive days with equal spans as a range."""
    groups: list[str] = []
    day = 0
    while day < len(week):
        last = day
        while last + 1 < len(week) and week[last + 1] == week[day]:
            last += 1
        if week[day]:
            days = WEEKDAYS[day].title()
            if last > day:
                days += "-" + WEEKDAYS[last].title()
            groups.append(f"{days} {','.join(str(span) for span in week[day])}")
        day = last + 1
    return "; ".join(groups)


@dataclass(frozen=True, slots=True)
class PublicHolidays:
    """Closed days from the ``holidays`` library: a country, a subdivision, categories.

    ``also`` names holidays of the library's other categories that the jurisdiction closes on
    too, as the library spells them (``"Civic Holiday"`` is "optional" in Ontario); their
    ``"(observed)"`` days count with them.
    """

    country: str
    subdivision: str | None = None
    categories: tuple[str, ...] = ("public",)
    also: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def _holiday_names(country: str, subdivision: str | None) -> frozenset[str]:
    """Every holiday name the library knows for a place in any category, 2000 to 2040."""
    every = holidays.country_holidays(country, subdiv=subdivision, years=_NAME_CHECK_YEARS)
    every = holidays.country_holidays(
        country,
        subdiv=subdivision,
        categories=type(every).supported_categories,
        years=_NAME_CHECK_YEARS,
    )
    # One date may hold several names, joined by the library with "; ".
    return frozenset(name for joined in every.values() for name in joined.split("; "))


class _HolidayLookup:
    """Whether a local date is a closed holiday (the library computes years on first use)."""

    def __init__(self, spec: PublicHolidays) -> None:
        try:
            self._main = holidays.country_holidays(
                spec.country, subdiv=spec.subdivision, categories=spec.categories
            )
            self._other = (
                holidays.country_holidays(
                    spec.country,
                    subdiv=spec.subdivision,
                    categories=type(self._main).supported_categories,
                )
                if spec.also
                else None
            )
        except (NotImplementedError, ValueError) as exc:
            raise CalendarError(f"public holidays: {exc}") from None
        if len(spec.also) > MAX_HOLIDAY_NAMES:
            raise CalendarError(f"public holidays: at most {MAX_HOLIDAY_NAMES} names in also")
        self._names = frozenset(spec.also) | {f"{name} (observed)" for name in spec.also}
        if self._other is not None:
            unknown = sorted(set(spec.also) - _holiday_names(spec.country, spec.subdivision))
            if unknown:
                raise CalendarError(
                    f"public holidays: {spec.country}"
                    f"{'-' + spec.subdivision if spec.subdivision else ''} has no holiday named "
                    + ", ".join(repr(name) for name in unknown)
                )

    def closed(self, day: date) -> bool:
        if day in self._main:
            return True
        return self._other is not None and not self._names.isdisjoint(self._other.get_list(day))


@dataclass(frozen=True, slots=True, order=True)
class Closure:
    """An operator's closure: UTC ``start`` (inclusive) to ``end`` (exclusive), with a reason."""

    start: datetime
    end: datetime
    reason: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # In UTC: aware datetimes sharing a tzinfo compare (and subtract) as wall-clock times.
        object.__setattr__(self, "start", require_aware(self.start, "closure start"))
        object.__setattr__(self, "end", require_aware(self.end, "closure end"))
        if self.end <= self.start:
            raise CalendarError(f"a closure ends after it starts: {self.start} to {self.end}")


def parse_closure(text: str, zone: ZoneInfo, reason: str = "") -> Closure | date:
    """A closed local date (``2026-01-15``) or range (``2026-01-15T12:00/2026-01-15T16:30``).

    Range ends without an offset are wall-clock times in ``zone``; the end is exclusive.
    """
    if len(text) > MAX_CLOSURE_TEXT:
        raise CalendarError(f"a closure is longer than {MAX_CLOSURE_TEXT} characters")
    text = text.strip()
    try:
        if "/" not in text:
            return date.fromisoformat(text)
        start_text, _, end_text = text.partition("/")
        start, end = (datetime.fromisoformat(part.strip()) for part in (start_text, end_text))
    except ValueError:
        raise CalendarError(
            f"not a closure (YYYY-MM-DD or YYYY-MM-DDTHH:MM/YYYY-MM-DDTHH:MM): {text!r}"
        ) from None

    def utc(value: datetime) -> datetime:
        if value.tzinfo is None:
            return local_to_utc(value, zone)
        return value.astimezone(UTC)

    return Closure(utc(start), utc(end), reason)


def _merge(closures: Iterable[Closure]) -> tuple[Closure, ...]:
    merged: list[Closure] = []
    for closure in sorted(closures):
        if merged and closure.start <= merged[-1].end:
            last = merged[-1]
            if closure.end > last.end:
                merged[-1] = Closure(last.start, closure.end, last.reason)
        else:
            merged.append(closure)
    return tuple(merged)


def _zone(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"not an IANA time zone: {key!r}") from None


@dataclass(frozen=True)
class BusinessCalendar:
    """A jurisdiction's business calendar (see the module docstring for the conventions)."""

    timezone: str
    hours: WeeklyHours
    holidays: PublicHolidays | None = None
    closed_dates: frozenset[date] = frozenset()
    closures: tuple[Closure, ...] = ()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _holidays: _HolidayLookup | None = field(init=False, repr=False, compare=False)
    _days: dict[date, tuple[Interval, ...]] = field(init=False, repr=False, compare=False)
    _closure_ends: tuple[datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "zone", _zone(self.timezone))
        setattr_(self, "hours", check_hours(self.hours))
        if len(self.closures) + len(self.closed_dates) > MAX_CLOSURES:
            raise CalendarError(f"at most {MAX_CLOSURES} closures")
        setattr_(self, "closed_dates", frozenset(self.closed_dates))
        setattr_(self, "closures", _merge(self.closures))
        setattr_(self, "_closure_ends", tuple(c.end for c in self.closures))
        setattr_(self, "_holidays", _HolidayLookup(self.holidays) if self.holidays else None)
        setattr_(self, "_days", {})

    # -- configuration -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BusinessCalendar:
        """A calendar from its JSON form (``to_config``; documented in the README)."""
        unknown = set(config) - {"timezone", "hours", "holidays", "closures"}
        if unknown:
            raise CalendarError(f"unknown calendar keys: {', '.join(sorted(unknown))}")
        timezone = config.get("timezone")
        hours = config.get("hours")
        if not isinstance(timezone, str) or not isinstance(hours, str):
            raise CalendarError("a calendar names its timezone and hours (strings)")
        zone = _zone(timezone)
        spec = config.get("holidays")
        public: PublicHolidays | None = None
        if spec is not None:
            if not isinstance(spec, Mapping) or not isinstance(spec.get("country"), str):
                raise CalendarError("holidays is an object with a country code")
            extra = set(spec) - {"country", "subdivision", "categories", "also"}
            if extra:
                raise CalendarError(f"unknown holidays keys: {', '.join(sorted(extra))}")
            public = PublicHolidays(
                country=spec["country"],
                subdivision=_optional_str(spec.get("subdivision"), "holidays.subdivision"),
                categories=_strings(spec.get("categories", ["public"]), "holidays.categories"),
                also=_strings(spec.get("also", []), "holidays.also"),
            )
        raw_closures = config.get("closures", [])
        if not isinstance(raw_closures, list) or len(raw_closures) > MAX_CLOSURES:
            raise CalendarError(f"closures is a list of at most {MAX_CLOSURES}")
        dates: set[date] = set()
        ranges: list[Closure] = []
        for item in raw_closures:
            text, reason = item, ""
            if isinstance(item, Mapping):
                text, reason = item.get("when"), item.get("reason", "")
            if not isinstance(text, str) or not isinstance(reason, str):
                raise CalendarError('a closure is a string or {"when": string, "reason": string}')
            closure = parse_closure(text, zone, reason)
            if isinstance(closure, Closure):
                ranges.append(closure)
            else:
                dates.add(closure)
        return cls(timezone, parse_hours(hours), public, frozenset(dates), tuple(ranges))

    def to_config(self) -> dict[str, Any]:
        """The JSON form ``from_config`` reads back (closure ranges in UTC)."""
        config: dict[str, Any] = {"timezone": self.timezone, "hours": format_hours(self.hours)}
        if self.holidays is not None:
            config["holidays"] = {
                "country": self.holidays.country,
                "subdivision": self.holidays.subdivision,
                "categories": list(self.holidays.categories),
                "also": list(self.holidays.also),
            }
        closures: list[Any] = [day.isoformat() for day in sorted(self.closed_dates)]
        for closure in self.closures:
            when = f"{closure.start.isoformat()}/{closure.end.isoformat()}"
            closures.append({"when": when, "reason": closure.reason} if closure.reason else when)
        if closures:
            config["closures"] = closures
        return config

    # -- open time -----------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """Whether a local date is a public holiday or a closed date of this calendar."""
        return day in self.closed_dates or (
            self._holidays is not None and self._holidays.closed(day)
        )

    def day_intervals(self, day: date) -> tuple[Interval, ...]:
        """A local date's open time as sorted, disjoint UTC intervals (empty when closed)."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        intervals: tuple[Interval, ...] = ()
        spans = self.hours[day.weekday()]
        if spans and not self.is_holiday(day):
            midnight = datetime.combine(day, time())
            opened = (
                (
                    local_to_utc(midnight + timedelta(minutes=span.start), self.zone),
                    local_to_utc(midnight + timedelta(minutes=span.end), self.zone),
                )
                for span in spans
            )
            intervals = self._cut_closures([(a, b) for a, b in opened if a < b])
        if len(self._days) >= _CACHE_DAYS:
            self._days.clear()
        self._days[day] = intervals
        return intervals

    def _cut_closures(self, intervals: list[Interval]) -> tuple[Interval, ...]:
        if not self.closures or not intervals:
            return tuple(intervals)
        result: list[Interval] = []
        # Closures are merged and sorted: only those ending after the first opening matter.
        first = bisect_right(self._closure_ends, intervals[0][0])
        for start, end in intervals:
            for closure in self.closures[first:]:
                if closure.start >= end:
                    break
                if closure.end <= start:
                    continue
                if closure.start > start:
                    result.append((start, closure.start))
                start = max(start, closure.end)
                if start >= end:
                    break
            if start < end:
                result.append((start, end))
        return tuple(result)

    def local_date(self, instant: datetime) -> date:
        """The local date of an aware instant."""
        return require_aware(instant).astimezone(self.zone).date()

    def is_business_day(self, day: date) -> bool:
        """Whether a local date has open time."""
        return bool(self.day_intervals(day))

    def is_open(self, instant: datetime) -> bool:
        """Whether an aware instant is within open time."""
        instant = require_aware(instant)
        return any(a <= instant < b for a, b in self.day_intervals(self.local_date(instant)))

    def next_business_day(self, day: date) -> date:
        """The first business day after a local date."""
        for _ in range(MAX_CLOSED_DAYS):
            day += timedelta(days=1)
            if self.day_intervals(day):
                return day
        raise CalendarError(f"no open time in the {MAX_CLOSED_DAYS} days after {day}")

    def intervals_from(
        self, instant: datetime, until: datetime | None = None
    ) -> Iterator[Interval]:
        """Open time from an instant on, as UTC intervals in order (clipped at both ends)."""
        instant = require_aware(instant)
        day = self.local_date(instant)
        closed_run = 0
        while until is None or datetime.combine(day, time(), UTC) - timedelta(days=1) < until:
            intervals = self.day_intervals(day)
            closed_run = 0 if intervals else closed_run + 1
            if closed_run > MAX_CLOSED_DAYS and until is None:
                raise CalendarError(f"no open time in the {MAX_CLOSED_DAYS} days before {day}")
            for start, end in intervals:
                if end <= instant:
                    continue
                start = max(start, instant)
                if until is not None:
                    if start >= until:
                        return
                    end = min(end, until)
                yield start, end
            day += timedelta(days=1)

    def clock_start(self, instant: datetime) -> datetime:
        """The instant itself when open, else the next opening (UTC)."""
        for start, _ in self.intervals_from(instant):
            return start
        raise AssertionError("intervals_from never ends without an until")  # pragma: no cover

    # -- durations -----------------------------------------------------------------------

    def add_business_time(self, instant: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which ``duration`` of open time has passed since ``instant``."""
        instant = require_aware(instant)
        if duration < timedelta(0):
            raise CalendarError("a business duration is not negative")
        if not duration:
            return instant
        remaining = duration
        for start, end in self.intervals_from(instant):
            if end - start >= remaining:
                return start + remaining
            remaining -= end - start
        raise AssertionError("intervals_from never ends without an until")  # pragma: no cover

    def add_business_days(self, instant: datetime, days: int) -> datetime:
        """The same time of day on the ``days``-th business day after the clock start's day."""
        if days < 0:
            raise CalendarError("business days are not negative")
        instant = require_aware(instant)
        if not days:
            return instant
        start = self.clock_start(instant)
        day = self.local_date(start)
        opening = self.day_intervals(day)[0][0]
        previous, target = day, day
        for _ in range(days):
            previous, target = target, self.next_business_day(target)
        if start == opening:
            # A whole business day ahead: due when the (days-1)-th one after closes.
            return self.day_intervals(previous)[-1][1]
        time_of_day = _wall_clock(start, self.zone) - datetime.combine(day, time())
        wanted = local_to_utc(datetime.combine(target, time()) + time_of_day, self.zone)
        intervals = self.day_intervals(target)
        for open_at, close_at in intervals:
            if wanted < close_at:
                return max(wanted, open_at)
        return intervals[-1][1]

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Open time from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        start, end = require_aware(start, "start"), require_aware(end, "end")
        if end < start:
            return -self.business_time_between(end, start)
        total = timedelta(0)
        for open_at, close_at in self.intervals_from(start, until=end):
            total += close_at - open_at
        return total

    def add_calendar_time(self, instant: datetime, duration: timedelta) -> datetime:
        """Real elapsed time: ``instant + duration`` in UTC, whatever the clocks do."""
        if duration < timedelta(0):
            raise CalendarError("a calendar duration is not negative")
        return require_aware(instant) + duration


def _optional_str(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise CalendarError(f"{name} is a string")


def _strings(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise CalendarError(f"{name} is a list of strings")


# Illustrative calendars for the demos (not the cities' own published hours): weekday office
# hours and the maintained holiday calendar of the province or state. For Ontario, ``also``
# adds what the library (0.109) leaves out of "public" but the cities close on: the Civic
# Holiday (first Monday of August, filed under "optional"), and Canada Day's observed Monday
# when July 1 is a Sunday (2018, 2029; filed under "government").
EXAMPLE_CALENDARS: dict[str, dict[str, Any]] = {
    "toronto.ca": {
        "timezone": "America/Toronto",
        "hours": "Mon-Fri 08:30-16:30",
        "holidays": {"country": "CA", "subdivision": "ON", "also": ["Civic Holiday", "Canada Day"]},
    },
    "greatersudbury.ca": {
        "timezone": "America/Toronto",
        "hours": "Mon-Fri 08:30-16:30",
        "holidays": {"country": "CA", "subdivision": "ON", "also": ["Civic Holiday", "Canada Day"]},
    },
    "cityofchicago.org": {
        "timezone": "America/Chicago",
        "hours": "Mon-Fri 08:30-16:30",
        "holidays": {"country": "US", "subdivision": "IL"},
    },
}
