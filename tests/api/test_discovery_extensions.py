"""Discovery tells the truth (issue 20, point 6): every extension this server serves is
listed (with its resources and formats), and only those; the registry
(``app.domain.discovery.EXTENSIONS``) and the routes actually mounted are the same; the
largest page and the languages on offer are those the API applies. Both backends, both
formats."""

from __future__ import annotations

import httpx

from app.domain.discovery import CORE_RESOURCES, EXTENSIONS, SPECIFICATION
from app.settings import ExportSettings, RequestsSettings
from tests.conftest import AppFactory, clear, engine_of, seed_catalog
from tests.support import fetch_both

BASE = "/open311/v2"


async def _mounted(client: httpx.AsyncClient) -> set[str]:
    """The paths of the GeoReport routes the app serves (its generated OpenAPI document,
    which lists every route), relative to the base path."""
    spec = (await client.get("/openapi.json")).json()
    return {path[len(BASE) + 1 :] for path in spec["paths"] if path.startswith(BASE + "/")}


async def test_the_registry_is_the_mounted_routes(client: httpx.AsyncClient) -> None:
    mounted = await _mounted(client)
    # An extension lists the routes it adds and those it adds parameters or parts to (bbox= on
    # requests.{format}, photos on servicerequestupdates.{format}).
    registered = {r for e in EXTENSIONS for r in e.resources}
    # Every extension's resources are served, and every route served is GeoReport's or an
    # extension's: a new route without its registry entry fails here.
    assert registered <= mounted, registered - mounted
    assert mounted == registered | set(CORE_RESOURCES), mounted - registered - set(CORE_RESOURCES)
    assert all(e.resources for e in EXTENSIONS)


async def test_discovery_lists_every_enabled_extension_and_the_limits(
    client: httpx.AsyncClient,
) -> None:
    await seed_catalog(engine_of(client))
    both = await fetch_both(client, "discovery")
    document = both.json
    listed = {e["specification"]: e for e in document["endpoints"]}
    assert listed[SPECIFICATION]["url"] == f"http://testserver{BASE}"
    assert "resources" not in listed[SPECIFICATION]
    for extension in EXTENSIONS:
        endpoint = listed[extension.specification]
        assert endpoint["resources"] == list(extension.resources)
        assert endpoint["formats"] == list(extension.formats)
        assert endpoint["url"] == f"http://testserver{BASE}"
    # The largest page is the one GET requests applies (its X-Page-Size-Max).
    page = await client.get(f"{BASE}/requests.json")
    assert document["max_page_size"] == int(page.headers["x-page-size-max"])
    # The languages on offer: the server's messages' (English first, French) at least.
    assert document["locales"][0] == "en"
    assert "fr" in document["locales"]
    # The XML document says the same.
    assert both.xml["max_page_size"] == str(document["max_page_size"])
    assert both.xml["locales"] == document["locales"]


async def test_a_switched_off_extension_is_not_listed(make_client: AppFactory) -> None:
    client: httpx.AsyncClient = await make_client(
        exports=ExportSettings(enabled=False), requests=RequestsSettings(max_results=250)
    )
    await clear(engine_of(client))
    await seed_catalog(engine_of(client))
    document = (await client.get(f"{BASE}/discovery.json")).json()
    specifications = [e["specification"] for e in document["endpoints"]]
    assert "urn:open311-server:extension:exports:v1" not in specifications
    assert (await client.get(f"{BASE}/exports/requests.csv")).status_code == 404
    assert document["max_page_size"] == 250
