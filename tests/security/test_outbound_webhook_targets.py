"""Webhooks are no SSRF channel: targets must be public, at registration and on delivery.

Registration goes through POST webhooks (both formats, both backends); delivery through the
real worker loop (``Worker.run``) and its real HTTP client, towards a receiver on loopback
that must never be reached unless the operator allows private targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbound
from app.settings import Settings, WebhookSettings, WorkerSettings
from app.store.tables import WebhookDelivery, WebhookSubscription
from app.worker import Worker
from tests.conftest import Seed, engine_of
from tests.lifecycle.test_webhooks import (
    _error,
    _items,
    _store_update,
    _subscribe,
)
from tests.security.test_outbound_webhook_isolation import until
from tests.support import Receiver

BASE = "/open311/v2"
DELIVERY = WebhookDelivery.__table__
SUBSCRIPTION = WebhookSubscription.__table__

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://localhost:8000/hook",
    "https://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8000/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[::]/hook",
    "http://[::1]:8000/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[ff02::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # ::ffff:169.254.169.254
    "http://[2002:7f00:1::1]/hook",  # 6to4 around 127.0.0.1
    "http://2130706433/hook",  # 127.0.0.1 as one integer
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://3232235777/hook",  # 192.168.1.1
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_private_targets_are_refused_at_registration(
    client: httpx.AsyncClient, seeded: Seed, fmt: str
) -> None:
    for url in PRIVATE_URLS:
        response = await client.post(
            f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": url}
        )
        assert "url" in _error(response, fmt, 400), url
    async with engine_of(client).connect() as conn:
        assert (await conn.execute(select(SUBSCRIPTION.c.url))).all() == []
    # Public targets are still welcome (a name that does not resolve yet is checked on
    # delivery).
    for url in ("https://93.184.215.14/hook", "https://hooks.example/open311"):
        created = await client.post(
            f"{BASE}/webhooks.{fmt}", data={"api_key": seeded.api_key, "url": url}
        )
        assert created.status_code == 200, created.text
        assert _items(created, fmt)[0]["url"] == url


async def test_a_name_resolving_to_a_private_address_is_refused(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    host = socket.gethostname()  # resolves through the system resolver (/etc/hosts, DNS)
    resolved = {info[4][0] for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)}
    if all(outbound.is_public(outbound.parse_ip(a.split("%")[0])) for a in resolved):
        pytest.skip(f"this machine's name {host} resolves to public addresses only")
    response = await client.post(
        f"{BASE}/webhooks.json", data={"api_key": seeded.api_key, "url": f"http://{host}/h"}
    )
    assert "not a public address" in _error(response, "json", 400)


async def test_the_operator_may_allow_private_targets(make_client: Any, seeded: Seed) -> None:
    client = await make_client(webhooks=WebhookSettings(allow_private_targets=True))
    created = await client.post(
        f"{BASE}/webhooks.json",
        data={"api_key": seeded.api_key, "url": "http://127.0.0.1:9/hook"},
    )
    assert created.status_code == 200, created.text
    # Encoded addresses stay refused: they are never what an operator meant.
    encoded = await client.post(
        f"{BASE}/webhooks.json", data={"api_key": seeded.api_key, "url": "http://2130706433/"}
    )
    _error(encoded, "json", 400)


# ---------------------------------------------------------------------------------------
# Delivery: the address is checked again on every connection


def _worker_settings(settings: Settings, *, allow_private: bool) -> Settings:
    return settings.model_copy(
        update={
            "worker": WorkerSettings(in_process=False, poll_seconds=0.05, webhook_timeout_s=2),
            "webhooks": WebhookSettings(allow_private_targets=allow_private),
        }
    )


async def _run_worker_until(
    engine: AsyncEngine, settings: Settings, done: Any, within: float = 10
) -> None:
    """Run the real worker loop until ``await done()`` is true (at most ``within`` s)."""
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(engine, settings).run(stop))
    try:
        await until(done, within)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def _rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(DELIVERY).order_by(DELIVERY.c.id))
        return [dict(row) for row in rows.mappings()]


async def test_delivery_checks_the_address_again(
    client: httpx.AsyncClient, seeded: Seed, receiver: Receiver, settings: Settings
) -> None:
    # Stored before the rule existed, or a name whose DNS changed after registration: the
    # worker must still refuse to connect (a literal loopback address and a name that
    # resolves to one).
    engine = engine_of(client)
    app_id, _, _ = await _subscribe(engine, seeded.api_key, receiver.url)
    await _subscribe(engine, seeded.api_key, f"http://localhost:{receiver.port}/hook")
    await _store_update(engine, seeded, app_id)

    async def attempted() -> bool:
        return all(
            row["attempts"] >= 1 and (row["last_error"] or row["state"] != "pending")
            for row in await _rows(engine)
        )

    await _run_worker_until(engine, _worker_settings(settings, allow_private=False), attempted)
    assert receiver.requests == []
    rows = await _rows(engine)
    assert len(rows) == 2
    for row in rows:
        assert row["state"] == "pending"
        assert row["last_status"] is None
        assert "is not a public address" in row["last_error"]

    # The operator's setting lets the same deliveries through.
    async def delivered() -> bool:
        return {row["state"] for row in await _rows(engine)} == {"delivered"}

    later = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(DELIVERY.update().values(next_attempt_at=later))
    await _run_worker_until(engine, _worker_settings(settings, allow_private=True), delivered)
    assert len(receiver.requests) == 2


class _FlippingResolver:
    """DNS for ``rebind.test`` that answers a public address first, loopback afterwards."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return self.real(host, port, *args, **kwargs)
        self.calls += 1
        address = "8.8.8.8" if self.calls == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


class _RecordingNetwork(httpcore.AsyncNetworkBackend):
    """The network below the guard: records where connections go, opens none."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, **kwargs: Any) -> Any:
        self.connected.append(host)
        raise httpcore.ConnectError(f"no network to {host} in this test")


async def test_the_connection_goes_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No DNS rebinding: one lookup per connection, and the connection uses its answer."""
    resolver = _FlippingResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    transport = outbound.GuardedTransport(allow_private=False)
    network = _RecordingNetwork()
    transport.backend._backend = network  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=transport, timeout=2) as http:
        with pytest.raises(httpx.ConnectError, match=r"no network to 8\.8\.8\.8"):
            await http.post("http://rebind.test:8080/hook", content=b"{}")
        # The second lookup answers loopback: refused before any connection is made.
        with pytest.raises(httpx.ConnectError, match="not a public address"):
            await http.post("http://rebind.test:8080/hook", content=b"{}")
    assert resolver.calls == 2
    assert network.connected == ["8.8.8.8"]


async def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def mixed(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "mixed.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    transport = outbound.GuardedTransport(allow_private=False)
    network = _RecordingNetwork()
    transport.backend._backend = network  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=transport, timeout=2) as http:
        with pytest.raises(httpx.ConnectError, match=r"169\.254\.169\.254"):
            await http.get("http://mixed.test/")
    assert network.connected == []
    assert await outbound.check_target("http://mixed.test/", allow_private=False)
