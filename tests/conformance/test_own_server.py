"""Our own server passes every conformance check, on PostGIS and on the embedded SQLite."""

from __future__ import annotations

import httpx

from app.conformance import CHECKS, Outcome, run_conformance
from tests.conftest import Seed

BASE_URL = "http://testserver/open311/v2"


async def test_our_server_passes_every_check(client: httpx.AsyncClient, seeded: Seed) -> None:
    app = client.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    report = await run_conformance(BASE_URL, api_key=seeded.api_key, transport=transport)
    assert [r.line() for r in report.results if r.outcome is not Outcome.passed] == []
    assert len(report.results) == len(CHECKS)
    assert report.summary() == f"{len(CHECKS)} passed, 0 failed, 0 skipped"
    assert report.exit_code == 0
    # The checks exercised the seeded catalogue: a realtime POST with attributes and a token
    # (resolved or still pending: both are conformant).
    assert "POTHOLE (realtime) with 3 required" in report.result("post.create").message
    assert report.result("tokens.resolve").message.startswith("token ")


async def test_our_server_with_a_batch_service_code_and_jurisdiction(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    app = client.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    report = await run_conformance(
        BASE_URL,
        api_key=seeded.api_key,
        jurisdiction_id=seeded.jurisdiction_id,
        service_code="GRAFFITI",
        transport=transport,
    )
    assert report.failed == [], [r.line() for r in report.failed]
    assert "GRAFFITI (batch)" in report.result("post.create").message
    # GRAFFITI is batch: there is no id to read back right after the POST.
    assert report.result("post.read_back").outcome is Outcome.skipped
