"""GET {base}/media/{key}: stored photos served from the local object store, on both backends;
and sandbox resets (admin API and CLI, a real process) that remove sandbox photos only.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.api_keys import create_key
from app.domain.media import photo_owner
from app.media.errors import ObjectNotFound
from app.media.images import PhotoProcessor
from app.media.objects import ObjectStore
from app.media.photos import StoredPhoto, store_photos
from app.media.runtime import media_url, object_store
from app.media.settings import MediaSettings
from app.settings import Settings
from app.store.keys import find_app
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.media.imaging import half_transparent, jpeg, png, two_colour
from tests.ops.server import cli_env, run_cli

BASE = "/open311/v2"
IMMUTABLE = "public, max-age=31536000, immutable"


async def media_client(make_client: AppFactory, root: Path) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(media=MediaSettings(local_dir=root))
    await clear(engine_of(client))
    return client


def photos_of(client: httpx.AsyncClient) -> ObjectStore:
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    return object_store(settings.media)


async def stored(
    client: httpx.AsyncClient, *, sandbox: bool = False, owner: str = ""
) -> list[StoredPhoto]:
    """A JPEG and a transparent PNG, processed and stored as a POST would."""
    uploads = [jpeg(two_colour((640, 320))), png(half_transparent())]
    photos = await PhotoProcessor(MediaSettings()).process(uploads)
    return await store_photos(photos_of(client), photos, sandbox=sandbox, owner=owner)


async def test_stored_photos_and_thumbnails_are_served(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = await media_client(make_client, tmp_path / "media")
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    for photo in await stored(client):
        for key in (photo.key, photo.thumbnail_key):
            url = media_url(key, settings.media, public_base="http://test", base_path=BASE)
            assert url == f"http://test{BASE}/media/{key}"
            response = await client.get(url)
            assert response.status_code == 200, response.text
            kept = await photos_of(client).get(key)
            assert response.content == kept.data
            assert (tmp_path / "media" / key).read_bytes() == response.content
            assert response.headers["content-type"] == kept.content_type
            assert kept.content_type == ("image/jpeg" if key.endswith(".jpg") else "image/png")
            assert response.headers["cache-control"] == IMMUTABLE
            etag = response.headers["etag"]
            assert etag.startswith('"')
            again = await client.get(url, headers={"If-None-Match": f'"other", {etag}'})
            assert again.status_code == 304
            assert again.content == b""
            assert again.headers["etag"] == etag
            other = await client.get(url, headers={"If-None-Match": '"other"'})
            assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "live/0123456789abcdef0123456789abcdef/full.jpg",  # no such object
        "live",  # a directory: never listed
        "live/",
        "",
        "..%2Fsecret.txt",
        "%2e%2e/%2e%2e/secret.txt",
        "live/%2e%2e/%2e%2e/secret.txt",
        "live/..%2F..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "link/secret.txt",  # a symbolic link inside the directory that leads out of it
        "Live/UPPER.jpg",
        ".hidden",
        "live/" + "a" * 600,
    ],
)
async def test_missing_and_hostile_keys_are_georeport_404s(
    make_client: AppFactory, tmp_path: Path, path: str
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("not a photo")
    (root / ".hidden").write_text("not a photo")
    (root / "Live").mkdir()
    (root / "Live" / "UPPER.jpg").write_bytes(b"\xff\xd8\xff")
    os.symlink(tmp_path, root / "link")
    client = await media_client(make_client, root)
    await stored(client)
    response = await client.get(f"{BASE}/media/{path}")
    assert response.status_code == 404, (path, response.status_code, response.text)
    assert b"not a photo" not in response.content
    assert response.headers["content-type"] in (
        "text/xml; charset=utf-8",
        "application/json; charset=utf-8",
    )
    assert b"<errors>" in response.content or response.json()[0]["code"] == 404


async def _keys(engine: AsyncEngine, app: str, *, sandbox: bool) -> int:
    async with engine.begin() as conn:
        await create_key(conn, app, app=app, scopes=["submit"], sandbox=sandbox)
        app_id = await find_app(conn, app)
    assert app_id is not None
    return app_id


async def gone(store: ObjectStore, photos: list[StoredPhoto]) -> bool:
    """True when every object of the photos is gone, False when all are there."""
    found = []
    for photo in photos:
        for key in (photo.key, photo.thumbnail_key):
            try:
                await store.get(key)
                found.append(True)
            except ObjectNotFound:
                found.append(False)
    assert len(set(found)) == 1, found
    return not found[0]


async def test_sandbox_reset_removes_sandbox_photos_only(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = await media_client(make_client, tmp_path / "media")
    engine = engine_of(client)
    seed: Seed = await seed_catalog(engine)
    a, b = await _keys(engine, "App A", sandbox=True), await _keys(engine, "App B", sandbox=True)
    for app in (a, b):
        await make_request(
            engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"], app_id=app, sandbox=True
        )
    a_sandbox = await stored(client, sandbox=True, owner=photo_owner(seed.jurisdiction_pk, a))
    b_sandbox = await stored(client, sandbox=True, owner=photo_owner(seed.jurisdiction_pk, b))
    a_live = await stored(client, owner=photo_owner(seed.jurisdiction_pk, a))
    unowned_live = await stored(client)
    store = photos_of(client)

    async with engine.begin() as conn:
        ops, _ = await create_key(conn, "ops", app="ops", scopes=["admin"])
    answer = await client.post(
        "/admin/v1/sandbox/reset.json",
        json={"app": "App A"},
        headers={"Authorization": f"Bearer {ops}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deleted": 1, "app": "App A"}
    assert await gone(store, a_sandbox)
    assert not await gone(store, b_sandbox)
    assert not await gone(store, a_live + unowned_live)
    # The served photo is gone too; the others are still served.
    assert (await client.get(f"{BASE}/media/{a_sandbox[0].key}")).status_code == 404
    assert (await client.get(f"{BASE}/media/{b_sandbox[0].key}")).status_code == 200

    # The CLI, a real process on the same database and directory: every sandbox photo goes.
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    db = (
        {"OPEN311_DB__SQLITE_PATH": str(settings.db.sqlite_path)}
        if settings.embedded
        else {"OPEN311_DB__URL": settings.db.url}
    )
    env = cli_env(tmp_path, OPEN311_MEDIA__LOCAL_DIR=str(tmp_path / "media"), **db)
    reset = run_cli(tmp_path, "sandbox-reset", env=env)
    assert reset.returncode == 0, reset.stderr
    assert "Deleted 1 sandbox requests and their photos." in reset.stdout
    assert await gone(store, b_sandbox)
    assert not await gone(store, a_live + unowned_live)
    assert not list((tmp_path / "media" / "sandbox").rglob("*.*"))
