"""Storing accepted photos: all of a request's or none, and removing them again.

Each photo gets its own random prefix holding ``full.<ext>`` and ``thumb.<ext>``, so one
``delete_prefix`` removes a photo, and one on ``scope_prefix(sandbox=True)`` every sandbox
photo. A request whose photos were stored but whose row then fails to commit calls
``delete_photos`` with what ``store_photos`` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from app.media.errors import ObjectStoreError
from app.media.images import Photo
from app.media.objects import ObjectStore, new_photo_prefix, scope_prefix


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    """Where one accepted photo and its thumbnail are kept."""

    prefix: str
    key: str
    url: str
    thumbnail_key: str
    thumbnail_url: str
    content_type: str
    width: int
    height: int


async def store_photos(
    store: ObjectStore, photos: Sequence[Photo], *, sandbox: bool, owner: str = ""
) -> list[StoredPhoto]:
    """Store every photo and its thumbnail under new keys; on any failure, none stays."""
    stored: list[StoredPhoto] = []
    try:
        for photo in photos:
            prefix = new_photo_prefix(sandbox=sandbox, owner=owner)
            key = f"{prefix}full.{photo.full.extension}"
            thumbnail_key = f"{prefix}thumb.{photo.thumbnail.extension}"
            # Recorded before the writes: a failure between them still gets cleaned up.
            stored.append(
                StoredPhoto(
                    prefix=prefix,
                    key=key,
                    url=store.url_for(key),
                    thumbnail_key=thumbnail_key,
                    thumbnail_url=store.url_for(thumbnail_key),
                    content_type=photo.full.content_type,
                    width=photo.full.width,
                    height=photo.full.height,
                )
            )
            await store.put(key, photo.full.data, photo.full.content_type)
            await store.put(thumbnail_key, photo.thumbnail.data, photo.thumbnail.content_type)
    except BaseException:
        # Cancellation included (a client that went away): the cleanup is shielded from it.
        await asyncio.shield(_delete_quietly(store, stored))
        raise
    return stored


async def _delete_quietly(store: ObjectStore, stored: Sequence[StoredPhoto]) -> None:
    # The store's own failure is what the caller hears about; a failed cleanup leaves
    # objects no request points to, which is harmless.
    with contextlib.suppress(ObjectStoreError):
        await delete_photos(store, stored)


async def delete_photos(store: ObjectStore, stored: Sequence[StoredPhoto]) -> None:
    """Remove stored photos and their thumbnails."""
    for photo in stored:
        await store.delete_prefix(photo.prefix)


async def clear_sandbox(store: ObjectStore, owner: str = "") -> int:
    """Remove every sandbox photo (or one owner's); how many objects went."""
    return await store.delete_prefix(scope_prefix(sandbox=True, owner=owner))
