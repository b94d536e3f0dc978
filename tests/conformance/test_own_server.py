"""Our own server: zero FAIL and zero WARN, on PostGIS and on the embedded SQLite."""

from __future__ import annotations

import httpx

from app.conformance import Outcome, run_conformance, select
from app.domain.api_keys import create_key
from tests.conftest import Seed, engine_of

BASE_URL = "http://testserver/open311/v2"
SUITES = ("core", "updates", "ours")


async def test_our_server_passes_every_check(client: httpx.AsyncClient, seeded: Seed) -> None:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "conformance app", scopes=("submit", "update"))
    app = client.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    report = await run_conformance(
        BASE_URL, api_key=key, suites=SUITES, strict=True, transport=transport
    )
    assert [r.line() for r in report.results if r.outcome is not Outcome.passed] == []
    assert [r.name for r in report.results] == [c.name for c in select(SUITES)]
    assert (
        report.summary()
        == f"{len(report.results)} passed, 0 failed, 0 warned, 0 info, 0 not tested"
    )
    assert report.exit_code == 0
    # The checks exercised the seeded catalogue: a realtime POST with attributes (the spec's
    # attribute[CODE][] form) and a token (resolved or still pending: both are conformant).
    assert "POTHOLE (realtime) with 3 required" in report.result("post.create").message
    assert "attribute[CODE][] for multivaluelists" in report.result("post.create").message
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
        strict=True,
        transport=transport,
    )
    assert [r.line() for r in report.results if r.outcome in (Outcome.failed, Outcome.warned)] == []
    assert "GRAFFITI (batch)" in report.result("post.create").message
    # GRAFFITI is batch: there is no id to read back right after the POST.
    assert report.result("post.read_back").outcome is Outcome.skipped
