"""``open311 conformance``: check any GeoReport v2 server against the spec.

``run_conformance(base_url, api_key=..., suites=..., transport=...)`` runs the selected checks
(:mod:`app.conformance.checks`, :mod:`app.conformance.extensions`) and returns a
:class:`Report`. Every finding names its rule (:mod:`app.conformance.rules`: level FAIL, WARN or
INFO and a citation of shared/spec/georeport-v2.md); one finding per root cause, with a count
and one example exchange. Reports: terminal, JUnit, JSON, HTML (:mod:`app.conformance.report`);
a pytest plugin (:mod:`app.conformance.pytest_plugin`).
"""

from app.conformance.checks import CHECKS
from app.conformance.rules import Finding, Level, Rule
from app.conformance.runner import CheckResult, Outcome, Report, run_conformance, select

__all__ = [
    "CHECKS",
    "CheckResult",
    "Finding",
    "Level",
    "Outcome",
    "Report",
    "Rule",
    "run_conformance",
    "select",
]
