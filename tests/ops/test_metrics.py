"""GET /metrics: HTTP counters and latency, created requests, database gauges."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select

from app.domain.queue import QueueProcessor
from app.store.tables import ApiKey, WebhookDelivery, WebhookSubscription
from app.store.tables.base import utcnow
from tests.conftest import AppFactory, Seed, engine_of

BASE = "/open311/v2"
REQUESTS = f"{BASE}/requests.{{format}}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _failed_and_pending_deliveries(client: httpx.AsyncClient, seed: Seed) -> None:
    engine = engine_of(client)
    now = utcnow()
    async with engine.begin() as conn:
        app_id = (
            await conn.execute(
                select(ApiKey.__table__.c.app_id).where(ApiKey.__table__.c.id == seed.api_key_id)
            )
        ).scalar_one()
        subscription = (
            await conn.execute(
                insert(WebhookSubscription.__table__)
                .values(
                    app_id=app_id,
                    url="https://receiver.example.org/hook",
                    secret="s" * 32,
                    active=True,
                    created_at=now,
                )
                .returning(WebhookSubscription.__table__.c.id)
            )
        ).scalar_one()
        rows: list[dict[str, Any]] = [
            {
                "subscription_id": subscription,
                "payload": {"n": n},
                "state": state,
                "attempts": n,
                "next_attempt_at": now,
                "created_at": now,
            }
            for n, state in enumerate(("pending", "failed", "failed", "delivered"))
        ]
        await conn.execute(insert(WebhookDelivery.__table__), rows)


async def test_metrics_count_calls_creations_and_queues(
    client: httpx.AsyncClient, seeded: Seed, make_client: AppFactory
) -> None:
    # Another app scrapes "before": the gauges of `client` are then read fresh at the end.
    observer = await make_client()
    before = await scrape(observer)
    form = {"api_key": seeded.api_key, "lat": "43.6534", "long": "-79.3841"}
    created = await client.post(
        f"{BASE}/requests.json", data={**form, "service_code": "LITTER.BIN"}
    )
    assert created.status_code == 200, created.text
    queued = await client.post(f"{BASE}/requests.json", data={**form, "service_code": "GRAFFITI"})
    assert queued.status_code == 200, queued.text
    assert "token" in queued.json()[0]
    listed = await client.get(f"{BASE}/requests.xml")
    assert listed.status_code == 200
    missing = await client.get(f"{BASE}/services/NOPE.json")
    assert missing.status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    await _failed_and_pending_deliveries(client, seeded)

    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    http = "open311_http_requests_total"
    assert delta(http, endpoint=REQUESTS, method="POST", status="200") == 2
    assert delta(http, endpoint=REQUESTS, method="GET", status="200") == 1
    assert (
        delta(
            http,
            endpoint=f"{BASE}/services/{{service_code}}.{{format}}",
            method="GET",
            status="404",
        )
        == 1
    )
    # Unknown paths share one label value (no label per random URL).
    assert delta(http, endpoint="unmatched", method="GET", status="404") == 1
    latency = "open311_http_request_duration_seconds"
    assert delta(f"{latency}_count", endpoint=REQUESTS, method="POST") == 2
    assert delta(f"{latency}_bucket", endpoint=REQUESTS, method="POST", le="+Inf") == 2
    assert delta(f"{latency}_sum", endpoint=REQUESTS, method="POST") > 0

    made = "open311_service_requests_created_total"
    jurisdiction = seeded.jurisdiction_id
    assert delta(made, jurisdiction=jurisdiction, service_code="LITTER.BIN") == 1
    assert delta(made, jurisdiction=jurisdiction, service_code="GRAFFITI") == 0  # queued only

    assert value(after, "open311_http_requests_in_flight") == 0  # the scrape is not counted
    assert value(after, "open311_database_up") == 1
    assert value(after, "open311_queue_depth", queue="submissions") == 1
    assert value(after, "open311_queue_depth", queue="webhook_deliveries") == 1
    assert value(after, "open311_webhook_deliveries_failed") == 2
    # The test catalogue has no wards: the open request is counted under "none".
    assert (
        value(after, "open311_open_service_requests", jurisdiction=jurisdiction, ward="none") == 1
    )
    assert not any(name.endswith("_created") for name, _ in after)

    # The worker turns the queued submission into a request: counted as created then.
    state = client.app.state.open311  # type: ignore[attr-defined]
    assert await QueueProcessor(state.engine, state.settings).run_once() == 1
    later = await scrape(observer)
    assert (
        value(later, made, jurisdiction=jurisdiction, service_code="GRAFFITI")
        - value(before, made, jurisdiction=jurisdiction, service_code="GRAFFITI")
        == 1
    )


async def test_gauges_are_cached_between_scrapes(client: httpx.AsyncClient, seeded: Seed) -> None:
    first = await scrape(client)
    assert value(first, "open311_queue_depth", queue="submissions") == 0
    form = {"api_key": seeded.api_key, "lat": "43.6534", "long": "-79.3841"}
    queued = await client.post(f"{BASE}/requests.json", data={**form, "service_code": "GRAFFITI"})
    assert queued.status_code == 200
    # Within the cache's few seconds a scrape does not query the database again.
    second = await scrape(client)
    assert value(second, "open311_queue_depth", queue="submissions") == 0
    assert (
        value(
            second, "open311_http_requests_total", endpoint="/metrics", method="GET", status="200"
        )
        == value(
            first, "open311_http_requests_total", endpoint="/metrics", method="GET", status="200"
        )
        + 1
    )
