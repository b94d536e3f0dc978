"""Signed webhooks: signatures, the app-facing endpoints, and delivery to a real receiver.

Deliveries go to a small HTTP/1.1 server on 127.0.0.1 (``Receiver``) through a real
``httpx.AsyncClient``; only timeouts and connection errors use ``httpx.MockTransport``. Time
is driven through ``deliver_due(now=...)``, so backoff is tested without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain import webhooks
from app.domain.api_keys import create_key, verify_key
from app.settings import Settings
from app.store.engine import write_transaction
from app.store.tables import RequestUpdate, WebhookDelivery, WebhookSubscription
from tests.conftest import Seed, engine_of
from tests.factories import make_request

BASE = "/open311/v2"
DELIVERY = WebhookDelivery.__table__
SUBSCRIPTION = WebhookSubscription.__table__
UPDATE = RequestUpdate.__table__
SECRET = "whsec_test-secret"  # noqa: S105 - a test value, not a secret
BODY = b'{"event":"service_request.updated","update":{"update_id":"1"}}'

# ---------------------------------------------------------------------------------------
# sign / verify_signature


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert webhooks.sign(SECRET, 1_700_000_000, BODY) == f"t=1700000000,v1={expected}"


def test_verify_accepts_a_valid_signature_within_tolerance() -> None:
    header = webhooks.sign(SECRET, 1_700_000_000, BODY)
    assert webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_000)
    assert webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_300)
    assert webhooks.verify_signature(SECRET, header, BODY, now=1_699_999_700)
    # Whitespace after commas and a second (rotated) v1 entry are accepted.
    other = webhooks.sign("whsec_old", 1_700_000_000, BODY).partition(",")[2]
    assert webhooks.verify_signature(
        SECRET, f"t=1700000000, {other}, {header[13:]}", BODY, now=1_700_000_000
    )


def test_verify_rejects_wrong_secret_and_tampered_body() -> None:
    header = webhooks.sign(SECRET, 1_700_000_000, BODY)
    assert not webhooks.verify_signature("whsec_other", header, BODY, now=1_700_000_000)
    assert not webhooks.verify_signature(SECRET, header, BODY + b" ", now=1_700_000_000)
    assert not webhooks.verify_signature(
        SECRET, header, BODY.replace(b'"1"', b'"2"'), now=1_700_000_000
    )
    # The timestamp is signed too: moving it breaks the signature.
    moved = header.replace("t=1700000000", "t=1700000001")
    assert not webhooks.verify_signature(SECRET, moved, BODY, now=1_700_000_000)


def test_verify_rejects_stale_and_future_timestamps() -> None:
    header = webhooks.sign(SECRET, 1_700_000_000, BODY)
    assert not webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_301)
    assert not webhooks.verify_signature(SECRET, header, BODY, now=1_699_999_699)
    assert not webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_061, tolerance=60)
    assert webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_060, tolerance=60)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=1700000000",
        "v1=" + "0" * 64,
        "t=abc,v1=" + "0" * 64,
        "t=-1700000000,v1=" + "0" * 64,
        "t=１７００,v1=" + "0" * 64,
        "t=1700000000,t=1700000000,v1=" + "0" * 64,
        "t=1700000000,v1",
        "t=1700000000,v1=xyz",
        "t=1700000000,v1=" + "é" * 64,
        "t=1700000000,v1=" + "0" * 2000,
    ],
)
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not webhooks.verify_signature(SECRET, header, BODY, now=1_700_000_000)


def test_malformed_header_with_the_right_digest_is_still_rejected() -> None:
    digest = webhooks.sign(SECRET, 1_700_000_000, BODY).partition(",v1=")[2]
    assert webhooks.verify_signature(SECRET, f"v1={digest},t=1700000000", BODY, now=1_700_000_000)
    assert not webhooks.verify_signature(SECRET, f"v1={digest}", BODY, now=1_700_000_000)
    assert not webhooks.verify_signature(
        SECRET, f"t=1700000000,v1={digest.upper()}", BODY, now=1_700_000_000
    )


def test_secrets_are_random_with_256_bits() -> None:
    first, second = webhooks.new_secret(), webhooks.new_secret()
    assert first != second
    assert len(first.removeprefix("whsec_")) >= 43  # 32 bytes, URL-safe base64


def test_retry_delay_doubles_and_is_capped() -> None:
    delays = [webhooks.retry_delay(n).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [10, 20, 40, 80]
    assert max(delays) == 3600
    assert delays == sorted(delays)


# ---------------------------------------------------------------------------------------
# Endpoints


def _items(response: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    """The items of a webhooks document (XML leaves as text)."""
    if fmt == "json":
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        value = response.json()
        assert isinstance(value, list)
        return value
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(response.content)  # noqa: S314 - parses this server's own response
    assert root.tag == "webhooks"
    assert all(child.tag == "webhook" for child in root)
    return [{leaf.tag: leaf.text for leaf in child} for child in root]


def _error(response: httpx.Response, fmt: str, status: int) -> str:
    assert response.status_code == status, response.text
    if fmt == "json":
        (error,) = response.json()
        assert error["code"] == status
        return str(error["description"])
    root = ET.fromstring(response.content)  # noqa: S314 - parses this server's own response
    assert root.tag == "errors"
    assert root.findtext("error/code") == str(status)
    return root.findtext("error/description") or ""


async def _other_app_key(engine: AsyncEngine) -> str:
    async with write_transaction(engine) as conn:
        key, _ = await create_key(
            conn, "other key", app=f"other app {uuid.uuid4().hex[:6]}", scopes="read_private"
        )
    return key


async def _app_id(engine: AsyncEngine, api_key: str) -> int:
    async with engine.connect() as conn:
        app_id = (await verify_key(conn, api_key)).app_id
    assert app_id is not None
    return app_id


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_create_list_delete(client: httpx.AsyncClient, seeded: Seed, fmt: str) -> None:
    url = "https://app.example.org/hooks/open311?x=1"
    created = await client.post(
        f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": url}
    )
    assert created.status_code == 200, created.text
    (item,) = _items(created, fmt)
    assert set(item) == {"id", "url", "secret"}
    assert item["url"] == url
    secret = str(item["secret"])
    assert secret.startswith("whsec_")
    subscription_id = int(item["id"])

    listed = await client.get(f"{BASE}/webhooks.{fmt}", params={"api_key": seeded.api_key})
    assert listed.status_code == 200, listed.text
    (row,) = _items(listed, fmt)
    assert {"id", "url", "active", "created_at", "kind"} <= set(row)
    assert row["kind"] == "own"  # updates of the app's own requests (not a feed)
    assert int(row["id"]) == subscription_id
    assert row["url"] == url
    assert str(row["active"]).lower() == "true"
    assert datetime.fromisoformat(str(row["created_at"])).tzinfo is not None
    assert secret not in listed.text  # shown once, never listed

    # The stored secret is the one shown, and belongs to the key's app.
    engine = engine_of(client)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                select(SUBSCRIPTION.c.secret, SUBSCRIPTION.c.app_id).where(
                    SUBSCRIPTION.c.id == subscription_id
                )
            )
        ).one()
    assert tuple(stored) == (secret, await _app_id(engine, seeded.api_key))

    deleted = await client.delete(
        f"{BASE}/webhooks/{subscription_id}.{fmt}", params={"api_key": seeded.api_key}
    )
    assert deleted.status_code == 200, deleted.text
    (gone,) = _items(deleted, fmt)
    assert int(gone["id"]) == subscription_id
    assert str(gone["deleted"]).lower() == "true"
    empty = await client.get(f"{BASE}/webhooks.{fmt}", params={"api_key": seeded.api_key})
    assert _items(empty, fmt) == []
    again = await client.delete(
        f"{BASE}/webhooks/{subscription_id}.{fmt}", params={"api_key": seeded.api_key}
    )
    _error(again, fmt, 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_other_app_cannot_see_or_delete(
    client: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    engine = engine_of(client)
    other_key = await _other_app_key(engine)
    created = await client.post(
        f"{BASE}/webhooks.{fmt}",
        data={"api_key": seeded.api_key, "url": "http://app.example.org/a"},
    )
    subscription_id = int(_items(created, fmt)[0]["id"])
    theirs = await client.post(
        f"{BASE}/webhooks.{fmt}", data={"api_key": other_key, "url": "http://other.example/b"}
    )
    assert theirs.status_code == 200, theirs.text

    listed = await client.get(f"{BASE}/webhooks.{fmt}", params={"api_key": other_key})
    assert [row["url"] for row in _items(listed, fmt)] == ["http://other.example/b"]
    refused = await client.delete(
        f"{BASE}/webhooks/{subscription_id}.{fmt}", params={"api_key": other_key}
    )
    assert f"no webhook {subscription_id}" in _error(refused, fmt, 404)
    mine = await client.get(f"{BASE}/webhooks.{fmt}", params={"api_key": seeded.api_key})
    assert [int(row["id"]) for row in _items(mine, fmt)] == [subscription_id]


BAD_URLS = [
    "",
    "   ",
    "ftp://example.org/hook",
    "javascript:alert(1)",
    "example.org/hook",
    "http://",
    "https:///path-only",
    "http://exa mple.org/hook",
    "http://example.org/\nhook",
    "http://example.org:99999/hook",
    "http://example.org/" + "a" * 2048,
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_bad_urls_are_400(client: httpx.AsyncClient, seeded: Seed, fmt: str) -> None:
    for url in BAD_URLS:
        response = await client.post(
            f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": url}
        )
        assert "url" in _error(response, fmt, 400), url
    missing = await client.post(f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key})
    _error(missing, fmt, 400)
    first = await client.post(
        f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": "https://a.example/"}
    )
    assert first.status_code == 200
    duplicate = await client.post(
        f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": "https://a.example/"}
    )
    assert "already" in _error(duplicate, fmt, 400)
    async with engine_of(client).connect() as conn:
        stored = (await conn.execute(select(SUBSCRIPTION.c.url))).scalars().all()
    assert stored == ["https://a.example/"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_bad_or_missing_key_is_403(client: httpx.AsyncClient, seeded: Seed, fmt: str) -> None:
    url = "https://app.example.org/hook"
    for data in ({"api_key": "not-a-real-key-1234", "url": url}, {"url": url}):
        _error(await client.post(f"{BASE}/webhooks.{fmt}", data=data), fmt, 403)
    for params in ({"api_key": "not-a-real-key-1234"}, {}):
        _error(await client.get(f"{BASE}/webhooks.{fmt}", params=params), fmt, 403)
        _error(await client.delete(f"{BASE}/webhooks/1.{fmt}", params=params), fmt, 403)
    async with engine_of(client).connect() as conn:
        assert (await conn.execute(select(SUBSCRIPTION.c.id))).all() == []


# ---------------------------------------------------------------------------------------
# Delivery


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 that records each request.

    Answers 500 to the first ``fail_first`` requests and to those numbered in ``fail_at`` (all
    when ``always_fail``), else 200;
    ``hold`` keeps requests waiting for an answer until it is set; ``arrived`` is set by the
    first request.
    """

    fail_first: int = 0
    fail_at: frozenset[int] = frozenset()  # these requests (1-based) are answered 500
    always_fail: bool = False
    delay: float = 0.0
    hold: asyncio.Event | None = None
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(method, target, headers, body))
                self.arrived.set()
                if self.hold is not None:
                    await self.hold.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                number = len(self.requests)
                failing = self.always_fail or number <= self.fail_first or number in self.fail_at
                status = "500 Internal Server Error" if failing else "200 OK"
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                    "Connection: close\r\n\r\nok".encode("ascii")
                )
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. a cancelled sender)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver on a free loopback port."""
    state = Receiver()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The worker's real HTTP client, allowed to reach the receiver on loopback."""
    allowed = settings.webhooks.model_copy(update={"allow_private_targets": True})
    async with webhooks.delivery_client(
        settings.model_copy(update={"webhooks": allowed}), timeout=2.0
    ) as client:
        yield client


async def _subscribe(engine: AsyncEngine, api_key: str, url: str) -> tuple[int, int, str]:
    """(app id, subscription id, secret) of a new subscription of the key's app."""
    app_id = await _app_id(engine, api_key)
    async with write_transaction(engine) as conn:
        subscription_id, secret = await webhooks.create_subscription(conn, app_id=app_id, url=url)
    return app_id, subscription_id, secret


async def _store_update(
    engine: AsyncEngine, seeded: Seed, app_id: int | None, note: str = "Fixed."
) -> tuple[int, dict[str, Any], int]:
    """Store a request and an update of it, queueing webhooks as the update code does.

    (update id, payload, number of deliveries queued).
    """
    request_pk = await make_request(
        engine, seeded.jurisdiction_pk, seeded.service_pks["POTHOLE"], app_id=app_id
    )
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        update_pk = (
            await conn.execute(
                insert(UPDATE)
                .values(
                    jurisdiction_id=seeded.jurisdiction_pk,
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
        payload = {
            "event": "service_request.updated",
            "update": {
                "update_id": str(update_pk),
                "service_request_id": str(request_pk),
                "status": "fixed",
                "updated_datetime": now,
                "description": note,
            },
        }
        queued = await webhooks.enqueue_update(
            conn, app_id=app_id, update_pk=int(update_pk), payload=payload
        )
    return int(update_pk), payload, queued


async def _deliveries(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(DELIVERY).order_by(DELIVERY.c.id))
        return [dict(row) for row in rows.mappings()]


async def test_enqueue_queues_one_delivery_per_active_subscription(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    app_id, first_id, _ = await _subscribe(engine, seeded.api_key, "http://127.0.0.1:9/a")
    _, second_id, _ = await _subscribe(engine, seeded.api_key, "http://127.0.0.1:9/b")
    _, inactive_id, _ = await _subscribe(engine, seeded.api_key, "http://127.0.0.1:9/c")
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == inactive_id).values(active=False)
        )
    other_app = await _app_id(engine, await _other_app_key(engine))

    update_pk, payload, queued = await _store_update(engine, seeded, app_id)
    assert queued == 2
    assert (await _store_update(engine, seeded, None))[2] == 0  # staff-filed request
    assert (await _store_update(engine, seeded, other_app))[2] == 0  # no subscription

    rows = await _deliveries(engine)
    assert [r["subscription_id"] for r in rows] == [first_id, second_id]
    for row in rows:
        assert row["update_id"] == update_pk
        assert row["state"] == "pending"
        assert row["attempts"] == 0
        # Stored as JSON: the datetime became W3C text.
        assert row["payload"]["update"]["updated_datetime"] == (
            payload["update"]["updated_datetime"].isoformat()
        )

    # Queued in the caller's transaction: a rolled-back update queues nothing.
    async def failing_update() -> None:
        async with write_transaction(engine) as conn:
            await webhooks.enqueue_update(conn, app_id=app_id, update_pk=update_pk, payload={})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await failing_update()
    assert len(await _deliveries(engine)) == 2


async def test_delivery_is_signed_and_carries_the_payload(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    app_id, subscription_id, secret = await _subscribe(engine, seeded.api_key, receiver.url)
    _, payload, queued = await _store_update(engine, seeded, app_id)
    assert queued == 1
    now = datetime.now(UTC)

    assert await webhooks.deliver_due(engine, http, now=now) == 1
    (got,) = receiver.requests
    (row,) = await _deliveries(engine)
    assert (got.method, got.target) == ("POST", "/hook")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-open311-event"] == "service_request.updated"
    assert got.headers["x-open311-delivery"] == str(row["id"])
    assert got.headers["user-agent"] == "open311-server"
    signature = got.headers["x-open311-signature"]
    assert webhooks.verify_signature(secret, signature, got.body, now=int(time.time()))
    assert not webhooks.verify_signature("whsec_wrong", signature, got.body, now=int(time.time()))
    # A replay an hour later is refused.
    assert not webhooks.verify_signature(secret, signature, got.body, now=int(time.time()) + 3600)
    expected = json.loads(json.dumps(payload, default=datetime.isoformat))
    assert got.json() == {**expected, "delivery_id": row["id"], "attempt": 1}

    assert row["subscription_id"] == subscription_id
    assert row["state"] == "delivered"
    assert row["attempts"] == 1
    assert row["last_status"] == 200
    assert row["last_error"] is None
    assert row["delivered_at"] == now
    # Nothing is due any more.
    assert await webhooks.deliver_due(engine, http, now=now + timedelta(days=1)) == 0
    assert len(receiver.requests) == 1


async def test_failures_are_retried_with_backoff_until_delivered(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    receiver.fail_first = 2
    app_id, _, secret = await _subscribe(engine, seeded.api_key, receiver.url)
    await _store_update(engine, seeded, app_id)
    t0 = datetime.now(UTC)

    assert await webhooks.deliver_due(engine, http, now=t0) == 1
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    assert row["last_error"] == "HTTP 500"
    assert row["next_attempt_at"] == t0 + timedelta(seconds=10)
    # Not due before the backoff has passed.
    assert await webhooks.deliver_due(engine, http, now=t0 + timedelta(seconds=9)) == 0

    t1 = t0 + timedelta(seconds=10)
    assert await webhooks.deliver_due(engine, http, now=t1) == 1
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 2, 500)
    assert row["next_attempt_at"] == t1 + timedelta(seconds=20)
    assert await webhooks.deliver_due(engine, http, now=t1 + timedelta(seconds=19)) == 0

    t2 = t1 + timedelta(seconds=20)
    assert await webhooks.deliver_due(engine, http, now=t2) == 1
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 200)
    assert row["last_error"] is None
    assert row["delivered_at"] == t2

    assert [r.json()["attempt"] for r in receiver.requests] == [1, 2, 3]
    assert {r.headers["x-open311-delivery"] for r in receiver.requests} == {str(row["id"])}
    for got in receiver.requests:
        assert webhooks.verify_signature(
            secret, got.headers["x-open311-signature"], got.body, now=int(time.time())
        )


async def test_a_permanently_failing_receiver_ends_failed(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    receiver.always_fail = True
    app_id, _, _ = await _subscribe(engine, seeded.api_key, receiver.url)
    await _store_update(engine, seeded, app_id)
    at = datetime.now(UTC)
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        assert await webhooks.deliver_due(engine, http, now=at) == 1, attempt
        (row,) = await _deliveries(engine)
        assert row["attempts"] == attempt
        at += webhooks.retry_delay(attempt)
    assert row["state"] == "failed"
    assert (row["last_status"], row["last_error"]) == (500, "HTTP 500")
    assert row["delivered_at"] is None
    assert await webhooks.deliver_due(engine, http, now=at + timedelta(days=30)) == 0
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS


async def test_a_crash_mid_send_is_retried_after_the_lease(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    receiver.hold = asyncio.Event()
    app_id, _, secret = await _subscribe(engine, seeded.api_key, receiver.url)
    await _store_update(engine, seeded, app_id)
    t0 = datetime.now(UTC)

    worker = asyncio.create_task(webhooks.deliver_due(engine, http, now=t0))
    async with asyncio.timeout(5):
        await receiver.arrived.wait()
    # The claim is committed before the POST: the row is leased while the send is in flight.
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    lease_end = row["next_attempt_at"]
    assert lease_end >= t0 + timedelta(seconds=webhooks.send_deadline(http))
    worker.cancel()  # the worker dies mid-send
    with pytest.raises(asyncio.CancelledError):
        await worker
    receiver.hold.set()
    receiver.hold = None

    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
    assert await webhooks.deliver_due(engine, http, now=lease_end - timedelta(seconds=1)) == 0
    assert await webhooks.deliver_due(engine, http, now=lease_end) == 1
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 2, 200)
    assert [r.json()["attempt"] for r in receiver.requests] == [1, 2]
    assert webhooks.verify_signature(
        secret,
        receiver.requests[1].headers["x-open311-signature"],
        receiver.requests[1].body,
        now=int(time.time()),
    )


async def test_concurrent_workers_never_send_a_delivery_twice(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    receiver.delay = 0.005
    app_id, _, _ = await _subscribe(engine, seeded.api_key, receiver.url)
    for n in range(20):
        await _store_update(engine, seeded, app_id, note=f"Update {n}")
    ids = [row["id"] for row in await _deliveries(engine)]
    now = datetime.now(UTC)

    async def worker() -> int:
        sent = 0
        while done := await webhooks.deliver_due(engine, http, limit=3, now=now):
            sent += done
        return sent

    per_worker = await asyncio.gather(*(worker() for _ in range(4)))
    assert sum(per_worker) == 20
    received = [int(r.headers["x-open311-delivery"]) for r in receiver.requests]
    assert sorted(received) == ids  # every delivery exactly once
    rows = await _deliveries(engine)
    assert {(r["state"], r["attempts"]) for r in rows} == {("delivered", 1)}


async def test_two_concurrent_deliver_due_calls_split_the_work(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    app_id, _, _ = await _subscribe(engine, seeded.api_key, receiver.url)
    for n in range(6):
        await _store_update(engine, seeded, app_id, note=f"Update {n}")
    now = datetime.now(UTC)

    async def worker() -> int:
        # Each call takes at most per-app-concurrency deliveries of the app: call until done.
        sent = 0
        while done := await webhooks.deliver_due(engine, http, now=now):
            sent += done
        return sent

    counts = await asyncio.gather(worker(), worker())
    assert sum(counts) == 6
    received = [r.headers["x-open311-delivery"] for r in receiver.requests]
    assert len(received) == len(set(received)) == 6


async def test_timeouts_and_connection_errors_are_retried(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    app_id, _, _ = await _subscribe(engine, seeded.api_key, "https://receiver.invalid/hook")
    await _store_update(engine, seeded, app_id)
    failures: list[type[Exception] | None] = [httpx.ReadTimeout, httpx.ConnectError, None]
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        failure = failures[len(seen) - 1]
        if failure is not None:
            raise failure("simulated", request=request)
        return httpx.Response(204)

    at = datetime.now(UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        assert await webhooks.deliver_due(engine, mock, now=at) == 1
        (row,) = await _deliveries(engine)
        assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
        assert "Timed out" in row["last_error"]
        assert row["next_attempt_at"] == at + webhooks.retry_delay(1)

        at = row["next_attempt_at"]
        assert await webhooks.deliver_due(engine, mock, now=at) == 1
        (row,) = await _deliveries(engine)
        assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 2, None)
        assert "ConnectError" in row["last_error"]

        assert await webhooks.deliver_due(engine, mock, now=row["next_attempt_at"]) == 1
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 204)
    assert [str(r.url) for r in seen] == ["https://receiver.invalid/hook"] * 3


async def test_a_receiver_that_never_answers_hits_the_deadline(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    app_id, _, _ = await _subscribe(engine, seeded.api_key, "https://slow.invalid/hook")
    await _store_update(engine, seeded, app_id)

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # longer than the deadline: the sender gives up first
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=0.05) as mock:
        assert webhooks.send_deadline(mock) == pytest.approx(0.1)
        started = time.monotonic()
        assert await webhooks.deliver_due(engine, mock) == 1
        assert time.monotonic() - started < 2
    (row,) = await _deliveries(engine)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
    assert "Timed out" in row["last_error"]


async def test_deleted_and_inactive_subscriptions_send_nothing(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    engine = engine_of(client)
    app_id, deleted_id, _ = await _subscribe(engine, seeded.api_key, receiver.url + "?d")
    _, inactive_id, _ = await _subscribe(engine, seeded.api_key, receiver.url + "?i")
    await _store_update(engine, seeded, app_id)
    assert len(await _deliveries(engine)) == 2
    async with write_transaction(engine) as conn:
        assert await webhooks.delete_subscription(conn, app_id=app_id, subscription_id=deleted_id)
        assert not await webhooks.delete_subscription(
            conn, app_id=app_id + 1, subscription_id=inactive_id
        )
        await conn.execute(
            update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == inactive_id).values(active=False)
        )
    assert await webhooks.deliver_due(engine, http) == 0
    (row,) = await _deliveries(engine)  # the deleted subscription's delivery went with it
    assert (row["subscription_id"], row["state"]) == (inactive_id, "failed")
    assert row["last_error"] == "The subscription is inactive."
    assert receiver.requests == []


async def test_list_subscriptions_never_returns_the_secret(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    app_id, subscription_id, secret = await _subscribe(
        engine, seeded.api_key, "https://app.example.org/hook"
    )
    async with engine.connect() as conn:
        (row,) = await webhooks.list_subscriptions(conn, app_id=app_id)
        assert await webhooks.list_subscriptions(conn, app_id=app_id + 1) == []
    assert {"id", "url", "active", "created_at", "kind"} <= set(row)
    assert row["kind"] == "own"  # updates of the app's own requests (not a feed)
    assert row["id"] == subscription_id
    assert secret not in repr(row)
