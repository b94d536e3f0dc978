"""The store interface: one implementation per backend (``postgres.py``, ``sqlite.py``).

The domain calls these methods and never asks which backend it is on. Everything that is not
a hot path runs SQLAlchemy statements (``app.store.<area>``) on ``engine``, whose connections
are the store's own (one pool per process).
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.geo.wards import WardIndex
from app.models.requests import IdempotencyClaim, NewRequest, RequestPage, RequestRead
from app.store.keys import KeyCandidate

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class WardIndexes(Protocol):
    """The in-process (Shapely) ward indexes by ward set, for a store that looks wards up in
    process (``app.domain.boundaries.WardIndexCache``)."""

    def get(self, set_id: int) -> Awaitable[WardIndex]:
        """The index of a ward set."""
        ...


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """The API key's rate-limit bucket, for a store that takes the token with the write."""

    key_id: int
    per_minute: int


@dataclass(frozen=True, slots=True)
class Created:
    """What a realtime write did: stored the request (``request_pk``), or why not."""

    request_pk: int | None = None
    outside: bool = False  # the location is in no ward: nothing stored, nothing claimed
    claimed_before: bool = False  # the Idempotency-Key has a record: nothing stored
    refused: bool = False  # no rate-limit token (empty bucket or revoked key): nothing done
    revoked: bool = False  # the key was revoked (a store that checks it in the write): nothing done
    tokens: float | None = None  # tokens left in the bucket, when the store took one


class Store(Protocol):
    """A backend: its SQLAlchemy engine and the hot calls of GET and POST requests."""

    engine: AsyncEngine  # for everything else (same connections as the hot calls)
    # The realtime write takes the key's rate-limit token itself (one statement).
    takes_rate_limit_token: bool
    # The realtime write checks, in its own transaction, that the submitting key is still
    # active (taking its token does, on PostgreSQL): a POST may rely on a cached verification.
    checks_key_on_write: bool

    @property
    def statements(self) -> int:
        """Statements the hot calls sent (tests, bench)."""
        ...

    async def ping(self) -> None:
        """One trivial statement: raises when the database cannot be used."""
        ...

    async def close(self) -> None:
        """Close every connection (at shutdown)."""
        ...

    def transaction(
        self, *, one_statement: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read-write transaction on ``engine``, committed on success. ``one_statement``:
        the work is one atomic statement, which a store may send without a transaction."""
        ...

    async def read_requests(self, read: RequestRead) -> RequestPage:
        """The rows of GET requests or GET requests/{id}."""
        ...

    async def key_candidates(self, prefix: str) -> list[KeyCandidate]:
        """Every active API key with this prefix (one statement: every keyed call asks)."""
        ...

    async def create_request(
        self,
        new: NewRequest,
        *,
        claim: IdempotencyClaim | None,
        bucket: TokenBucket | None,
        wards: WardIndexes,
    ) -> Created:
        """Store a realtime request with its Idempotency-Key claim (and, where the store takes
        it, the rate-limit token of ``bucket``), all or nothing, in one call."""
        ...
