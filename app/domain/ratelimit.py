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
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Float,
    Insert,
    Integer,
    String,
    and_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import InvalidApiKey
from app.store.engine import Direct, fetch_all
from app.store.tables import ApiKey, RateBucket

BUCKET = RateBucket.__table__
API_KEY = ApiKey.__table__


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
        self._shared = engine.dialect.name == "postgresql"
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
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            tokens = (await conn.execute(TAKE, take_params(key_id, per_minute))).scalar()
            if tokens is not None:
                return _decision(True, float(tokens), per_minute)
            return await refusal(conn, key_id, per_minute)


def _refilled() -> ColumnElement[float]:
    elapsed = func.extract("epoch", func.clock_timestamp() - BUCKET.c.updated_at)
    return func.least(
        bindparam("rl_per_minute", type_=Float()),
        BUCKET.c.tokens + elapsed * bindparam("rl_rate", type_=Float()),
    )


def _active_key() -> Exists:
    return (
        select(API_KEY.c.id)
        .where(
            API_KEY.c.id == bindparam("rl_key_id", type_=Integer()), API_KEY.c.revoked_at.is_(None)
        )
        .exists()
    )


def _build_take() -> Insert:
    statement = pg_insert(BUCKET).from_select(
        ["bucket", "tokens", "updated_at"],
        select(
            bindparam("rl_bucket", type_=String()),
            bindparam("rl_per_minute", type_=Float()) - 1.0,
            func.clock_timestamp(),
        ).where(_active_key()),
    )
    return statement.on_conflict_do_update(
        index_elements=[BUCKET.c.bucket],
        set_={"tokens": _refilled() - 1.0, "updated_at": func.clock_timestamp()},
        where=and_(_refilled() >= 1.0, _active_key()),
    ).returning(BUCKET.c.tokens)


# PostgreSQL: refill and take one token of a key's bucket if the key is active and the bucket
# holds one; RETURNING the tokens left (no row: refused or revoked, see refusal). Built once:
# the same statement object every call, so SQLAlchemy's cache key and compiled form are
# computed once too (values travel as parameters, see take_params).
TAKE = _build_take()
REFUSAL = select(
    select(_refilled()).where(BUCKET.c.bucket == bindparam("rl_bucket")).scalar_subquery(),
    _active_key(),
)


def take_params(key_id: int, per_minute: int) -> dict[str, Any]:
    """The parameters of TAKE and REFUSAL for a key and its limit."""
    return {
        "rl_bucket": f"key:{key_id}",
        "rl_key_id": key_id,
        "rl_per_minute": float(per_minute),
        "rl_rate": per_minute / 60.0,
    }


def decision_for(tokens: float, per_minute: int) -> Decision:
    """The decision of a token taken by TAKE (``tokens`` left)."""
    return _decision(True, tokens, per_minute)


async def refusal(source: AsyncConnection | Direct, key_id: int, per_minute: int) -> Decision:
    """Why TAKE took nothing: KeyRevoked, or the refused decision."""
    (row,) = await fetch_all(source, REFUSAL, take_params(key_id, per_minute))
    if not row[1]:
        raise KeyRevoked()
    return _decision(False, float(row[0] or 0.0), per_minute)
