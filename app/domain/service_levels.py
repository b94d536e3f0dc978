"""Service levels: a service's targets (acknowledge, resolve) and the due instants they give.

A target is a kind, a whole amount and a unit; its due instant comes from the jurisdiction's
``BusinessCalendar`` (``app.domain.business_calendar`` states the conventions). No database:
the catalogue import reads targets with ``parse_service_levels``, intake stores
``expected_datetime``.

Catalogue format (one CSV cell, or a JSON string):

    acknowledge=1 business_day; resolve=5 business_days

Entries are separated by ``;`` (or ``,``); each is ``KIND=AMOUNT UNIT`` with KIND
``acknowledge`` or ``resolve``, AMOUNT a whole number from 1, and UNIT ``business_days``,
``business_hours``, ``calendar_hours`` or ``calendar_days`` (singular or plural, ``_`` or a
space, any case). Each kind at most once; an empty cell means no targets. JSON may also give
an object, ``{"acknowledge": "1 business_day", "resolve": "24 calendar_hours"}``.
``format_service_levels`` writes the canonical string back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.business_calendar import BusinessCalendar, require_aware
from app.domain.problems import ProblemsError

# Longest service-levels text read (checked before any parsing).
MAX_TEXT = 200


class TargetKind(StrEnum):
    """What a target promises: a first response, or the request closed."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class Unit(StrEnum):
    """How a target's amount is counted."""

    BUSINESS_DAYS = "business_days"
    BUSINESS_HOURS = "business_hours"
    CALENDAR_HOURS = "calendar_hours"
    CALENDAR_DAYS = "calendar_days"


# The largest amount of each unit: a year, so a due instant is bounded work to compute.
MAX_AMOUNT = {
    Unit.BUSINESS_DAYS: 366,
    Unit.BUSINESS_HOURS: 366 * 24,
    Unit.CALENDAR_HOURS: 366 * 24,
    Unit.CALENDAR_DAYS: 366,
}

_ENTRY = re.compile(
    r"\s*(?P<kind>[a-z]+)\s*=\s*(?P<rest>.*?)\s*",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    r"(?P<amount>\d{1,6})\s+(?P<scale>business|calendar)[ _](?P<unit>day|hour)s?",
    re.IGNORECASE,
)


class ServiceLevelError(ProblemsError, ValueError):
    """Service levels that cannot be read; ``problems`` says what is wrong with each."""


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    """One target: e.g. resolve within 5 business days."""

    kind: TargetKind
    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TargetKind(self.kind))
        object.__setattr__(self, "unit", Unit(self.unit))
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ServiceLevelError([f"{self.kind}: the amount is a whole number"])
        limit = MAX_AMOUNT[self.unit]
        if not 1 <= self.amount <= limit:
            raise ServiceLevelError([f"{self.kind}: {self.unit} runs from 1 to {limit}"])

    def __str__(self) -> str:
        return f"{self.kind}={self.amount} {self.unit_text}"

    @property
    def unit_text(self) -> str:
        """The unit as written after the amount (``1 business_day``, ``5 business_days``)."""
        return self.unit if self.amount != 1 else self.unit.removesuffix("s")

    def due_at(self, requested_at: datetime, calendar: BusinessCalendar) -> datetime:
        """The instant (UTC) this target falls due for a request made at ``requested_at``."""
        match self.unit:
            case Unit.BUSINESS_DAYS:
                return calendar.add_business_days(requested_at, self.amount)
            case Unit.BUSINESS_HOURS:
                return calendar.add_business_time(requested_at, timedelta(hours=self.amount))
            case Unit.CALENDAR_HOURS:
                return calendar.add_calendar_time(requested_at, timedelta(hours=self.amount))
            case Unit.CALENDAR_DAYS:
                return calendar.add_calendar_time(requested_at, timedelta(days=self.amount))


def _parse_amount(kind_text: str, text: str, problems: list[str]) -> ServiceLevel | None:
    kind_name = kind_text.lower()
    if kind_name not in {kind.value for kind in TargetKind}:
        problems.append(f"{kind_text!r}: a target is acknowledge or resolve")
        return None
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        problems.append(
            f"{kind_name}: {text!r} is not an amount and unit (e.g. 5 business_days; units "
            + ", ".join(Unit)
            + ")"
        )
        return None
    unit = Unit(f"{match['scale'].lower()}_{match['unit'].lower()}s")
    try:
        return ServiceLevel(TargetKind(kind_name), int(match["amount"]), unit)
    except ServiceLevelError as exc:
        problems.extend(exc.problems)
        return None


def parse_service_levels(value: str | Mapping[str, object] | None) -> tuple[ServiceLevel, ...]:
    """Targets from a catalogue cell or JSON value (module docstring), acknowledge first."""
    problems: list[str] = []
    levels: list[ServiceLevel] = []
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ServiceLevelError([f"service levels are longer than {MAX_TEXT} characters"])
        for entry in filter(None, (part.strip() for part in re.split(r"[;,]", value))):
            match = _ENTRY.fullmatch(entry)
            if match is None:
                problems.append(f"{entry!r} is not KIND=AMOUNT UNIT (e.g. resolve=5 business_days)")
                continue
            level = _parse_amount(match["kind"], match["rest"], problems)
            if level is not None:
                levels.append(level)
    elif isinstance(value, Mapping):
        if len(value) > len(TargetKind):
            raise ServiceLevelError(["service levels name acknowledge and resolve at most"])
        for kind_text, text in value.items():
            if not isinstance(kind_text, str) or not isinstance(text, str):
                problems.append(f"{kind_text!r}: a target is a string like '5 business_days'")
                continue
            if len(text) > MAX_TEXT:
                problems.append(f"{kind_text!r}: longer than {MAX_TEXT} characters")
                continue
            level = _parse_amount(kind_text, text, problems)
            if level is not None:
                levels.append(level)
    else:
        raise ServiceLevelError(["service levels are a string or an object"])
    if not problems:
        try:
            return check_service_levels(levels)
        except ServiceLevelError as exc:
            problems.extend(exc.problems)
    raise ServiceLevelError(problems)


def check_service_levels(levels: Iterable[ServiceLevel]) -> tuple[ServiceLevel, ...]:
    """Targets in order (acknowledge first), each kind at most once, consistent if comparable."""
    by_kind: dict[TargetKind, ServiceLevel] = {}
    problems: list[str] = []
    for level in levels:
        if level.kind in by_kind:
            problems.append(f"{level.kind} is given more than once")
        by_kind[level.kind] = level
    acknowledge = by_kind.get(TargetKind.ACKNOWLEDGE)
    resolve = by_kind.get(TargetKind.RESOLVE)
    if (
        acknowledge is not None
        and resolve is not None
        and acknowledge.unit == resolve.unit
        and acknowledge.amount > resolve.amount
    ):
        problems.append(f"{acknowledge} is later than {resolve}")
    if problems:
        raise ServiceLevelError(problems)
    return tuple(by_kind[kind] for kind in TargetKind if kind in by_kind)


def format_service_levels(levels: Iterable[ServiceLevel]) -> str:
    """The canonical text of targets (``parse_service_levels`` reads it back)."""
    return "; ".join(str(level) for level in check_service_levels(levels))


def target(levels: Iterable[ServiceLevel], kind: TargetKind) -> ServiceLevel | None:
    """The target of one kind, if the service has one."""
    return next((level for level in levels if level.kind == kind), None)


def due_at(
    requested_at: datetime,
    levels: Iterable[ServiceLevel],
    calendar: BusinessCalendar,
    kind: TargetKind,
) -> datetime | None:
    """When the target of ``kind`` falls due (UTC), or None without such a target."""
    level = target(levels, kind)
    return None if level is None else level.due_at(requested_at, calendar)


def expected_datetime(
    requested_at: datetime, levels: Iterable[ServiceLevel], calendar: BusinessCalendar
) -> datetime | None:
    """GeoReport's ``expected_datetime``: when the resolve target falls due (UTC), if any."""
    return due_at(requested_at, levels, calendar, TargetKind.RESOLVE)


def is_overdue(
    expected_at: datetime | None, now: datetime, closed_at: datetime | None = None
) -> bool:
    """Whether a request still open at ``now`` is past its due instant (due itself is on time)."""
    if expected_at is None or closed_at is not None:
        return False
    return require_aware(now, "now") > require_aware(expected_at, "expected_at")


def closed_within_target(expected_at: datetime | None, closed_at: datetime) -> bool | None:
    """Whether a closed request met its due instant (None when it had no target)."""
    if expected_at is None:
        return None
    return require_aware(closed_at, "closed_at") <= require_aware(expected_at, "expected_at")
