"""The report formats: the terminal table, JSON, JUnit XML and one self-contained HTML page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

from app.conformance.results import CheckResult, Outcome, Report
from app.conformance.rules import Finding


def finding_dict(finding: Finding, *, stable: bool = False) -> dict[str, Any]:
    """One finding: level, rule, citation, count, example location and exchange."""
    data: dict[str, Any] = {
        "level": finding.level.value,
        "rule": finding.rule.id,
        "citation": finding.rule.citation,
        "message": finding.message,
        "count": finding.count,
        "example": finding.where,
    }
    if finding.exchange is not None:
        exchange = finding.exchange.example()
        if stable:
            exchange.pop("form", None)  # holds times and generated values
        data["exchange"] = exchange
    return data


def result_dict(result: CheckResult, *, stable: bool = False) -> dict[str, Any]:
    """One check's result."""
    data: dict[str, Any] = {
        "check": result.name,
        "suite": result.suite,
        "outcome": result.outcome.value,
        "level": result.level.value,
        "citation": result.citation,
        "message": result.message,
        "findings": [finding_dict(f, stable=stable) for f in result.findings],
    }
    if not stable:
        data["seconds"] = round(result.seconds, 3)
    return data


def as_dict(report: Report, *, stable: bool = False) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    data: dict[str, Any] = {
        "tool": "open311 conformance",
        "base_url": report.base_url,
        "suites": list(report.suites),
        "strict": report.strict,
        "summary": report.summary(),
        "exit_code": report.exit_code,
        "results": [result_dict(r, stable=stable) for r in report.results],
        "not_tested": [{"check": r.name, "reason": r.message} for r in report.not_tested],
    }
    if not stable:
        data["started"] = report.started.replace(microsecond=0).isoformat()
        data["seconds"] = round(report.seconds, 3)
    return data


def write_json(report: Report, path: Path) -> None:
    """Write the JSON report."""
    path.write_text(json.dumps(as_dict(report), indent=2, ensure_ascii=False) + "\n", "utf-8")


def terminal_lines(report: Report) -> list[str]:
    """After the per-check lines: each finding with its rule and example, not tested, summary."""
    lines: list[str] = []
    judged = [r for r in report.results if r.findings]
    if judged:
        lines += ["", "Findings (one per root cause):"]
    for result in judged:
        for finding in result.findings:
            lines.append(f"  {finding.level.value}  {result.name}  {finding.line()}")
            lines.append(f"        rule {finding.rule.id} — {finding.rule.citation}")
            if finding.exchange is not None:
                example = finding.exchange.example(200)
                status = example.get("status", example.get("error"))
                lines.append(f"        e.g. {example['request']} -> {status}")
    if report.not_tested:
        lines += ["", "Not tested:"]
        lines += [f"  {r.name}: {r.message}" for r in report.not_tested]
    lines += ["", report.summary()]
    return lines


def junit_xml(report: Report) -> bytes:
    """One testcase per check: FAIL is a failure (WARN too with --strict), SKIP skipped."""
    bad = {Outcome.failed, Outcome.warned} if report.strict else {Outcome.failed}
    failures = sum(r.outcome in bad for r in report.results)
    suites = ET.Element("testsuites", name="open311-conformance")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"open311 conformance {report.base_url}",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(report.count(Outcome.skipped)),
        time=f"{report.seconds:.3f}",
        timestamp=report.started.replace(microsecond=0).isoformat(),
    )
    for attribute in ("tests", "failures", "errors", "skipped", "time"):
        suites.set(attribute, suite.get(attribute, ""))
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"open311.conformance.{result.name.split('.')[0]}",
            name=result.name,
            time=f"{result.seconds:.3f}",
        )
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="level", value=result.level.value)
        ET.SubElement(properties, "property", name="outcome", value=result.outcome.value)
        ET.SubElement(properties, "property", name="citation", value=result.citation)
        details = "\n".join(result.problems) or result.message
        if result.outcome in bad:
            failure = ET.SubElement(case, "failure", message=result.message, type="conformance")
            failure.text = details
        elif result.outcome is Outcome.skipped:
            ET.SubElement(case, "skipped", message=result.message)
        else:
            ET.SubElement(case, "system-out").text = f"{result.outcome.value}: {details}"
    ET.indent(suites)
    written: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return written


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
.PASS{color:#176b2c}.FAIL{color:#b00020;font-weight:bold}.WARN{color:#a35a00;font-weight:bold}
.INFO{color:#1b4f9c}.SKIP{color:#777}
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all;font-size:12px}
.cite{color:#555;font-size:12px}details{margin:.3em 0}
"""


def write_junit(report: Report, path: Path) -> None:
    """Write the JUnit XML report."""
    path.write_bytes(junit_xml(report))


def html_page(report: Report) -> str:
    """A self-contained page (no external assets): summary, table, findings, not tested."""
    rows = []
    for result in report.results:
        rows.append(
            f"<tr><td class='{result.outcome.value}'>{result.outcome.value}</td>"
            f"<td><a href='#{escape(result.name)}'>{escape(result.name)}</a></td>"
            f"<td>{escape(result.level.value)}</td><td>{escape(result.message)}</td></tr>"
        )
    sections = []
    for result in report.results:
        parts = [
            f"<h3 id='{escape(result.name)}'><span class='{result.outcome.value}'>"
            f"{result.outcome.value}</span> {escape(result.name)}</h3>",
            f"<p class='cite'>Check level {result.level.value}; rule: "
            f"{escape(result.citation)}</p>",
            f"<p>{escape(result.message)}</p>",
        ]
        for finding in result.findings:
            parts.append(
                f"<details open><summary><span class='{finding.level.value}'>"
                f"{finding.level.value}</span> {escape(finding.line())}</summary>"
                f"<p class='cite'>{escape(finding.rule.id)} — {escape(finding.rule.citation)}</p>"
            )
            if finding.exchange is not None:
                example = finding.exchange.example()
                parts.append(f"<pre>{escape(_exchange_text(example))}</pre>")
            parts.append("</details>")
        sections.append("\n".join(parts))
    not_tested = "".join(
        f"<li><b>{escape(r.name)}</b>: {escape(r.message)}</li>" for r in report.not_tested
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Open311 conformance: {escape(report.base_url)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Open311 GeoReport v2 conformance of {escape(report.base_url)}</h1>"
        f"<p>{escape(report.started.replace(microsecond=0).isoformat())}; suites "
        f"{escape(', '.join(report.suites))}; {escape(report.summary())}; exit status "
        f"{report.exit_code}{' (strict)' if report.strict else ''}.</p>"
        "<p class='cite'>FAIL: the spec says MUST or the document is unusable. WARN: SHOULD, "
        "or a convention most clients rely on. INFO: a recommendation of our ambiguity table, "
        "not a defect. Rules cite shared/spec/georeport-v2.md (the digest) and the wiki.</p>"
        "<table><tr><th>outcome</th><th>check</th><th>level</th><th>detail</th></tr>"
        + "".join(rows)
        + "</table><h2>Checks</h2>"
        + "\n".join(sections)
        + (f"<h2>Not tested</h2><ul>{not_tested}</ul>" if not_tested else "")
        + "</body></html>\n"
    )


def _exchange_text(example: dict[str, Any]) -> str:
    lines = [example["request"]]
    if "form" in example:
        lines.append(f"form: {example['form']}")
    if "error" in example:
        lines.append(example["error"])
        return "\n".join(lines)
    lines.append(f"HTTP {example['status']}")
    lines += [f"{k}: {v}" for k, v in example["headers"].items()]
    lines += ["", example["body"]]
    return "\n".join(lines)


def write_html(report: Report, path: Path) -> None:
    """Write the HTML report."""
    path.write_text(html_page(report), encoding="utf-8")
