"""What ``extensions=true`` adds to the requests of a read (issue 18 point 6): each request's
detailed status, media URLs, uploaded photos and submitted attribute values, and its update
history.

Read after the list itself (two statements for a whole page, none on the hot read): the
request ids come from a read that already applied the viewer's rules (jurisdiction, sandbox).
Only the fields the public updates feed shows are read of an update (never who made it, its
key or the app's own id for it); the domain picks the public attribute values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, func, select

from app.store.engine import read_connection
from app.store.tables import RequestUpdate, ServiceRequest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

REQUEST = ServiceRequest.__table__
UPDATE = RequestUpdate.__table__


@dataclass(frozen=True, slots=True)
class PublicNote:
    """One update of a request's history, as public as the updates feed."""

    update_id: int
    updated_at: datetime
    status: str
    detailed_status: str | None
    description: str | None
    media_url: str | None
    photos: list[dict[str, Any]] = field(default_factory=list)  # uploaded with the update


@dataclass(slots=True)
class RequestDetails:
    """The stored details of one request (the domain decides what of them is shown)."""

    detailed_status: str | None
    media_urls: list[str]
    attributes: dict[str, Any]
    photos: list[dict[str, Any]] = field(default_factory=list)  # uploaded: url, thumbnail, ...
    notes: list[PublicNote] = field(default_factory=list)


async def request_details(
    engine: AsyncEngine,
    request_pks: Sequence[int],
    *,
    sandbox: bool,
    max_notes: int,
) -> dict[int, RequestDetails]:
    """The details of these requests, by id; their notes oldest first, at most the newest
    ``max_notes`` of each (``sandbox``: the sandbox updates, else the public ones)."""
    if not request_pks:
        return {}
    ids = list(dict.fromkeys(request_pks))
    requests = select(
        REQUEST.c.id,
        REQUEST.c.detailed_status,
        REQUEST.c.media_url,
        REQUEST.c.media_urls,
        REQUEST.c.attributes,
        REQUEST.c.photos,
    ).where(REQUEST.c.id.in_(ids))
    rank = (
        func.row_number()
        .over(
            partition_by=UPDATE.c.service_request_id,
            order_by=(UPDATE.c.updated_at.desc(), UPDATE.c.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(
            UPDATE.c.service_request_id,
            UPDATE.c.id,
            UPDATE.c.updated_at,
            UPDATE.c.status,
            UPDATE.c.detailed_status,
            UPDATE.c.description,
            UPDATE.c.media_url,
            UPDATE.c.photos,
            rank,
        )
        .where(UPDATE.c.service_request_id.in_(ids), UPDATE.c.sandbox.is_(sandbox))
        .subquery()
    )
    notes = (
        select(*[c for c in ranked.c if c.name != "rank"])
        .where(ranked.c.rank <= bindparam("max_notes", type_=Integer()))
        .order_by(ranked.c.service_request_id, ranked.c.updated_at, ranked.c.id)
    )
    async with read_connection(engine) as conn:
        found = {
            int(row.id): RequestDetails(
                row.detailed_status,
                list(row.media_urls or ([row.media_url] if row.media_url else [])),
                dict(row.attributes or {}),
                list(row.photos or []),
            )
            for row in await conn.execute(requests)
        }
        for row in await conn.execute(notes, {"max_notes": max_notes}):
            details = found.get(int(row.service_request_id))
            if details is not None:
                details.notes.append(
                    PublicNote(
                        int(row.id),
                        row.updated_at,
                        row.status,
                        row.detailed_status,
                        row.description,
                        row.media_url,
                        list(row.photos or []),
                    )
                )
    return found
