"""Helpers of the rate-limit and small-hole tests: callers at other addresses, error documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support import JSON_TYPE, XML_TYPE, error_descriptions, get_scope, xml_to_value

BASE = "/open311/v2"


@asynccontextmanager
async def caller(client: httpx.AsyncClient, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app as ``client`` whose connection comes from ``host``."""
    app: Any = client.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(host, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        yield other


def georeport_errors(response: httpx.Response, status: int) -> list[str]:
    """The descriptions of the GeoReport error document ``response`` is (format of its path;
    XML when the path has no suffix), checking its status and shape."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    if response.url.path.endswith(".json"):
        assert response.headers["content-type"] == JSON_TYPE
        value = response.json()
    else:
        assert response.headers["content-type"] == XML_TYPE
        root, items = xml_to_value(response.content)
        assert root == "errors", root
        value = [{"code": int(i["code"]), "description": i["description"]} for i in items]
    assert {item["code"] for item in value} == {status}, value
    return error_descriptions(value)


def assert_too_many(response: httpx.Response) -> None:
    """A 429 in the GeoReport format that says when to come back."""
    georeport_errors(response, 429)
    assert int(response.headers["retry-after"]) >= 1


async def raw_get(client: httpx.AsyncClient, path: str, query: bytes) -> httpx.Response:
    """GET ``path?query`` on the app behind ``client``, handing it the ASGI scope directly:
    for a query longer than httpx builds URLs of (64 KiB), which real clients can send."""
    app: Any = client.app  # type: ignore[attr-defined]
    scope = get_scope(path, query)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    request = httpx.Request("GET", f"http://testserver{path}")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
    return httpx.Response(start["status"], headers=headers, content=body, request=request)
