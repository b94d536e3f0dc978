"""Storing a request's photos on both stores: all or none, sandbox apart, removable."""

from __future__ import annotations

import re

import pytest

from app.media.errors import ObjectNotFound, ObjectStoreUnavailable
from app.media.images import Photo, PhotoProcessor
from app.media.objects import ObjectStore, StoredObject
from app.media.photos import StoredPhoto, clear_sandbox, delete_photos, store_photos
from app.media.settings import MediaSettings
from tests.media.imaging import decoded, half_transparent, jpeg, png, two_colour

SETTINGS = MediaSettings()


@pytest.fixture
async def photos() -> list[Photo]:
    """A JPEG photo and a PNG with transparency, accepted."""
    uploads = [jpeg(two_colour((640, 320))), png(half_transparent())]
    return await PhotoProcessor(SETTINGS).process(uploads)


async def assert_gone(store: ObjectStore, stored: list[StoredPhoto]) -> None:
    for photo in stored:
        for key in (photo.key, photo.thumbnail_key):
            with pytest.raises(ObjectNotFound):
                await store.get(key)


async def test_photos_and_thumbnails_are_stored(store: ObjectStore, photos: list[Photo]) -> None:
    stored = await store_photos(store, photos, sandbox=False)

    assert len(stored) == 2
    for photo, kept in zip(photos, stored, strict=True):
        assert re.fullmatch(r"live/[0-9a-f]{32}/", kept.prefix)
        assert kept.key == f"{kept.prefix}full.{photo.full.extension}"
        assert kept.thumbnail_key == f"{kept.prefix}thumb.{photo.thumbnail.extension}"
        assert kept.url == store.url_for(kept.key)
        assert kept.thumbnail_url == store.url_for(kept.thumbnail_key)
        assert (kept.content_type, kept.width, kept.height) == (
            photo.full.content_type,
            photo.full.width,
            photo.full.height,
        )
        assert await store.get(kept.key) == StoredObject(photo.full.data, photo.full.content_type)
        thumb = await store.get(kept.thumbnail_key)
        assert thumb == StoredObject(photo.thumbnail.data, photo.thumbnail.content_type)
    assert decoded((await store.get(stored[0].key)).data).size == (640, 320)
    assert stored[1].key.endswith("/full.png")
    assert stored[0].prefix != stored[1].prefix


async def test_delete_photos(store: ObjectStore, photos: list[Photo]) -> None:
    stored = await store_photos(store, photos, sandbox=False)

    await delete_photos(store, stored)

    await assert_gone(store, stored)


async def test_sandbox_reset_removes_sandbox_photos_only(
    store: ObjectStore, photos: list[Photo]
) -> None:
    live = await store_photos(store, photos, sandbox=False)
    app_7 = await store_photos(store, photos, sandbox=True, owner="app-7")
    app_8 = await store_photos(store, photos[:1], sandbox=True, owner="app-8")
    assert all(photo.prefix.startswith("sandbox/app-7/") for photo in app_7)

    assert await clear_sandbox(store, owner="app-7") == 4
    await assert_gone(store, app_7)
    assert (await store.get(app_8[0].key)).data == photos[0].full.data

    assert await clear_sandbox(store) == 2
    await assert_gone(store, app_8)
    for photo in live:
        assert (await store.get(photo.key)).content_type == photo.content_type


class FailingStore:
    """A real store whose ``put`` fails from the Nth call on, as a full disk or an S3 outage
    would: the store around it is real, only the failure is staged."""

    def __init__(self, inner: ObjectStore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.puts = 0

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts += 1
        if self.puts >= self.fail_at:
            raise ObjectStoreUnavailable("staged outage")
        await self.inner.put(key, data, content_type)

    async def get(self, key: str) -> StoredObject:
        return await self.inner.get(key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        return await self.inner.delete_prefix(prefix)

    def url_for(self, key: str) -> str:
        return self.inner.url_for(key)

    async def check(self) -> None:
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize("fail_at", [2, 3, 4])
async def test_a_failed_store_leaves_no_photo_behind(
    store: ObjectStore, photos: list[Photo], fail_at: int
) -> None:
    failing = FailingStore(store, fail_at)

    with pytest.raises(ObjectStoreUnavailable):
        await store_photos(failing, photos, sandbox=True)

    assert failing.puts == fail_at
    # What was written before the failure is gone again.
    assert await store.delete_prefix("sandbox/") == 0
