"""The results of a conformance run: each check's outcome and findings, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from app.conformance.rules import Finding, Level


class Outcome(StrEnum):
    """How a check ended: its worst finding's level, PASS, or SKIP (not tested)."""

    passed = "PASS"
    failed = "FAIL"
    warned = "WARN"
    info = "INFO"
    skipped = "SKIP"


OUTCOME_OF = {Level.FAIL: Outcome.failed, Level.WARN: Outcome.warned, Level.INFO: Outcome.info}


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, message, findings (one per root cause) and duration."""

    name: str
    outcome: Outcome
    message: str
    findings: tuple[Finding, ...] = ()
    seconds: float = 0.0
    level: Level = Level.FAIL  # the level of the rule the check is about
    citation: str = ""
    suite: str = "core"

    @property
    def problems(self) -> tuple[str, ...]:
        """Each finding as one line: ``[FAIL] rule: message (×3, e.g. where)``."""
        return tuple(f"[{f.level}] {f.rule.id}: {f.line()}" for f in self.findings)

    def line(self) -> str:
        """The printed line: ``PASS  services.fields  22 services``."""
        message = " ".join(self.message.split())
        return f"{self.outcome.value}  {self.name}  {message}"


@dataclass
class Report:
    """All results of one run."""

    base_url: str
    results: list[CheckResult] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0
    strict: bool = False
    suites: tuple[str, ...] = ("core",)

    def count(self, outcome: Outcome) -> int:
        """How many checks ended this way."""
        return sum(r.outcome is outcome for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks with a FAIL finding (or a crash)."""
        return [r for r in self.results if r.outcome is Outcome.failed]

    @property
    def not_tested(self) -> list[CheckResult]:
        """The checks that could not be judged, with their reasons."""
        return [r for r in self.results if r.outcome is Outcome.skipped]

    def result(self, name: str) -> CheckResult:
        """The result of the check with this name."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        """``N passed, N failed, N warned, N info, N not tested``."""
        return (
            f"{self.count(Outcome.passed)} passed, {self.count(Outcome.failed)} failed, "
            f"{self.count(Outcome.warned)} warned, {self.count(Outcome.info)} info, "
            f"{self.count(Outcome.skipped)} not tested"
        )

    @property
    def exit_code(self) -> int:
        """1 when a check failed (or, with ``strict``, warned), else 0."""
        bad = {Outcome.failed, Outcome.warned} if self.strict else {Outcome.failed}
        return 1 if any(r.outcome in bad for r in self.results) else 0
