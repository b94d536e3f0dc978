"""Extension: the photos of requests (and their thumbnails), from the local object store.

Keys are made by the server and never reused for other content, so an answer may be kept for
a year (``immutable``). A key outside the server's key grammar (``..``, an absolute path, an
encoded trick, a directory) and a key with no object are the same GeoReport 404: nothing is
listed, and the route reads one object at most. An S3 store serves its objects itself (its
bucket URL or the operator's CDN is in ``media_url``); this route reads through it all the same.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api.caching import Validators, entity_tag, not_modified
from app.api.deps import StateDep
from app.api.docs import error_response
from app.api.lean import LeanRoute
from app.errors import NotFound, ServiceUnavailable
from app.media.errors import InvalidObjectKey, ObjectNotFound, ObjectStoreUnavailable
from app.media.runtime import object_store

router = APIRouter(tags=["media (extension)"], route_class=LeanRoute)

IMMUTABLE = "public, max-age=31536000, immutable"
# The longest key the stores accept (app.media.objects.check_key).
MAX_KEY_LENGTH = 512

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Strong entity tag of the object.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": f"`{IMMUTABLE}` (keys are never reused).",
        "required": True,
        "schema": {"type": "string"},
    },
}


@router.get(
    "/media/{key:path}",
    operation_id="media-get",
    response_class=Response,
    responses={
        200: {
            "description": "The photo or thumbnail, re-encoded without metadata.",
            "content": {"image/jpeg": _BINARY, "image/png": _BINARY, "image/webp": _BINARY},
            "headers": _HEADERS,
        },
        304: {
            "description": "Not modified: If-None-Match names this object's entity tag.",
            "headers": _HEADERS,
        },
        404: error_response(404),
        429: error_response(429),
        500: error_response(500),
        503: error_response(503),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "Entity tags of copies the client has (from ETag): a 304 "
                "without a body when one is this object's.",
                "schema": {"type": "string"},
            }
        ]
    },
)
async def get_media(
    request: Request,
    key: Annotated[
        str,
        Path(
            description="The key of a stored photo or thumbnail, as in a request's media_url.",
            examples=["live/0f1e2d3c4b5a69788796a5b4c3d2e1f0/full.jpg"],
        ),
    ],
    state: StateDep,
) -> Response:
    """A stored photo or thumbnail of a request."""
    if len(key) > MAX_KEY_LENGTH:
        raise NotFound("No such photo.")
    try:
        stored = await object_store(state.settings.media).get(key)
    except (InvalidObjectKey, ObjectNotFound):
        raise NotFound("No such photo.") from None
    except ObjectStoreUnavailable:
        raise ServiceUnavailable(headers={"Retry-After": "5"}) from None
    validators = Validators(entity_tag(stored.data), state.started_at)
    headers = {"ETag": validators.etag, "Cache-Control": IMMUTABLE}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and validators.matches(if_none_match):
        return not_modified(headers)
    return Response(stored.data, media_type=stored.content_type, headers=headers)
