"""Per-key token buckets shared through PostgreSQL (table ``rate_bucket``): the statements
behind ``app.domain.ratelimit``.

One atomic ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` both refills and takes a token, and
checks the key is still active. On the embedded default (one process) buckets are kept in
process memory by the domain.
"""

from __future__ import annotations

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
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.store.engine import Direct, fetch_all, is_postgres
from app.store.tables import ApiKey, RateBucket

BUCKET = RateBucket.__table__
API_KEY = ApiKey.__table__


def shared_buckets(engine: AsyncEngine | Engine) -> bool:
    """True when per-key buckets live in the database (PostgreSQL), shared by every server
    process; taking a token there also re-checks that the key is active."""
    return is_postgres(engine)


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
# holds one; RETURNING the tokens left (no row: refused or revoked, see bucket_state). Built
# once: the same statement object every call, so SQLAlchemy's cache key and compiled form are
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


async def take(conn: AsyncConnection, key_id: int, per_minute: int) -> float | None:
    """Take a token from a key's shared bucket: the tokens left, or None when nothing was
    taken (the bucket is empty or the key revoked: see ``bucket_state``)."""
    tokens = (await conn.execute(TAKE, take_params(key_id, per_minute))).scalar()
    return None if tokens is None else float(tokens)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A key's shared bucket as it is now (read, nothing taken)."""

    tokens: float  # after refill; 0 when the key has no bucket yet
    key_active: bool


async def bucket_state(
    source: AsyncConnection | Direct, key_id: int, per_minute: int
) -> BucketState:
    """The tokens a key's bucket holds now and whether the key is active."""
    (row,) = await fetch_all(source, REFUSAL, take_params(key_id, per_minute))
    return BucketState(tokens=float(row[0] or 0.0), key_active=bool(row[1]))
