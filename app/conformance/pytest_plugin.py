"""A pytest plugin: ``pytest --open311-url URL`` turns each conformance check into a test.

Loaded through the ``pytest11`` entry point (``open311_conformance``) of the installed package,
or explicitly with ``-p app.conformance.pytest_plugin``. Without ``--open311-url`` it only
registers its options and markers, so it never changes another test suite.

Each check is a test item marked with its level (``open311_fail``, ``open311_warn``,
``open311_info``) and its suite (``open311_suite_core`` ...); select with ``-m``. The whole run
happens once, at the first item; an item fails when its check FAILs (or WARNs, with
``--open311-strict``), is skipped when its check could not be tested, and passes otherwise
(WARN and INFO findings are attached to the report as a section).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.conformance.checks import SUITES, Check
from app.conformance.rules import Level

MARKERS = {
    Level.FAIL: "open311_fail",
    Level.WARN: "open311_warn",
    Level.INFO: "open311_info",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options (inert unless --open311-url is given)."""
    group = parser.getgroup("open311", "Open311 GeoReport v2 conformance")
    group.addoption("--open311-url", default=None, help="base URL of a GeoReport v2 endpoint")
    group.addoption("--open311-api-key", default=None, help="also run the POST checks")
    group.addoption("--open311-jurisdiction-id", default=None, help="sent with every call")
    group.addoption(
        "--open311-suite",
        action="append",
        default=[],
        help=f"also run this suite ({', '.join(SUITES[1:])}); repeatable",
    )
    group.addoption("--open311-only", action="append", default=[], help="check name or glob")
    group.addoption("--open311-skip", action="append", default=[], help="check name or glob")
    group.addoption("--open311-strict", action="store_true", help="WARN fails the test too")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (always, so --strict-markers never trips on them)."""
    for level, name in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: an Open311 conformance check of level {level}")
    for suite in SUITES:
        config.addinivalue_line(
            "markers", f"open311_suite_{suite}: an Open311 conformance check of suite {suite}"
        )


class ConformanceRun:
    """The one run of the selected checks, done at the first item that needs it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report: Any = None

    def result(self, name: str) -> Any:
        """The result of one check (running everything the first time)."""
        if self.report is None:
            from app.conformance.runner import run_conformance

            option = self.config.getoption
            self.report = asyncio.run(
                run_conformance(
                    option("--open311-url"),
                    api_key=option("--open311-api-key"),
                    jurisdiction_id=option("--open311-jurisdiction-id"),
                    suites=option("--open311-suite"),
                    only=option("--open311-only"),
                    skip=option("--open311-skip"),
                    strict=option("--open311-strict"),
                )
            )
        return self.report.result(name)


class ConformanceItem(pytest.Item):
    """One conformance check as a test."""

    def __init__(self, *, check: Check, run: ConformanceRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.run = run
        self.add_marker(MARKERS[check.level])
        self.add_marker(f"open311_suite_{check.suite}")
        self.user_properties.append(("level", check.level.value))
        self.user_properties.append(("citation", check.rule.citation))

    def runtest(self) -> None:
        """Fail, skip or pass as the check did."""
        from app.conformance.runner import Outcome

        result = self.run.result(self.check.name)
        self.user_properties.append(("outcome", result.outcome.value))
        if result.findings:
            self.add_report_section("call", "open311 findings", "\n".join(result.problems))
        strict = self.config.getoption("--open311-strict")
        if result.outcome is Outcome.skipped:
            pytest.skip(f"not tested: {result.message}")
        if result.outcome is Outcome.failed or (strict and result.outcome is Outcome.warned):
            raise ConformanceFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The findings, not a traceback."""
        if isinstance(excinfo.value, ConformanceFailure):
            result = excinfo.value.result
            return "\n".join(
                [f"{result.outcome.value} {result.name}: {result.citation}", *result.problems]
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """Where the test comes from, for pytest's output."""
        return "open311-conformance", None, self.check.name


class ConformanceFailure(Exception):
    """A check failed."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.message)
        self.result = result


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With --open311-url: one item per selected check, after the collected tests."""
    if not config.getoption("--open311-url"):
        return
    from app.conformance.runner import select

    try:
        chosen = select(
            config.getoption("--open311-suite"),
            config.getoption("--open311-only"),
            config.getoption("--open311-skip"),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    run = ConformanceRun(config)
    for check in chosen:
        items.append(
            ConformanceItem.from_parent(
                session, name=f"open311::{check.name}", check=check, run=run
            )
        )
