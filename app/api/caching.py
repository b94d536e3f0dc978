"""HTTP caching of the catalogue reads: discovery, services, service definitions and areas.

Their answers carry a strong ``ETag``, ``Last-Modified`` and the operator's ``Cache-Control``
(``cache.control``); a conditional GET whose validator still matches is a ``304 Not
Modified`` with the same headers and no body (RFC 9110 §13: ``If-None-Match`` first, and
``If-Modified-Since`` only without it).

The entity tag is a hash of the body, so it changes exactly when the bytes do (a new
catalogue, another language, a new release that writes them differently) and is the same in
every process. A :class:`DocumentMemo` keeps it, with the body itself when that is small,
keyed by what the document is made of: the catalogue's digest (computed once when the
catalogue is read), the areas' version (one small query), the language and the format. A
conditional GET whose key is in the memo is answered 304 without rendering anything, and a
plain GET is answered with the kept body; only the first call for a key renders (and is a 304
too when it matches). Memos are bounded in entries and bytes: a full one starts again empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.domain.catalog import Catalog

# Longest If-Modified-Since read (an HTTP-date is 29 characters) and most entity tags of an
# If-None-Match compared; past those the condition is false (a full answer, never an error).
MAX_DATE_LENGTH = 64
MAX_ENTITY_TAGS = 64
# A memo's bounds: entries, bytes of kept bodies, and the largest body kept (larger ones, e.g.
# areas with their geometry, keep only their tag and are rendered each time).
MAX_MEMO = 1024
MAX_MEMO_BYTES = 4 << 20
MAX_KEPT_BODY = 256 << 10


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered document as a memo keeps it."""

    etag: str
    body: bytes | None  # None: not kept (too large)
    media_type: str | None


class DocumentMemo:
    """Rendered documents (their tags, and their bodies when small) by what they are made of."""

    __slots__ = ("_bytes", "_documents")

    def __init__(self) -> None:
        self._documents: dict[Hashable, Document] = {}
        self._bytes = 0

    def get(self, key: Hashable) -> Document | None:
        """The document remembered under ``key``."""
        return self._documents.get(key)

    def put(self, key: Hashable, response: Response) -> Document:
        """Remember the document ``response`` is (the tag of its body)."""
        body = bytes(response.body)
        kept = body if len(body) <= MAX_KEPT_BODY else None
        size = len(kept) if kept is not None else 0
        if len(self._documents) >= MAX_MEMO or self._bytes + size > MAX_MEMO_BYTES:
            self._documents.clear()
            self._bytes = 0
        document = Document(entity_tag(body), kept, response.media_type)
        self._documents[key] = document
        self._bytes += size
        return document

    def __len__(self) -> int:
        return len(self._documents)


def entity_tag(body: bytes | memoryview) -> str:
    """The strong entity tag (quoted) of a body: a short hash of its bytes."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@lru_cache(maxsize=1024)
def http_date(moment: datetime) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), to the second (the few distinct
    moments of the catalogues are formatted once)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


@dataclass(frozen=True, slots=True)
class Validators:
    """The validators of one answer."""

    etag: str
    last_modified: datetime

    def headers(self, cache_control: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The caching headers of the answer (and of its 304), plus ``extra``."""
        out = {
            "ETag": self.etag,
            "Last-Modified": http_date(self.last_modified),
            "Cache-Control": cache_control,
        }
        if extra:
            out.update(extra)
        return out

    def matches(self, if_none_match: str) -> bool:
        """True when an ``If-None-Match`` value names this answer's entity tag (weak
        comparison, as RFC 9110 §13.1.2 asks for GET) or is ``*``."""
        for item in if_none_match.split(",", MAX_ENTITY_TAGS)[:MAX_ENTITY_TAGS]:
            tag = item.strip()
            if tag == "*":
                return True
            if tag.startswith("W/"):
                tag = tag[2:]
            if tag == self.etag:
                return True
        return False

    def unmodified_since(self, if_modified_since: str) -> bool:
        """True when an ``If-Modified-Since`` value is a date not before the last change
        (an invalid date is ignored: the condition is false)."""
        if len(if_modified_since) > MAX_DATE_LENGTH:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return self.last_modified.replace(microsecond=0) <= since

    def not_modified(self, request: Request) -> bool:
        """True when the call's conditions say the client's copy is current."""
        headers = request.headers
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            return self.matches(if_none_match)
        if_modified_since = headers.get("if-modified-since")
        return if_modified_since is not None and self.unmodified_since(if_modified_since)


def not_modified(headers: dict[str, str]) -> Response:
    """A 304 with the answer's headers and no body (no Content-Type or Content-Length)."""
    response = Response(status_code=304)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
    return response


async def cached_answer(
    request: Request,
    memo: DocumentMemo,
    key: Hashable,
    last_modified: datetime,
    cache_control: str,
    headers: dict[str, str],
    make: Callable[[], Awaitable[Response]],
) -> Response:
    """The answer ``make`` renders (or the body the memo kept), with its validators and
    ``headers``; or a 304.

    ``key`` must name everything the body is made of: the document remembered under it in
    ``memo`` is the one ``make`` would render."""
    document = memo.get(key)
    if document is not None:
        validators = Validators(document.etag, last_modified)
        answer_headers = validators.headers(cache_control, headers)
        if validators.not_modified(request):
            return not_modified(answer_headers)
        if document.body is not None:
            return Response(document.body, headers=answer_headers, media_type=document.media_type)
    response = await make()
    document = memo.put(key, response)
    validators = Validators(document.etag, last_modified)
    answer_headers = validators.headers(cache_control, headers)
    if validators.not_modified(request):
        return not_modified(answer_headers)
    response.headers.update(answer_headers)
    return response


def app_memo(request: Request, name: str) -> DocumentMemo:
    """A memo of documents kept by the app (``app.state``) under ``name``."""
    state = request.app.state
    memo: DocumentMemo | None = getattr(state, name, None)
    if memo is None:
        memo = DocumentMemo()
        setattr(state, name, memo)
    return memo


def catalog_memo(catalog: Catalog) -> DocumentMemo:
    """The memo of a catalogue's documents (kept with it while its content is the same)."""
    memo = catalog.memo
    if not isinstance(memo, DocumentMemo):
        memo = catalog.memo = DocumentMemo()
    return memo


# --- the OpenAPI document ---------------------------------------------------------------

CONDITIONAL_HEADERS: tuple[dict[str, Any], ...] = (
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "Entity tags of copies the client has (from ETag), or *: a 304 without "
        "a body when one is the current answer's.",
        "schema": {"type": "string"},
    },
    {
        "name": "If-Modified-Since",
        "in": "header",
        "required": False,
        "description": "An HTTP-date (from Last-Modified): a 304 without a body when nothing "
        "changed since. Ignored when If-None-Match is given or the date is not valid.",
        "schema": {"type": "string"},
    },
)

_CACHE_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Strong entity tag of the answer (it changes with the content, the "
        "language and the format).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Last-Modified": {
        "description": "When what the answer is made of last changed (HTTP-date).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "As the operator set it (setting cache.control).",
        "required": True,
        "schema": {"type": "string"},
    },
}
_LANGUAGE_HEADERS: dict[str, Any] = {
    "Content-Language": {
        "description": "The language of the answer's texts (see locale).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Vary": {
        "description": "Accept-Language (the answer depends on it).",
        "required": True,
        "schema": {"type": "string"},
    },
}


def cache_headers(*, languages: bool) -> dict[str, Any]:
    """The documented headers of a cached answer (``languages``: a translated one)."""
    return {**_CACHE_HEADERS, **(_LANGUAGE_HEADERS if languages else {})}


def not_modified_response(*, languages: bool) -> dict[int | str, dict[str, Any]]:
    """The documented 304 of a cached route."""
    return {
        304: {
            "description": "Not modified: the client's copy (If-None-Match or "
            "If-Modified-Since) is current. No body; the same headers as the answer.",
            "headers": cache_headers(languages=languages),
        }
    }
