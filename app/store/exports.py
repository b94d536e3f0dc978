"""The SQL of exports beyond the reads of GET requests (``app.store.requests``): how many
requests an export will write (``open311 export``'s progress bar)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from app.models.requests import RequestRead
from app.store.engine import read_connection
from app.store.requests import read_plan

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# The LIMIT of a count's inner read: none in effect (PostgreSQL's LIMIT parameter is an int4).
_NO_LIMIT = 2**31 - 1


async def count_requests(engine: AsyncEngine, read: RequestRead) -> int:
    """How many rows ``read`` (from its keyset position on, whatever its limit) matches."""
    statement, params = read_plan(
        replace(read, limit=_NO_LIMIT, zone=None, offset=0),
        postgres=engine.dialect.name == "postgresql",
    )
    counted = select(func.count()).select_from(statement.subquery())
    async with read_connection(engine) as conn:
        return int((await conn.execute(counted, params)).scalar_one())
