"""Token-bucket rate limits.

Per-key buckets live in PostgreSQL (table ``rate_bucket``), so every server process draws from
the same bucket; one atomic ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` both refills and takes
a token. On the embedded default (one process) and for per-IP limits (anonymous GETs, calls
refused for a bad credential), buckets are kept in process memory: a database write on every
anonymous read would cost more than the read itself, so the per-IP limits are enforced per
process (with N workers a client gets up to N times the limit; they are documented as per
process).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors import InvalidApiKey
from app.store import ratelimit as store
from app.store.engine import read_connection

# The shared statement and its parameters (app.domain.one_trip builds on them).
from app.store.ratelimit import TAKE as TAKE
from app.store.ratelimit import take_params as take_params

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from app.store.engine import Direct


class KeyRevoked(InvalidApiKey):
    """403: the key was revoked (found while taking a rate-limit token)."""

    title = "The api_key is not valid (unknown or revoked)."


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of taking one token."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """RateLimit headers (IETF draft) and, when refused, Retry-After."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w=60",
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.reset_seconds))
        return out


def _decision(allowed: bool, tokens: float, per_minute: int) -> Decision:
    rate = per_minute / 60.0
    if allowed:
        # Seconds until the bucket is full again.
        reset = math.ceil((per_minute - tokens) / rate) if tokens < per_minute else 0
    else:
        # The bucket may have refilled a little since the refusal was decided.
        tokens = min(tokens, 0.999)
        reset = math.ceil((1.0 - tokens) / rate)
    remaining = max(0, int(tokens)) if allowed else 0
    return Decision(allowed, per_minute, remaining, max(1, reset) if not allowed else reset)


class MemoryBuckets:
    """In-process token buckets, at most ``max_entries`` of them.

    Each bucket is kept as (tokens, when counted, when full again). A bucket that is full
    again is the same as no bucket, so when the table is full the buckets whose "full again"
    time has passed are dropped first; if that frees too little, the ones that will be full
    soonest (those that owe the fewest tokens) go next. A client that is being limited owes
    the most, so a flood of new addresses forgets it last and never resets it while most of
    the table is newer. Each pruning frees a tenth of the table, so its cost (one pass, a
    sort at worst) is spread over the next tenth of new addresses.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._max = max(1, max_entries)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, bucket: str, per_minute: int) -> Decision:
        """Take one token from ``bucket`` (capacity and refill: ``per_minute`` a minute)."""
        now = time.monotonic()
        entry = self._buckets.get(bucket)
        if entry is None:
            tokens = float(per_minute)
            if len(self._buckets) >= self._max:
                self._prune(now)
        else:
            tokens = min(float(per_minute), entry[0] + (now - entry[1]) * per_minute / 60.0)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        full_at = now + (per_minute - tokens) * 60.0 / per_minute
        self._buckets[bucket] = (tokens, now, full_at)
        return _decision(allowed, tokens, per_minute)

    def refused(self, bucket: str, per_minute: int) -> Decision | None:
        """The refusal ``bucket`` would answer now (no token left), or None; takes nothing."""
        entry = self._buckets.get(bucket)
        if entry is None:
            return None
        elapsed = time.monotonic() - entry[1]
        tokens = min(float(per_minute), entry[0] + elapsed * per_minute / 60.0)
        return None if tokens >= 1.0 else _decision(False, tokens, per_minute)

    def _prune(self, now: float) -> None:
        buckets = self._buckets
        batch = max(1, self._max // 10)
        refilled = [name for name, entry in buckets.items() if entry[2] <= now]
        if len(refilled) < batch:
            owing = sorted((entry[2], name) for name, entry in buckets.items() if entry[2] > now)
            refilled += [name for _, name in owing[: batch - len(refilled)]]
        for name in refilled:
            del buckets[name]


class RateLimiter:
    """Per-key limits (shared through PostgreSQL when available) and per-IP limits
    (anonymous reads, failed authentications)."""

    def __init__(self, engine: AsyncEngine, max_tracked_clients: int = 100_000) -> None:
        self._engine = engine
        self._shared = store.shared_buckets(engine)
        self.memory = MemoryBuckets(max_tracked_clients)
        # Calls refused for a bad credential, per client address (their own table, so a
        # flood of anonymous addresses does not push these out).
        self.failed_auth = MemoryBuckets(max_tracked_clients)

    async def take_key(self, key_id: int, per_minute: int) -> Decision:
        """Take a token from an API key's bucket.

        On PostgreSQL the same statement checks that the key is still active, so a key
        revoked by any process stops working at once even where verified keys are cached
        (raises KeyRevoked).
        """
        if not self._shared:
            return self.memory.take(f"key:{key_id}", per_minute)
        async with read_connection(self._engine) as conn:
            tokens = await store.take(conn, key_id, per_minute)
            if tokens is not None:
                return _decision(True, tokens, per_minute)
            return await refusal(conn, key_id, per_minute)


def decision_for(tokens: float, per_minute: int) -> Decision:
    """The decision of a token taken by TAKE (``tokens`` left)."""
    return _decision(True, tokens, per_minute)


async def refusal(source: AsyncConnection | Direct, key_id: int, per_minute: int) -> Decision:
    """Why TAKE took nothing: KeyRevoked, or the refused decision."""
    state = await store.bucket_state(source, key_id, per_minute)
    if not state.key_active:
        raise KeyRevoked()
    return _decision(False, state.tokens, per_minute)
