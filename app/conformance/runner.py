"""Run the selected checks against a base URL: results with findings, the exit status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import httpx

from app.conformance import extensions  # noqa: F401  (registers the extension suites)
from app.conformance.checks import CHECKS, SUITES, Check
from app.conformance.context import Context, Failure, Options, Skip
from app.conformance.documents import FORMATS
from app.conformance.report import terminal_lines, write_html, write_json, write_junit
from app.conformance.results import OUTCOME_OF, CheckResult, Outcome, Report
from app.conformance.rules import Finding, group

__all__ = ["CheckResult", "Outcome", "Report", "run_check", "run_conformance", "select"]

USER_AGENT = "open311-conformance/2 (+https://github.com/open311)"


async def run_check(check: Check, ctx: Context) -> CheckResult:
    """Run one check; whatever happens becomes a result (a crash is a FAIL, never an abort)."""
    started = time.perf_counter()
    findings: tuple[Finding, ...] = ()
    if check.needs_api_key and not ctx.options.api_key:
        outcome, message = Outcome.skipped, "needs --api-key (it POSTs real requests)"
    else:
        try:
            outcome, message = Outcome.passed, await check.run(ctx)
        except Skip as exc:
            outcome, message = Outcome.skipped, str(exc)
        except Failure as exc:
            findings = tuple(group(exc.problems))
            outcome = OUTCOME_OF[findings[0].level] if findings else Outcome.passed
            shown = "; ".join(f.line() for f in findings[:3])
            more = len(findings) - 3
            message = shown + (f" (+{more} more)" if more > 0 else "")
            if outcome in (Outcome.info, Outcome.warned) and exc.detail:
                message = f"{exc.detail}; {message}"
        except Exception as exc:  # a server can provoke anything; report it, keep going
            outcome = Outcome.failed
            message = f"check crashed on the response: {type(exc).__name__}: {exc}"
    return CheckResult(
        check.name,
        outcome,
        message,
        findings,
        time.perf_counter() - started,
        check.level,
        check.rule.citation,
        check.suite,
    )


def select(
    suites: Iterable[str] = ("core",),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> list[Check]:
    """The checks of the suites (core always), by name patterns (``requests.*``), in order.

    Checks judged over every response (``format.*``) run last.
    """
    wanted = {"core", *suites}
    unknown = wanted - set(SUITES)
    if unknown:
        raise ValueError(f"unknown suite(s) {sorted(unknown)}; known: {', '.join(SUITES)}")
    names = [c.name for c in CHECKS]
    for pattern in (*only, *skip):
        if not any(fnmatchcase(name, pattern) for name in names):
            raise ValueError(f"no check is named {pattern!r}")
    chosen = [
        c
        for c in CHECKS
        if c.suite in wanted
        and (not only or any(fnmatchcase(c.name, p) for p in only))
        and not any(fnmatchcase(c.name, p) for p in skip)
    ]
    return [c for c in chosen if not c.last] + [c for c in chosen if c.last]


async def run_conformance(
    base_url: str,
    *,
    api_key: str | None = None,
    jurisdiction_id: str | None = None,
    service_code: str | None = None,
    request_timeout: float = 30.0,
    max_definitions: int = 25,
    suites: Iterable[str] = ("core",),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    formats: Sequence[str] = FORMATS,
    strict: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run the selected checks against the GeoReport v2 endpoint at ``base_url``.

    ``transport`` replaces the network (``httpx.ASGITransport`` for an app in the same process,
    ``httpx.MockTransport`` for a fake upstream); ``on_result`` sees each result as it comes.
    ``formats`` limits the checks to one format (checks needing both are then not tested).
    """
    chosen = select(suites, only, skip)
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be among {FORMATS}")
    options = Options(
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        jurisdiction_id=jurisdiction_id or None,
        service_code=service_code or None,
        timeout=request_timeout,
        max_definitions=max_definitions,
        formats=tuple(f for f in FORMATS if f in formats),
    )
    report = Report(options.base_url, strict=strict, suites=tuple(sorted({"core", *suites})))
    started = time.perf_counter()
    async with httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(request_timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    ) as client:
        ctx = Context(client, options)
        for check in chosen:
            result = await run_check(check, ctx)
            report.results.append(result)
            if on_result is not None:
                on_result(result)
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class Outputs:
    """Where to write the reports."""

    junit: Path | None = None
    json: Path | None = None
    html: Path | None = None


def run_cli(
    base_url: str,
    *,
    api_key: str | None,
    jurisdiction_id: str | None,
    service_code: str | None,
    timeout: float,
    echo: Callable[[str], None],
    junit: Path | None = None,
    json_path: Path | None = None,
    html: Path | None = None,
    suites: Sequence[str] = (),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    strict: bool = False,
) -> int:
    """The ``open311 conformance`` command: the table, the reports asked for; the exit code."""
    report = asyncio.run(
        run_conformance(
            base_url,
            api_key=api_key,
            jurisdiction_id=jurisdiction_id,
            service_code=service_code,
            request_timeout=timeout,
            suites=suites,
            only=only,
            skip=skip,
            strict=strict,
            on_result=lambda result: echo(result.line()),
        )
    )
    for line in terminal_lines(report):
        echo(line)
    for path, write, kind in (
        (junit, write_junit, "JUnit"),
        (json_path, write_json, "JSON"),
        (html, write_html, "HTML"),
    ):
        if path is not None:
            write(report, path)
            echo(f"{kind} report written to {path}")
    return report.exit_code
