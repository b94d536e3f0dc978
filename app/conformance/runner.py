"""Run the checks against a base URL: results, the printed lines, the summary and JUnit XML."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import httpx

from app.conformance.checks import CHECKS, Check
from app.conformance.context import Context, Failure, Options, Skip

USER_AGENT = "open311-conformance/1 (+https://github.com/open311)"


class Outcome(StrEnum):
    """How a check ended."""

    passed = "PASS"
    failed = "FAIL"
    skipped = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, one-line message, every problem found and duration."""

    name: str
    outcome: Outcome
    message: str
    problems: tuple[str, ...] = ()
    seconds: float = 0.0

    def line(self) -> str:
        """The printed line: ``PASS  services.fields  22 services with all 7 fields``."""
        message = " ".join(self.message.split())
        return f"{self.outcome.value}  {self.name}  {message}"


@dataclass
class Report:
    """All results of one run."""

    base_url: str
    results: list[CheckResult] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        """How many checks ended this way."""
        return sum(r.outcome is outcome for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        """The failed checks."""
        return [r for r in self.results if r.outcome is Outcome.failed]

    def result(self, name: str) -> CheckResult:
        """The result of the check with this name."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        """``N passed, N failed, N skipped``."""
        return (
            f"{self.count(Outcome.passed)} passed, {self.count(Outcome.failed)} failed, "
            f"{self.count(Outcome.skipped)} skipped"
        )

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0

    def junit_xml(self) -> bytes:
        """A JUnit XML report: one testcase per check."""
        suites = ET.Element("testsuites", name="open311-conformance")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"open311 conformance {self.base_url}",
            tests=str(len(self.results)),
            failures=str(self.count(Outcome.failed)),
            errors="0",
            skipped=str(self.count(Outcome.skipped)),
            time=f"{self.seconds:.3f}",
            timestamp=self.started.replace(microsecond=0).isoformat(),
        )
        for attribute in ("tests", "failures", "errors", "skipped", "time"):
            suites.set(attribute, suite.get(attribute, ""))
        for result in self.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"open311.conformance.{result.name.split('.')[0]}",
                name=result.name,
                time=f"{result.seconds:.3f}",
            )
            if result.outcome is Outcome.failed:
                failure = ET.SubElement(case, "failure", message=result.message, type="conformance")
                failure.text = "\n".join(result.problems or (result.message,))
            elif result.outcome is Outcome.skipped:
                ET.SubElement(case, "skipped", message=result.message)
            else:
                ET.SubElement(case, "system-out").text = result.message
        ET.indent(suites)
        return ET.tostring(suites, encoding="utf-8", xml_declaration=True)

    def write_junit(self, path: Path) -> None:
        """Write the JUnit XML report."""
        path.write_bytes(self.junit_xml())


async def run_check(check: Check, ctx: Context) -> CheckResult:
    """Run one check; whatever happens becomes a result (a crash is a FAIL, never an abort)."""
    started = time.perf_counter()
    problems: tuple[str, ...] = ()
    if check.needs_api_key and not ctx.options.api_key:
        outcome, message = Outcome.skipped, "needs --api-key (it POSTs real requests)"
    else:
        try:
            outcome, message = Outcome.passed, await check.run(ctx)
        except Skip as exc:
            outcome, message = Outcome.skipped, str(exc)
        except Failure as exc:
            outcome, message, problems = Outcome.failed, str(exc), tuple(exc.problems)
        except Exception as exc:  # a server can provoke anything; report it, keep going
            outcome = Outcome.failed
            message = f"check crashed on the response: {type(exc).__name__}: {exc}"
    return CheckResult(check.name, outcome, message, problems, time.perf_counter() - started)


async def run_conformance(
    base_url: str,
    *,
    api_key: str | None = None,
    jurisdiction_id: str | None = None,
    service_code: str | None = None,
    request_timeout: float = 30.0,
    max_definitions: int = 25,
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run every check against the GeoReport v2 endpoint at ``base_url``.

    ``transport`` replaces the network (``httpx.ASGITransport`` for an app in the same process,
    ``httpx.MockTransport`` for a fake upstream); ``on_result`` sees each result as it comes.
    """
    options = Options(
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        jurisdiction_id=jurisdiction_id or None,
        service_code=service_code or None,
        timeout=request_timeout,
        max_definitions=max_definitions,
    )
    report = Report(options.base_url)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(request_timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    ) as client:
        ctx = Context(client, options)
        for check in CHECKS:
            result = await run_check(check, ctx)
            report.results.append(result)
            if on_result is not None:
                on_result(result)
    report.seconds = time.perf_counter() - started
    return report


def run_cli(
    base_url: str,
    *,
    api_key: str | None,
    jurisdiction_id: str | None,
    service_code: str | None,
    junit: Path | None,
    timeout: float,
    echo: Callable[[str], None],
) -> int:
    """The ``open311 conformance`` command: print each line and the summary; the exit code."""
    report = asyncio.run(
        run_conformance(
            base_url,
            api_key=api_key,
            jurisdiction_id=jurisdiction_id,
            service_code=service_code,
            request_timeout=timeout,
            on_result=lambda result: echo(result.line()),
        )
    )
    echo(report.summary())
    if junit is not None:
        report.write_junit(junit)
        echo(f"JUnit report written to {junit}")
    return report.exit_code
