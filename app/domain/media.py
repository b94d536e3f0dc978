"""Photos of requests as the domain sees them: whose they are, and removing the sandbox's.

A request's photos are stored under an *owner* segment naming its jurisdiction and its app
(``photo_owner``: ``j{jurisdiction}-a{app}``), sandbox photos under ``sandbox/`` (see
``app.media.objects``). A sandbox reset then removes exactly the photos of the sandbox
requests it deletes: all of them, one app's, one jurisdiction's, or one app's in one
jurisdiction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.store import keys as store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.media.objects import ObjectStore


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
