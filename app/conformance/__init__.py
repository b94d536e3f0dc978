"""``open311 conformance``: check any GeoReport v2 server against the spec.

``run_conformance(base_url, api_key=..., transport=...)`` runs the checks of
:mod:`app.conformance.checks` in order and returns a :class:`Report`; the command prints one
line per check and a summary and can write JUnit XML. Rules: the spec digest
(shared/spec/georeport-v2.md, §1, §12 and the §13 checklist) and the community JSON Schemas
shipped in ``schemas/``.
"""

from app.conformance.checks import CHECKS
from app.conformance.runner import CheckResult, Outcome, Report, run_conformance

__all__ = ["CHECKS", "CheckResult", "Outcome", "Report", "run_conformance"]
