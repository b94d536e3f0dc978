"""Photos of requests as the domain sees them: taking them in, whose they are, and removing
the sandbox's.

``PhotoIntake`` takes the uploads of a POST (requests or servicerequestupdates): checked and
re-encoded by ``app.media.images`` (in worker threads, a bounded few at once), stored by
``app.media.photos.store_photos`` (all or none), with their public URLs. ``kept_unless_failed``
removes them again when the POST then fails (a validation error, the database), so a failed
POST leaves no file behind.

A request's photos are stored under an *owner* segment naming its jurisdiction and its app
(``photo_owner``: ``j{jurisdiction}-a{app}``), sandbox photos under ``sandbox/`` (see
``app.media.objects``). A sandbox reset then removes exactly the photos of the sandbox
requests it deletes: all of them, one app's, one jurisdiction's, or one app's in one
jurisdiction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.errors import ServiceUnavailable
from app.media.errors import ObjectStoreError, ObjectStoreUnavailable
from app.media.runtime import media_url, object_store
from app.media.settings import MediaSettings
from app.store import keys as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.media.images import PhotoProcessor
    from app.media.objects import ObjectStore
    from app.media.photos import StoredPhoto


def photo_owner(jurisdiction_pk: int, app_id: int | None) -> str:
    """The owner segment of the keys of a request's photos (``store_photos(owner=...)``)."""
    return f"j{jurisdiction_pk}-a{app_id if app_id is not None else 0}"


async def clear_sandbox_photos(
    conn: AsyncConnection,
    photos: ObjectStore,
    *,
    app_id: int | None = None,
    within: int | None = None,
) -> int:
    """Remove the sandbox photos of one app and/or one jurisdiction (or all); how many
    objects went."""
    from app.media.photos import clear_sandbox  # Pillow loads with app.media.images

    if app_id is None and within is None:
        return await clear_sandbox(photos)
    removed = 0
    for jurisdiction, app in await store.sandbox_owners(conn, app_id=app_id, within=within):
        removed += await clear_sandbox(photos, photo_owner(jurisdiction, app))
    return removed


@dataclass(frozen=True, slots=True)
class Uploaded:
    """The stored photos of one POST: where they are, and what the row keeps of them."""

    stored: Sequence[StoredPhoto] = ()
    # The public URL of each photo (media_url is the first), and of each thumbnail.
    urls: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


NOTHING = Uploaded()


class PhotoIntake:
    """Photos uploaded with POSTs: checked, re-encoded, stored under public URLs."""

    def __init__(self, settings: MediaSettings, base_path: str) -> None:
        self.settings = settings
        self.base_path = base_path
        self._processor: PhotoProcessor | None = None

    @property
    def store(self) -> ObjectStore:
        """The object store the photos go to."""
        return object_store(self.settings)

    def _photos(self) -> PhotoProcessor:
        if self._processor is None:
            from app.media.images import PhotoProcessor  # Pillow loads with the first photo

            self._processor = PhotoProcessor(self.settings)
        return self._processor

    async def accept(
        self,
        files: Sequence[bytes],
        *,
        sandbox: bool,
        owner: str,
        public_base: str,
    ) -> Uploaded:
        """Check, re-encode and store every file (InvalidMedia, a 400, for the first refused
        one: nothing is stored then); 503 when the object store fails."""
        if not files:
            return NOTHING
        photos = await self._photos().process(files)
        from app.media.photos import store_photos

        try:
            stored = await store_photos(self.store, photos, sandbox=sandbox, owner=owner)
        except ObjectStoreUnavailable:
            raise ServiceUnavailable(
                "The photos could not be stored; retry later.", headers={"Retry-After": "5"}
            ) from None
        records: list[dict[str, Any]] = []
        urls: list[str] = []
        for photo in stored:
            url = self._url(photo.key, public_base)
            urls.append(url)
            records.append(
                {
                    "url": url,
                    "thumbnail_url": self._url(photo.thumbnail_key, public_base),
                    "content_type": photo.content_type,
                    "width": photo.width,
                    "height": photo.height,
                }
            )
        return Uploaded(stored, urls, records)

    def _url(self, key: str, public_base: str) -> str:
        return media_url(key, self.settings, public_base=public_base, base_path=self.base_path)

    async def discard(self, uploaded: Uploaded) -> None:
        """Remove stored photos again (a failed POST); shielded from cancellation, and a
        failing store is not the caller's error (the objects then point nowhere)."""
        if not uploaded.stored:
            return
        from app.media.photos import delete_photos

        async def remove() -> None:
            with contextlib.suppress(ObjectStoreError):
                await delete_photos(self.store, uploaded.stored)

        await asyncio.shield(remove())

    @contextlib.asynccontextmanager
    async def kept_unless_failed(self, uploaded: Uploaded) -> AsyncIterator[None]:
        """The photos stay if the block succeeds; any failure (cancellation too) removes them."""
        try:
            yield
        except BaseException:
            await self.discard(uploaded)
            raise
