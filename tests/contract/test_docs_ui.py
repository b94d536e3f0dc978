"""The interactive docs at /docs work offline: every asset comes from the app itself."""

from __future__ import annotations

import re

import httpx
import pytest

from app.main import create_app
from app.settings import Settings

pytestmark = pytest.mark.contract

URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture
async def http() -> httpx.AsyncClient:
    # /docs and its assets touch no database: no lifespan needed.
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_docs_reference_only_local_assets(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "SwaggerUIBundle" in html
    assert not re.search(r"https?://", html), "the docs page names an external host"
    referenced = URL.findall(html)
    assert "/openapi.json" in referenced
    assets = [u for u in referenced if u.startswith("/docs/assets/")]
    assert {u.rsplit("/", 1)[1] for u in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "favicon-32x32.png",
    }
    for url in referenced:
        assert url.startswith("/"), url
        answer = await http.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url


async def test_cdn_docs_are_gone(http: httpx.AsyncClient) -> None:
    assert (await http.get("/redoc")).status_code == 404
    bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
