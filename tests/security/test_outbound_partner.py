"""Partner (federation) calls: answers are capped while they stream, and only admins may
make the server call a partner live (``?check=true``).

Partners are ``httpx.MockTransport`` upstreams whose bodies are streamed chunk by chunk, so
the tests see how much of an answer was read before it was refused.
"""

from __future__ import annotations

import tracemalloc
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.domain.api_keys import create_key
from app.federation.errors import UpstreamBadResponse
from app.federation.partners import add_remote
from app.federation.service import Federation
from app.settings import Settings
from app.store.tables import FederationPartner
from tests.conftest import engine_of
from tests.federation.conftest import invalidate

BASE = "/open311/v2"
CODE = "bomb.example.net"
HOST = "http://bomb.test"
PARTNER = FederationPartner.__table__
LIMIT = 1 << 20  # federation.max_response_bytes in these tests


class Upstream:
    """A partner answering every call with ``chunks`` (streamed), counting what was read."""

    def __init__(self, chunks: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.chunks = chunks
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.calls = 0
        self.served = 0

    async def _stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.served += 1
            yield chunk

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, headers=self.headers, content=self._stream())


def gzip_bomb(size: int, chunk: int = 4096) -> list[bytes]:
    """``size`` bytes of JSON-ish zeros, gzip-compressed (ratio ~1000:1), in chunks."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"0" * (1 << 20)
    data = b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()
    return [data[i : i + chunk] for i in range(0, len(data), chunk)]


async def _remote(client: httpx.AsyncClient) -> None:
    await add_remote(
        engine_of(client), code=CODE, name=CODE, url=f"{HOST}/open311/v2", partner_key="k"
    )
    invalidate(client)


def _capped(client: httpx.AsyncClient) -> Settings:
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    federation = settings.federation.model_copy(update={"max_response_bytes": LIMIT})
    return settings.model_copy(update={"federation": federation})


async def _refresh(client: httpx.AsyncClient, upstream: Upstream) -> tuple[Any, int]:
    """Refresh the partner through ``upstream``: (its error, peak traced memory in bytes)."""
    mounts = {HOST: httpx.MockTransport(upstream)}
    async with Federation(engine_of(client), _capped(client), mounts=mounts) as federation:
        tracemalloc.start()
        try:
            [report] = await federation.refresh(CODE)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return report.error, peak


async def test_a_gzip_bomb_is_refused_after_the_limit_with_bounded_memory(
    client: httpx.AsyncClient,
) -> None:
    await _remote(client)
    bomb = gzip_bomb(64 << 20)  # 64 KiB on the wire, 64 MiB decompressed
    upstream = Upstream(bomb, {"Content-Encoding": "gzip"})
    error, peak = await _refresh(client, upstream)
    # Refused as soon as the decompressed size passed the limit: the first chunks only,
    # never the whole answer in memory.
    assert upstream.served <= 2 < len(bomb)
    assert peak < 16 << 20, peak
    assert isinstance(error, UpstreamBadResponse)
    assert "larger than" in str(error)
    async with engine_of(client).connect() as conn:
        last_error = (await conn.execute(select(PARTNER.c.last_error))).scalar_one()
    assert "larger than" in last_error


async def test_a_huge_plain_answer_is_refused_while_it_streams(
    client: httpx.AsyncClient,
) -> None:
    await _remote(client)
    chunk = b" " * (64 << 10)
    upstream = Upstream([chunk] * 128)  # 8 MiB of whitespace
    error, _ = await _refresh(client, upstream)
    assert upstream.served <= LIMIT // len(chunk) + 1 < 128
    assert isinstance(error, UpstreamBadResponse)
    assert "larger than" in str(error)


async def test_an_encoding_we_did_not_ask_for_is_refused(client: httpx.AsyncClient) -> None:
    await _remote(client)
    upstream = Upstream([b"\x1b\x00\x00"], {"Content-Encoding": "br"})
    error, _ = await _refresh(client, upstream)
    assert isinstance(error, UpstreamBadResponse)
    assert "Content-Encoding" in str(error)


# ---------------------------------------------------------------------------------------
# ?check=true: admins only


async def _key(client: httpx.AsyncClient, scopes: str) -> str:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, f"{scopes} {uuid.uuid4().hex[:6]}", scopes=scopes)
    return key


def _error(response: httpx.Response, fmt: str) -> str:
    assert response.status_code == 403, response.text
    if fmt == "json":
        [error] = response.json()
        assert error["code"] == 403
        return str(error["description"])
    root = ET.fromstring(response.content)  # noqa: S314 - parses this server's own response
    assert root.tag == "errors"
    assert root.findtext("error/code") == "403"
    return root.findtext("error/description") or ""


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_live_probe_needs_an_admin_key(client: httpx.AsyncClient, fmt: str) -> None:
    await _remote(client)
    upstream = Upstream([b"[]"])
    client.app.state.federation_mounts = {HOST: httpx.MockTransport(upstream)}  # type: ignore[attr-defined]
    url = f"{BASE}/jurisdictions/{CODE}.{fmt}"
    submit, admin = await _key(client, "submit"), await _key(client, "admin")

    refused = [
        await client.get(url, params={"check": "true"}),
        await client.get(url, params={"check": "1", "api_key": "not-a-real-key-1234"}),
        await client.get(url, params={"check": "true", "api_key": submit}),
        await client.get(
            url, params={"check": "true"}, headers={"Authorization": f"Bearer {submit}"}
        ),
        await client.get(url, params={"check": "true"}, headers={"Authorization": "Bearer x"}),
    ]
    assert "admin scope" in _error(refused[0], fmt)
    for response in refused[1:]:
        _error(response, fmt)
    assert upstream.calls == 0  # nobody made us call the partner

    # Without check the listing stays public and calls nobody.
    assert (await client.get(url)).status_code == 200
    assert upstream.calls == 0

    by_param = await client.get(url, params={"check": "true", "api_key": admin})
    assert by_param.status_code == 200, by_param.text
    by_header = await client.get(
        url, params={"check": "true"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert by_header.status_code == 200, by_header.text
    assert upstream.calls == 2
