"""How a paged list says there is more: ``X-Next-Cursor`` and ``Link: <next>; rel="next"``.

GET requests and the updates feed send them (every list that pages with a cursor should), in
both formats: the body stays the plain GeoReport list, so clients that know nothing of paging
read it as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.deps import public_url
from app.settings import Settings


def list_headers(when: str) -> dict[str, Any]:
    """The OpenAPI ``headers`` of a paged list; ``when``: when a next page is announced
    (e.g. "When more updates follow this page")."""
    return {
        "X-Page-Size-Max": {
            "description": "The largest page_size this server accepts.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
        "X-Next-Cursor": {
            "description": f"{when}: the cursor of the next page.",
            "schema": {"type": "string"},
        },
        "Link": {
            "description": f'{when}: <URL of the next page>; rel="next".',
            "schema": {"type": "string"},
        },
    }


def next_page_link(
    operation_id: str,
    description: str = "The next page (send the same parameters again, with this cursor).",
) -> dict[str, Any]:
    """The OpenAPI ``links`` of a paged list: its next page, by the X-Next-Cursor header."""
    return {
        "NextPage": {
            "operationId": operation_id,
            "parameters": {
                "cursor": "$response.header.X-Next-Cursor",
                "format": "$request.path.format",
            },
            "description": description,
        }
    }


def next_page_url(request: Request, settings: Settings, cursor: str) -> str:
    """The URL of the next page: the same query with the new cursor, on the public base URL
    (never on an arbitrary Host header, see ``app.api.deps.public_base``)."""
    url = request.url.remove_query_params(["cursor", "page"])
    return public_url(request, settings, url.include_query_params(cursor=cursor))


def paging_headers(
    request: Request, settings: Settings, page_size_max: int, next_cursor: str | None
) -> dict[str, str]:
    """``X-Page-Size-Max``, and when a next page exists ``X-Next-Cursor`` and ``Link``."""
    headers = {"X-Page-Size-Max": str(page_size_max)}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
        headers["Link"] = f'<{next_page_url(request, settings, next_cursor)}>; rel="next"'
    return headers
