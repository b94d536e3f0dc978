"""How a GeoReport call's parameters are read: one rule for every route, body or query string.

* An empty (or blank) value is the same as no value (spec digest §1.6).
* A list parameter (``service_code``, ``status``, ``media_url``, ...) takes every value given,
  repeated or comma-separated (§12 #10): :meth:`Parameters.every`.
* A single-valued parameter given more than once must say the same thing each time: the same
  value repeated counts once, two different values are a 400 naming the parameter
  (:meth:`Parameters.one`). The same rule as a single-valued attribute posted twice.
  Neither the first nor the last value silently wins, so no proxy, cache or client that
  reads the other occurrence can disagree with this server about what was asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import InvalidParameter
from app.messages import Text


def ambiguous(name: str) -> str:
    """The problem of a single-valued parameter given twice with different values."""
    return Text("{name} was given more than once with different values.", name=name)


def one(name: str, values: Sequence[str], problems: list[str] | None = None) -> str | None:
    """The value of a single-valued parameter among its ``values`` (None when absent).

    Two different non-empty values are a problem: added to ``problems`` when given (the
    first value is then returned, so the caller may go on collecting), else raised as a 400.
    """
    found: str | None = None
    for value in values:
        if value.strip() == "":
            continue
        if found is None:
            found = value
        elif value != found:
            if problems is None:
                raise InvalidParameter(ambiguous(name))
            problems.append(ambiguous(name))
            break
    return found


def single(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of a single-valued parameter among (name, value) ``pairs`` (raises a 400
    when given twice with different values)."""
    return one(name, [value for key, value in pairs if key == name])


class Parameters:
    """The parameters of one call, decoded once: every (name, value) pair in order, and
    every value of a name."""

    __slots__ = ("_by_name", "pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        by_name: dict[str, list[str]] = {}
        for key, value in pairs:
            by_name.setdefault(key, []).append(value)
        self._by_name = by_name

    def one(self, name: str, problems: list[str] | None = None) -> str | None:
        """A single-valued parameter (see the module docstring)."""
        values = self._by_name.get(name)
        return one(name, values, problems) if values else None

    def every(self, name: str) -> list[str]:
        """Every value of a list parameter, in order (empty ones included)."""
        return self._by_name.get(name, [])

    def grouped(self) -> dict[str, list[str]]:
        """Name -> every value (a copy)."""
        return {name: list(values) for name, values in self._by_name.items()}
