"""Errors that list every problem found (a file or a value is read whole, not stopped at the
first problem), for the caller to show them all."""

from __future__ import annotations


class ProblemsError(Exception):
    """An error with its ``problems``, one text each; its message joins them with '; '."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
