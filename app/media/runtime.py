"""The object store of a running server, and the public URLs of what it keeps.

``object_store(settings)`` opens the store the media settings name once and hands the same
one to every later caller with the same settings object (the API's media route, the admin
sandbox reset, the CLI), so nothing has to be built at startup. The app's lifespan may still
call ``object_store`` (then ``check()``) at startup to fail early, and ``close_object_store``
when it stops.

``media_url`` is what a request's ``media_url`` holds: absolute, on the operator's
``public_base_url`` when one is set, the bucket's own URL for S3, and otherwise this server's
media route (``{public URL}{base path}/media/{key}``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from app.media.settings import MediaSettings

if TYPE_CHECKING:
    from app.media.objects import ObjectStore

# The route of the local backend's objects, under the GeoReport base path.
MEDIA_PATH: Final = "/media"
# Settings objects remembered (a server has one; a test suite makes many): beyond, the
# oldest store is forgotten (a local store holds nothing; an S3 client is released when
# collected).
MAX_STORES: Final = 64

_stores: dict[int, tuple[MediaSettings, ObjectStore]] = {}
_lock = threading.Lock()


def object_store(settings: MediaSettings) -> ObjectStore:
    """The object store of ``settings`` (one per settings object, made on first use)."""
    found = _stores.get(id(settings))
    # The settings object is kept with its store: its id cannot be reused while it is here.
    if found is not None and found[0] is settings:
        return found[1]
    from app.media.objects import open_store  # boto3/botocore load with the first store

    with _lock:
        found = _stores.get(id(settings))
        if found is not None and found[0] is settings:
            return found[1]
        if len(_stores) >= MAX_STORES:
            del _stores[next(iter(_stores))]
        store = open_store(settings)
        _stores[id(settings)] = (settings, store)
        return store


def sandbox_photos(settings: MediaSettings) -> ObjectStore | None:
    """The store a sandbox reset removes photos from (none while photos are switched off)."""
    return object_store(settings) if settings.enabled else None


async def close_object_store(settings: MediaSettings) -> None:
    """Close and forget the object store of ``settings`` (the lifespan's shutdown)."""
    with _lock:
        found = _stores.pop(id(settings), None)
    if found is not None and found[0] is settings:
        await found[1].close()


def media_url(key: str, settings: MediaSettings, *, public_base: str, base_path: str) -> str:
    """The absolute public URL of the stored object ``key``.

    ``public_base``: this server's public base URL (``app.api.deps.public_base``);
    ``base_path``: the GeoReport base path (``settings.base_path``)."""
    from app.media.objects import check_key

    if settings.public_base_url or settings.backend == "s3":
        return object_store(settings).url_for(key)
    return f"{public_base.rstrip('/')}{base_path}{MEDIA_PATH}/{check_key(key)}"
