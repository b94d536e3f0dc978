"""HTTP caching (issue 20, point 4) of discovery, services, service definitions and areas:
validators on every answer, 304s on conditional GETs, new validators when the content changes.
Both backends, both formats."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from app.demo.loader import BOUNDARIES
from app.domain.boundaries import import_boundary_set, read_geojson, set_current
from app.domain.catalog_import import upsert_services
from app.settings import CacheSettings
from app.store.tables import ServiceType
from tests.api.test_languages import translate_catalog
from tests.conftest import AppFactory, Seed, engine_of

BASE = "/open311/v2"
FORMATS = ("json", "xml")
STRONG_ETAG = re.compile(r'^"[0-9a-f]{24}"$')
# Every cached resource, with the parameters of a call that finds it.
RESOURCES = ("discovery", "services", "services/POTHOLE", "services/FEEDBACK", "areas")


def url(resource: str, fmt: str) -> str:
    """The path of a resource in a format."""
    return f"{BASE}/{resource}.{fmt}"


def check_validators(response: httpx.Response, cache_control: str) -> tuple[str, str]:
    """The answer's ETag (strong) and Last-Modified (an HTTP-date, not in the future)."""
    etag, last_modified = response.headers["etag"], response.headers["last-modified"]
    assert STRONG_ETAG.match(etag), etag
    moment = parsedate_to_datetime(last_modified)
    assert last_modified.endswith(" GMT")
    assert moment <= datetime.now(UTC)
    assert response.headers["cache-control"] == cache_control
    return etag, last_modified


def refresh(client: httpx.AsyncClient) -> None:
    """Make the app read the catalogue again now (a running server does within seconds)."""
    client.app.state.open311.catalogs.invalidate()  # type: ignore[attr-defined]


async def fetch(
    client: httpx.AsyncClient, resource: str, fmt: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.get(url(resource, fmt), headers=headers)


async def test_validators_and_304s(client: httpx.AsyncClient, seeded: Seed) -> None:
    for resource in RESOURCES:
        tags = set()
        for fmt in FORMATS:
            full = await fetch(client, resource, fmt)
            assert full.status_code == 200, (resource, full.text[:300])
            assert full.content
            etag, last_modified = check_validators(full, "public, max-age=60")
            tags.add(etag)
            for headers in (
                {"If-None-Match": etag},
                {"If-None-Match": f'"aaaaaaaaaaaaaaaaaaaaaaaa", W/{etag}'},  # weak comparison
                {"If-None-Match": "*"},
                {"If-Modified-Since": last_modified},
                {"If-Modified-Since": format_datetime(datetime.now(UTC), usegmt=True)},
            ):
                cached = await fetch(client, resource, fmt, headers)
                assert cached.status_code == 304, (resource, fmt, headers)
                assert cached.content == b""
                assert "content-type" not in cached.headers
                # A 304 carries the answer's validators and caching headers.
                for name in ("etag", "last-modified", "cache-control"):
                    assert cached.headers[name] == full.headers[name], (resource, name)
                for name in ("content-language", "vary"):
                    assert cached.headers.get(name) == full.headers.get(name), (resource, name)
            earlier = parsedate_to_datetime(last_modified) - timedelta(seconds=1)
            for headers in (
                {"If-None-Match": '"aaaaaaaaaaaaaaaaaaaaaaaa"'},
                {"If-None-Match": etag.strip('"')},  # not a quoted tag
                {"If-Modified-Since": format_datetime(earlier, usegmt=True)},
                {"If-Modified-Since": "yesterday"},  # not a date: ignored
                {"If-Modified-Since": "x" * 500},
                # If-None-Match decides alone when both are sent.
                {"If-None-Match": '"aaaaaaaaaaaaaaaaaaaaaaaa"', "If-Modified-Since": last_modified},
            ):
                again = await fetch(client, resource, fmt, headers)
                assert again.status_code == 200, (resource, fmt, headers)
                assert again.content == full.content
                assert again.headers["etag"] == etag
        # The two formats are two representations: two tags.
        assert len(tags) == 2, resource


async def test_the_tag_depends_on_the_language(
    client: httpx.AsyncClient, seeded: Seed, tmp_path: Path
) -> None:
    await translate_catalog(client, seeded, tmp_path)
    english = await fetch(client, "services", "json")
    french = await fetch(client, "services", "json", {"Accept-Language": "fr"})
    assert french.headers["content-language"] == "fr"
    assert english.headers["etag"] != french.headers["etag"]
    # The English copy is not the French answer's, and the other way round.
    asked = await fetch(
        client,
        "services",
        "json",
        {"Accept-Language": "fr", "If-None-Match": english.headers["etag"]},
    )
    assert asked.status_code == 200
    assert asked.content == french.content
    cached = await fetch(
        client,
        "services",
        "json",
        {"Accept-Language": "fr", "If-None-Match": french.headers["etag"]},
    )
    assert cached.status_code == 304
    assert cached.headers["content-language"] == "fr"
    # A language not on offer is answered in English: the English tag.
    german = await fetch(client, "services", "json", {"Accept-Language": "de"})
    assert german.headers["etag"] == english.headers["etag"]


async def test_a_changed_catalogue_changes_the_tags(
    client: httpx.AsyncClient, seeded: Seed, tmp_path: Path
) -> None:
    # The catalogue was last changed long ago (discovery's changeset has whole seconds).
    async with engine_of(client).begin() as conn:
        await conn.execute(update(ServiceType).values(updated_at=datetime(2020, 1, 1, tzinfo=UTC)))
    refresh(client)
    before = {
        (resource, fmt): await fetch(client, resource, fmt)
        for resource in ("discovery", "services", "services/POTHOLE")
        for fmt in FORMATS
    }
    entry = next(s for s in seeded.catalog["services"] if s["service_code"] == "POTHOLE")
    attributes = [dict(a) for a in entry["attributes"]]
    attributes[0]["description"] = "Anything the crew should know first?"
    changed = {
        **entry,
        "description": "A hole in the road surface, reported by a test.",
        "attributes": attributes,
    }
    async with engine_of(client).begin() as conn:
        await upsert_services(conn, seeded.jurisdiction_pk, [changed])
    refresh(client)
    for (resource, fmt), old in before.items():
        new = await fetch(client, resource, fmt)
        assert new.content != old.content, (resource, fmt)
        assert new.headers["etag"] != old.headers["etag"], (resource, fmt)
        assert parsedate_to_datetime(new.headers["last-modified"]) >= parsedate_to_datetime(
            old.headers["last-modified"]
        )
        stale = await fetch(client, resource, fmt, {"If-None-Match": old.headers["etag"]})
        assert stale.status_code == 200
        assert stale.content == new.content
    # A change that a document does not show leaves its tag (the tag is its body's).
    only_name = {**changed, "service_name": "Pothole (renamed)"}
    definition = await fetch(client, "services/POTHOLE", "json")
    async with engine_of(client).begin() as conn:
        await upsert_services(conn, seeded.jurisdiction_pk, [only_name])
    refresh(client)
    same = await fetch(
        client, "services/POTHOLE", "json", {"If-None-Match": definition.headers["etag"]}
    )
    assert same.status_code == 304
    renamed = await fetch(client, "services", "json")
    assert "Pothole (renamed)" in renamed.text
    # A new translation changes the tags of that language (and the Last-Modified).
    french = await fetch(client, "services", "json", {"Accept-Language": "fr"})
    await translate_catalog(client, seeded, tmp_path)
    translated = await fetch(client, "services", "json", {"Accept-Language": "fr"})
    assert translated.headers["etag"] != french.headers["etag"]
    assert translated.headers["content-language"] == "fr"


async def test_a_reread_unchanged_catalogue_keeps_its_tags(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    first = await fetch(client, "services", "xml")
    refresh(client)
    second = await fetch(client, "services", "xml", {"If-None-Match": first.headers["etag"]})
    assert second.status_code == 304
    assert second.headers["etag"] == first.headers["etag"]


async def test_areas_tags_follow_the_boundary_sets(client: httpx.AsyncClient, seeded: Seed) -> None:
    engine = engine_of(client)
    empty = await fetch(client, "areas", "json")
    assert empty.json() == []
    areas = read_geojson(
        BOUNDARIES / "toronto_wards_25.geojson", code_field="ward_code", name_field="ward_name"
    )
    first_id = await import_boundary_set(
        engine, jurisdiction=seeded.jurisdiction_id, name="wards-a", areas=areas[:3], source="t"
    )
    imported = await fetch(client, "areas", "json")
    assert len(imported.json()) == 3
    assert imported.headers["etag"] != empty.headers["etag"]
    await import_boundary_set(
        engine, jurisdiction=seeded.jurisdiction_id, name="wards-b", areas=areas[:5], source="t"
    )
    newer = await fetch(client, "areas", "json")
    assert len(newer.json()) == 5
    assert newer.headers["etag"] != imported.headers["etag"]
    # Making the older set current again changes the tag and moves Last-Modified forward,
    # so a client revalidating with either validator gets the new list.
    async with engine.begin() as conn:
        await set_current(conn, first_id)
    back = await fetch(client, "areas", "json")
    assert len(back.json()) == 3
    assert back.headers["etag"] not in (newer.headers["etag"],)
    assert parsedate_to_datetime(back.headers["last-modified"]) >= parsedate_to_datetime(
        newer.headers["last-modified"]
    )
    stale = await fetch(client, "areas", "json", {"If-None-Match": newer.headers["etag"]})
    assert stale.status_code == 200
    # Other parameters are other documents: their own tags.
    named = await fetch(client, "areas", "json", {})
    with_geometry = await client.get(url("areas", "json"), params={"geometry": "true"})
    assert with_geometry.headers["etag"] != named.headers["etag"]
    cached = await client.get(
        url("areas", "json"),
        params={"geometry": "true"},
        headers={"If-None-Match": with_geometry.headers["etag"]},
    )
    assert cached.status_code == 304


@pytest.mark.parametrize("control", ["no-cache", "public, max-age=3600, stale-while-revalidate=60"])
async def test_the_operator_sets_cache_control(
    make_client: AppFactory, client: httpx.AsyncClient, seeded: Seed, control: str
) -> None:
    configured = await make_client(cache=CacheSettings(control=control))
    for resource in RESOURCES:
        for fmt in FORMATS:
            full = await fetch(configured, resource, fmt)
            check_validators(full, control)
            cached = await fetch(configured, resource, fmt, {"If-None-Match": full.headers["etag"]})
            assert cached.status_code == 304
            assert cached.headers["cache-control"] == control


def test_cache_control_must_be_a_header_value() -> None:
    for bad in ("", "public\r\nSet-Cookie: x=1", "é", "x" * 201):
        with pytest.raises(ValueError, match="header value"):
            CacheSettings(control=bad)


async def test_errors_are_not_cached(client: httpx.AsyncClient, seeded: Seed) -> None:
    for fmt in FORMATS:
        missing = await client.get(url("services/NOPE", fmt), headers={"If-None-Match": "*"})
        assert missing.status_code == 404
        assert "etag" not in missing.headers
        assert "cache-control" not in missing.headers


async def test_browser_apps_can_read_the_validators(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    response = await client.get(
        url("services", "json"), headers={"Origin": "https://app.example", "Accept-Language": "fr"}
    )
    assert response.status_code == 200
    exposed = [
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    ]
    assert "etag" in exposed
    assert "Accept-Language" in response.headers["vary"]
