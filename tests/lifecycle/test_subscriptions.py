"""Subscriptions (issue 20, point 3): webhooks for new requests and updates of any app's
requests, filtered by jurisdiction, service codes, wards or a bounding box; public fields
only; the delivery log; replay from a point in time; deliveries of one subscription in
order. A real HTTP receiver on loopback stands in for the app (the only thing mocked is that
upstream), on both backends."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from app.domain import webhooks
from app.domain.jurisdictions import JurisdictionRegistry
from app.domain.subscriptions import Feeder
from app.settings import Settings, WebhookSettings
from app.store.engine import write_transaction
from app.store.tables import RequestUpdate, WebhookDelivery
from app.worker import Worker
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.lifecycle.test_webhooks import _items, _other_app_key
from tests.support import Receiver

BASE = "/open311/v2"
UPDATE = RequestUpdate.__table__
DELIVERY = WebhookDelivery.__table__
INSIDE = {"lat": 43.65, "lon": -79.38}
OUTSIDE = {"lat": 45.0, "lon": -75.0}
BOX = "-79.5,43.6,-79.3,43.7"


@pytest.fixture
async def api(make_client: AppFactory) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(
        webhooks=WebhookSettings(allow_private_targets=True)
    )
    await clear(engine_of(client))
    return client


def _later() -> datetime:
    """A feeder clock past the settling delay of rows made just now."""
    return datetime.now(UTC) + timedelta(seconds=30)


async def _feed_and_deliver(client: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    """Feed the subscriptions, then deliver until nothing is due (bounded)."""
    engine = engine_of(client)
    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    feeder = Feeder(engine, JurisdictionRegistry(engine, settings))
    await feeder.run_once(now=_later())
    for _ in range(50):
        if not await webhooks.deliver_due(engine, http, now=_later()):
            return
    raise AssertionError("deliveries never ran out")


async def _update(engine: Any, seed: Seed, request_pk: int, note: str) -> int:
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        update_pk = (
            await conn.execute(
                insert(UPDATE)
                .values(
                    jurisdiction_id=seed.jurisdiction_pk,
                    service_request_id=request_pk,
                    status="closed",
                    detailed_status="fixed",
                    description=note,
                    updated_at=now,
                    sandbox=False,
                    created_at=now,
                )
                .returning(UPDATE.c.id)
            )
        ).scalar_one()
    return int(update_pk)


async def _subscribe(
    client: httpx.AsyncClient, key: str, url: str, fmt: str = "json", **filters: str
) -> tuple[int, str]:
    data = {"api_key": key, "url": url, **filters}
    response = await client.post(f"{BASE}/webhooks.{fmt}", data=data)
    assert response.status_code == 200, response.text
    (item,) = _items(response, fmt)
    return int(item["id"]), str(item["secret"])


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.requests]


async def test_a_feed_gets_new_requests_and_updates_of_any_app_that_match(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(api)
    seed = await seed_catalog(engine)
    other = await _other_app_key(engine)  # app B subscribes; app A (seed's key) submits
    hook_id, secret = await _subscribe(
        api, other, receiver.url, events="created,updated", service_code="POTHOLE", bbox=BOX
    )
    pothole, graffiti = seed.service_pks["POTHOLE"], seed.service_pks["GRAFFITI"]
    match = await make_request(
        engine, seed.jurisdiction_pk, pothole, email="a@example.org", phone="555", **INSIDE
    )
    await make_request(engine, seed.jurisdiction_pk, graffiti, **INSIDE)  # another service
    await make_request(engine, seed.jurisdiction_pk, pothole, **OUTSIDE)  # outside the box
    await make_request(engine, seed.jurisdiction_pk, pothole, sandbox=True, **INSIDE)
    await make_request(engine, seed.jurisdiction_pk, pothole, lat=None, lon=None)  # no point
    update_pk = await _update(engine, seed, match, "Fixed it.")

    await _feed_and_deliver(api, http)

    bodies = _bodies(receiver)
    assert [b["event"] for b in bodies] == ["service_request.created", "service_request.updated"]
    created, updated = bodies
    assert created["service_request"]["service_request_id"] == str(match)
    assert created["service_request"]["service_code"] == "POTHOLE"
    assert created["jurisdiction_id"] == seed.jurisdiction_id
    assert updated["update"]["update_id"] == str(update_pk)
    assert updated["update"]["service_request_id"] == str(match)
    # Public fields only: the reporter's never reach another app.
    raw = b"".join(r.body for r in receiver.requests)
    assert b"a@example.org" not in raw
    assert b"reporter" not in raw
    for request in receiver.requests:
        assert webhooks.verify_signature(
            secret, request.headers["x-open311-signature"], request.body, now=int(time.time())
        )
        assert request.headers["x-open311-event"] in (
            "service_request.updated",
            "service_request.created",
        )
    # Nothing more on a second pass.
    await _feed_and_deliver(api, http)
    assert len(receiver.requests) == 2

    # The delivery log, newest first; another app sees none of it.
    log = await api.get(f"{BASE}/webhooks/{hook_id}/deliveries.json", params={"api_key": other})
    assert log.status_code == 200, log.text
    assert [(d["event"], d["state"], d["service_request_id"]) for d in log.json()] == [
        ("service_request.updated", "delivered", str(match)),
        ("service_request.created", "delivered", str(match)),
    ]
    assert log.json()[0]["last_status"] == 200
    xml = await api.get(f"{BASE}/webhooks/{hook_id}/deliveries.xml", params={"api_key": other})
    assert xml.status_code == 200
    assert xml.text.count("<delivery>") == 2
    page = await api.get(
        f"{BASE}/webhooks/{hook_id}/deliveries.json",
        params={"api_key": other, "limit": "1", "before": str(log.json()[0]["delivery_id"])},
    )
    assert [d["event"] for d in page.json()] == ["service_request.created"]
    foreign = await api.get(
        f"{BASE}/webhooks/{hook_id}/deliveries.json", params={"api_key": seed.api_key}
    )
    assert foreign.status_code == 404


async def test_events_and_ward_filters(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(api)
    seed = await seed_catalog(engine)
    await _subscribe(api, seed.api_key, receiver.url, "xml", events="updated")
    request_pk = await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"])
    await _update(engine, seed, request_pk, "Seen.")
    await _feed_and_deliver(api, http)
    assert [b["event"] for b in _bodies(receiver)] == ["service_request.updated"]

    listed = await api.get(f"{BASE}/webhooks.json", params={"api_key": seed.api_key})
    (hook,) = listed.json()
    assert (hook["kind"], hook["events"]) == ("feed", "updated")

    bad = [
        {"events": "deleted"},
        {"bbox": "1,2,3"},
        {"bbox": "10,50,-10,40"},
        {"ward": "1"},  # a ward needs its jurisdiction
        {"service_code": ",".join(f"S{n}" for n in range(60))},
    ]
    for filters in bad:
        response = await api.post(
            f"{BASE}/webhooks.json",
            data={"api_key": seed.api_key, "url": receiver.url + "/x", **filters},
        )
        assert response.status_code == 400, (filters, response.text)


async def test_one_subscription_is_delivered_in_order(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    """The first delivery fails once: the later ones wait for it, then follow in order."""
    engine = engine_of(api)
    seed = await seed_catalog(engine)
    await _subscribe(api, seed.api_key, receiver.url, events="created")
    ids = [
        await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"])
        for _ in range(4)
    ]
    receiver.fail_first = 1
    settings = api.app.state.open311.settings  # type: ignore[attr-defined]
    feeder = Feeder(engine, JurisdictionRegistry(engine, settings))
    assert await feeder.run_once(now=_later()) == 4
    # Everything is due, with room for all of them: still only the first goes.
    assert await webhooks.deliver_due(engine, http, now=_later(), per_app=10) == 1
    assert len(receiver.requests) == 1  # it failed: the others wait behind it
    assert await webhooks.deliver_due(engine, http, now=_later(), per_app=10) == 0
    # Its retry is due later: then each one in turn.
    retry = datetime.now(UTC) + timedelta(hours=2)
    for _ in range(10):
        if not await webhooks.deliver_due(engine, http, now=retry, per_app=10):
            break
    got = [b["service_request"]["service_request_id"] for b in _bodies(receiver)]
    assert got == [str(ids[0])] + [str(i) for i in ids]


def _worker(api: httpx.AsyncClient, **webhook_settings: Any) -> Worker:
    settings: Settings = api.app.state.open311.settings  # type: ignore[attr-defined]
    changed = settings.webhooks.model_copy(update=webhook_settings)
    return Worker(engine_of(api), settings.model_copy(update={"webhooks": changed}))


async def _backlog(api: httpx.AsyncClient, receiver: Receiver, count: int) -> list[str]:
    """A feed subscription with ``count`` deliveries queued (new requests); their ids."""
    engine = engine_of(api)
    seed = await seed_catalog(engine)
    await _subscribe(api, seed.api_key, receiver.url, events="created")
    ids = [
        str(await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"]))
        for _ in range(count)
    ]
    settings = api.app.state.open311.settings  # type: ignore[attr-defined]
    feeder = Feeder(engine, JurisdictionRegistry(engine, settings))
    assert await feeder.run_once(now=_later()) == count
    return ids


def _delivered_ids(receiver: Receiver) -> list[str]:
    return [b["service_request"]["service_request_id"] for b in _bodies(receiver)]


async def test_a_pass_of_the_worker_delivers_a_subscriptions_backlog_in_order(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    """Not one event per pass: a pass sends up to webhooks.feed_batch of one subscription's
    deliveries, one after the other, in order."""
    ids = await _backlog(api, receiver, 12)
    worker = _worker(api)
    try:
        assert await worker.run_once(http) >= 12
    finally:
        await worker.aclose()
    assert _delivered_ids(receiver) == ids


async def test_a_pass_sends_at_most_feed_batch_of_one_subscription(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    """Bounded: with feed_batch 5, a pass sends 5 of 7 (in order), the next pass the rest."""
    more = await _backlog(api, receiver, 7)
    worker = _worker(api, feed_batch=5)
    try:
        await worker.run_once(http)
        assert _delivered_ids(receiver) == more[:5]
        await worker.run_once(http)
        assert _delivered_ids(receiver) == more
    finally:
        await worker.aclose()


async def test_a_failure_stops_the_batch_and_the_rest_waits_for_its_retry(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    """The third of six fails: the first two are delivered, the third is retried with the
    usual backoff, the last three are not sent (no attempt counted) and follow it in order."""
    engine = engine_of(api)
    ids = await _backlog(api, receiver, 6)
    receiver.fail_at = frozenset({3})
    worker = _worker(api)
    try:
        await worker.run_once(http)
        assert _delivered_ids(receiver) == ids[:3]
        await worker.run_once(http)  # its retry is not due yet: nothing more goes
        assert _delivered_ids(receiver) == ids[:3]
    finally:
        await worker.aclose()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(DELIVERY.c.state, DELIVERY.c.attempts, DELIVERY.c.next_attempt_at).order_by(
                    DELIVERY.c.id
                )
            )
        ).all()
    assert [(r.state, r.attempts) for r in rows] == [
        ("delivered", 1),
        ("delivered", 1),
        ("pending", 1),
        ("pending", 0),
        ("pending", 0),
        ("pending", 0),
    ]
    retry_at = rows[2].next_attempt_at
    if retry_at.tzinfo is None:
        retry_at = retry_at.replace(tzinfo=UTC)
    assert retry_at - datetime.now(UTC) > webhooks.retry_delay(1) - timedelta(seconds=5)
    # Its retry: then it and the rest, in order.
    assert await webhooks.deliver_due(engine, http, now=retry_at) == 4
    assert _delivered_ids(receiver) == ids[:3] + ids[2:]


async def test_replay_from_a_point_in_time(
    api: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(api)
    seed = await seed_catalog(engine)
    hook_id, _ = await _subscribe(api, seed.api_key, receiver.url, events="created")
    first = await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"])
    await _feed_and_deliver(api, http)
    assert len(receiver.requests) == 1
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    replayed = await api.post(
        f"{BASE}/webhooks/{hook_id}/replay.json", data={"api_key": seed.api_key, "since": since}
    )
    assert replayed.status_code == 200, replayed.text
    second = await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"])
    await _feed_and_deliver(api, http)
    got = [b["service_request"]["service_request_id"] for b in _bodies(receiver)]
    assert got == [str(first), str(first), str(second)]

    too_old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    for data, status in (
        ({"since": too_old}, 400),
        ({"since": "yesterday"}, 400),
        ({}, 400),
    ):
        response = await api.post(
            f"{BASE}/webhooks/{hook_id}/replay.json", data={"api_key": seed.api_key, **data}
        )
        assert response.status_code == status, (data, response.text)
    other = await _other_app_key(engine)
    foreign = await api.post(
        f"{BASE}/webhooks/{hook_id}/replay.json", data={"api_key": other, "since": since}
    )
    assert foreign.status_code == 404
    own_kind, _ = await _subscribe(api, seed.api_key, receiver.url + "/own")
    refused = await api.post(
        f"{BASE}/webhooks/{own_kind}/replay.json", data={"api_key": seed.api_key, "since": since}
    )
    assert refused.status_code == 400


async def test_a_restricted_key_feeds_only_its_jurisdiction(api: httpx.AsyncClient) -> None:
    from app.domain.api_keys import create_key

    engine = engine_of(api)
    seed = await seed_catalog(engine)
    other_city = await seed_catalog(engine, code="other.example.org")
    async with write_transaction(engine) as conn:
        key, _ = await create_key(
            conn, "restricted", app="restricted app", jurisdiction=other_city.jurisdiction_id
        )
    refused = await api.post(
        f"{BASE}/webhooks.json",
        data={
            "api_key": key,
            "url": "http://127.0.0.1:9/hook",
            "events": "created",
            "jurisdiction_id": seed.jurisdiction_id,
        },
    )
    assert refused.status_code == 403
    allowed = await api.post(
        f"{BASE}/webhooks.json",
        data={"api_key": key, "url": "http://127.0.0.1:9/hook", "events": "created"},
    )
    assert allowed.status_code == 200, allowed.text
    (hook,) = (await api.get(f"{BASE}/webhooks.json", params={"api_key": key})).json()
    assert hook["jurisdiction_id"] == "other.example.org"
