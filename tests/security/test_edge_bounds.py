"""Findings 1–3: no single caller can stall the server.

A real ``open311 serve`` process (uvicorn) on each backend: hostile POSTs with every text
field at the body limit and a thousand connections that send headers and never their body
are in progress while an ordinary GET is answered promptly; a stalled upload is answered 408
and frees its connection; bodies over the limit are refused while they stream, before any
parsing or authentication (the admin API included).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.conftest import Seed
from tests.ops.server import Server, cli_env, serve

BASE = "/open311/v2"
BODY_LIMIT = 1 << 20
STALLED = 1000
BODY_TIMEOUT_S = 3
# What an ordinary call may take while the server is under attack (generous: CI machines
# are slow; a stalled loop takes seconds to hours).
PROMPT_S = 2.0


@pytest.fixture
def live(tmp_path: Path, settings: Settings, seeded: Seed) -> Iterator[Server]:
    """A real server on the test database of this backend (seeded), with a short body
    timeout and the default in-flight limit (256)."""
    env = cli_env(
        tmp_path,
        OPEN311_HTTP__BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        OPEN311_RATE_LIMITS__ANONYMOUS_PER_MINUTE="100000",
        OPEN311_RATE_LIMITS__PER_KEY_PER_MINUTE="100000",
        OPEN311_WORKER__IN_PROCESS="false",
        OPEN311_LOG_LEVEL="warning",
    )
    if settings.db.url:
        env["OPEN311_DB__URL"] = settings.db.url
    else:
        env["OPEN311_DB__SQLITE_PATH"] = str(settings.db.sqlite_path)
    with serve(tmp_path, env) as server:
        yield server


def _stall(url: str, count: int) -> list[socket.socket]:
    """``count`` connections that send a POST's headers (announcing a body) and no body."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(
            f"POST {BASE}/requests.json HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 5000\r\n\r\n".encode()
        )
        sockets.append(sock)
    return sockets


def _hostile_forms(seed: Seed) -> list[dict[str, str]]:
    """One POST per text field, that field as long as the body limit allows, shaped as the
    worst case of a backtracking e-mail pattern."""
    size = BODY_LIMIT - 4096
    worst = "a@" + "a." * (size // 2 - 2) + "@"
    base = {
        "api_key": seed.api_key,
        "jurisdiction_id": seed.jurisdiction_id,
        "service_code": "POTHOLE",
        "lat": "43.65",
        "long": "-79.38",
    }
    fields = [
        "email",
        "description",
        "address_string",
        "first_name",
        "last_name",
        "phone",
        "device_id",
        "account_id",
        "media_url",
        "attribute[SIZE]",
        "attribute[DETAILS]",
        "attribute[SEEN]",
    ]
    return [{**base, name: worst[:size]} for name in fields]


@pytest.mark.parametrize("stalled_uploads", [0, STALLED], ids=["posts", "posts+stalled"])
def test_a_get_is_answered_promptly_during_hostile_posts_and_stalled_uploads(
    live: Server, seeded: Seed, stalled_uploads: int
) -> None:
    stalled = _stall(live.url, stalled_uploads)
    failures: list[str] = []
    done = threading.Event()

    def attack() -> None:
        with httpx.Client(base_url=live.url, timeout=120) as http:
            while not done.is_set():
                for form in _hostile_forms(seeded):
                    response = http.post(f"{BASE}/requests.json", data=form)
                    if response.status_code not in (400, 413):
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    if done.is_set():
                        return

    attackers = [threading.Thread(target=attack, daemon=True) for _ in range(2)]
    try:
        for thread in attackers:
            thread.start()
        time.sleep(0.5)
        with httpx.Client(base_url=live.url, timeout=30) as http:
            for _ in range(10):
                started = time.monotonic()
                response = http.get(
                    f"{BASE}/services.json", params={"jurisdiction_id": seeded.jurisdiction_id}
                )
                took = time.monotonic() - started
                assert response.status_code == 200, response.text
                assert took < PROMPT_S, f"a GET took {took:.1f} s during the attack"
                time.sleep(0.1)
    finally:
        done.set()
        for thread in attackers:
            thread.join(timeout=30)
        for sock in stalled:
            sock.close()
    assert not failures, failures[:3]


def test_a_stalled_upload_is_answered_408_and_frees_its_connection(live: Server) -> None:
    [sock] = _stall(live.url, 1)
    sock.settimeout(BODY_TIMEOUT_S + 10)
    started = time.monotonic()
    chunks = []
    try:
        while chunk := sock.recv(65536):  # the server closes the connection after answering
            chunks.append(chunk)
    finally:
        sock.close()
    answer = b"".join(chunks).decode("latin-1")
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < BODY_TIMEOUT_S + 5
    assert "<code>408</code>" not in answer  # a .json path: the error document is JSON
    assert '"code":408' in answer.replace(" ", "")


@pytest.mark.parametrize(
    "path", [f"{BASE}/requests.json", f"{BASE}/requests.xml", "/admin/v1/apps.json"]
)
async def test_bodies_over_the_limit_are_refused_while_streaming(
    client: httpx.AsyncClient, seeded: Seed, path: str
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        # No Content-Length: the edge counts the bytes as they arrive.
        for _ in range(64):
            yield b"description=" + b"x" * (64 << 10) + b"&"

    response = await client.post(
        path,
        content=endless(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert (b"<code>413</code>" in response.content) == path.endswith(".xml")


@pytest.mark.parametrize("digits", [19, 5000])
async def test_an_absurd_content_length_is_refused_not_a_crash(
    client: httpx.AsyncClient, seeded: Seed, digits: int
) -> None:
    # int() refuses strings of more than 4,300 digits: the edge must not parse them.
    response = await client.post(
        f"{BASE}/requests.json",
        content=b"a=b",
        headers={
            "Content-Length": "9" * digits,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 413
    assert response.json()[0]["code"] == 413


async def test_admin_api_refuses_a_large_body_before_parsing_it(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    # 12 MB of JSON and no key: refused as too large, never parsed.
    body = b'{"app": "x", "contact": "' + b"y" * (12 << 20) + b'"}'
    response = await client.post(
        "/admin/v1/keys.json", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()[0]["code"] == 413


async def test_admin_api_checks_the_key_before_the_body(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    # A malformed body without a key: the missing key is what is wrong (the body is not read).
    for headers in ({}, {"Authorization": f"Bearer {seeded.api_key}"}):
        response = await client.post(
            "/admin/v1/keys.json",
            content=b'{"app": [[[[[[',
            headers={"Content-Type": "application/json", **headers},
        )
        assert response.status_code == 403, response.text
        assert response.json()[0]["code"] == 403


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{BASE}/services.json?jurisdiction_id=" + "x" * 9000, 414),
        (f"{BASE}/services.xml", 431),
    ],
)
async def test_url_and_headers_are_capped(
    client: httpx.AsyncClient, seeded: Seed, path: str, status: int
) -> None:
    headers = {"X-Padding": "p" * 20000} if status == 431 else {}
    response = await client.get(path, headers=headers)
    assert response.status_code == status
    if path.endswith(".xml"):
        assert f"<code>{status}</code>".encode() in response.content
    else:
        assert response.json()[0]["code"] == status
