"""Request updates: the statements behind ``app.domain.updates`` (history, feed, app updates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import ClientApp, Division, RequestUpdate, ServiceRequest, ServiceType

APP = ClientApp.__table__
DIVISION = Division.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
UPDATE = RequestUpdate.__table__


@dataclass(frozen=True, slots=True)
class LockedRequest:
    """The fields of a request an update needs, read under a row lock (PostgreSQL)."""

    status: str
    app_id: int | None
    sandbox: bool
    requested_at: datetime | None = None
    api_key_id: int | None = None  # the key that filed it


class RequestChanges(TypedDict, total=False):
    """Columns of a request an update sets; a key left out keeps its value."""

    status: str
    detailed_status: str | None
    status_notes: str | None
    agency_responsible: str | None
    service_notice: str | None
    expected_at: datetime
    updated_at: datetime
    first_contact_resolved: bool


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """One ``request_update`` row, as the feed and the history show it."""

    id: int
    service_request_id: int
    status: str
    detailed_status: str | None
    updated_at: datetime
    description: str | None
    media_url: str | None
    external_status_code: str | None
    app_id: int | None
    api_key_id: int | None = None
    expected_at: datetime | None = None
    photos: list[dict[str, Any]] | None = None  # uploaded with the update


_COLUMNS = (
    UPDATE.c.id,
    UPDATE.c.service_request_id,
    UPDATE.c.status,
    UPDATE.c.detailed_status,
    UPDATE.c.updated_at,
    UPDATE.c.description,
    UPDATE.c.media_url,
    UPDATE.c.external_status_code,
    UPDATE.c.app_id,
    UPDATE.c.api_key_id,
    UPDATE.c.expected_at,
    UPDATE.c.photos,
)


def _stored(row: Any) -> StoredUpdate:
    return StoredUpdate(
        id=int(row.id),
        service_request_id=int(row.service_request_id),
        status=row.status,
        detailed_status=row.detailed_status,
        updated_at=row.updated_at,
        description=row.description,
        media_url=row.media_url,
        external_status_code=row.external_status_code,
        app_id=row.app_id,
        api_key_id=row.api_key_id,
        expected_at=row.expected_at,
        photos=list(row.photos) if row.photos else None,
    )


async def lock_request(
    conn: AsyncConnection, jurisdiction_pk: int, request_pk: int
) -> LockedRequest | None:
    """The request's status, app and sandbox flag, locked for this transaction (FOR UPDATE on
    PostgreSQL; SQLite's write transaction already holds the lock); None when it has none such."""
    row = (
        await conn.execute(
            select(
                REQUEST.c.status,
                REQUEST.c.app_id,
                REQUEST.c.sandbox,
                REQUEST.c.requested_at,
                REQUEST.c.api_key_id,
            )
            .where(REQUEST.c.id == request_pk, REQUEST.c.jurisdiction_id == jurisdiction_pk)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return LockedRequest(
        status=row[0],
        app_id=row[1],
        sandbox=bool(row[2]),
        requested_at=row[3],
        api_key_id=row[4],
    )


async def change_request(conn: AsyncConnection, request_pk: int, changes: RequestChanges) -> None:
    """Set the given columns of one request."""
    await conn.execute(update(REQUEST).where(REQUEST.c.id == request_pk).values(**changes))


async def insert_update(
    conn: AsyncConnection,
    *,
    jurisdiction_pk: int,
    request_pk: int,
    status: str,
    detailed_status: str | None,
    description: str | None,
    media_url: str | None,
    external_status_code: str | None,
    updated_at: datetime,
    app_id: int | None,
    external_id: str | None,
    sandbox: bool,
    created_at: datetime,
    api_key_id: int | None = None,
    expected_at: datetime | None = None,
    photos: list[dict[str, Any]] | None = None,
) -> int:
    """Record one update of a request (``photos``: the uploaded ones); its id."""
    update_pk = (
        await conn.execute(
            insert(UPDATE)
            .values(
                jurisdiction_id=jurisdiction_pk,
                service_request_id=request_pk,
                status=status,
                detailed_status=detailed_status,
                description=description,
                media_url=media_url,
                external_status_code=external_status_code,
                updated_at=updated_at,
                app_id=app_id,
                external_id=external_id,
                sandbox=sandbox,
                created_at=created_at,
                api_key_id=api_key_id,
                expected_at=expected_at,
                photos=photos or None,
            )
            .returning(UPDATE.c.id)
        )
    ).scalar_one()
    return int(update_pk)


async def app_update_id(conn: AsyncConnection, app_id: int | None, external_id: str) -> int | None:
    """The id of the update the app already sent under its own id ``external_id``, if any."""
    query = select(UPDATE.c.id).where(
        UPDATE.c.app_id == app_id, UPDATE.c.external_id == external_id
    )
    seen = (await conn.execute(query)).scalar()
    return None if seen is None else int(seen)


async def feed(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    sandbox: bool,
    sandbox_app_id: int | None = None,
    after: tuple[datetime, int] | None = None,
    request_pks: Sequence[int] | None = None,
) -> list[StoredUpdate]:
    """Updates of a jurisdiction timed in [start, end] (None: unbounded on that side), oldest
    first (ties by id), at most ``limit``.

    ``sandbox`` False: only public updates; True: only the sandbox updates of the sandbox
    requests of app ``sandbox_app_id``. ``after``: only updates that sort after this
    ``(updated_at, id)`` (keyset paging). ``request_pks``: only updates of these requests.
    """
    visible: ColumnElement[bool]
    if sandbox:
        own = select(REQUEST.c.id).where(REQUEST.c.app_id == sandbox_app_id, REQUEST.c.sandbox)
        visible = UPDATE.c.sandbox.is_(True) & UPDATE.c.service_request_id.in_(own)
    else:
        visible = UPDATE.c.sandbox.is_(False)
    where = [UPDATE.c.jurisdiction_id == jurisdiction_pk, visible]
    if start is not None:
        where.append(UPDATE.c.updated_at >= start)
    if end is not None:
        where.append(UPDATE.c.updated_at <= end)
    if after is not None:
        stamp, last = after
        # (updated_at, id) > after, spelt out; the plain bound first lets the index range
        # scan start at the cursor instead of at the window's start.
        where.append(UPDATE.c.updated_at >= stamp)
        where.append(
            or_(
                UPDATE.c.updated_at > stamp,
                and_(UPDATE.c.updated_at == stamp, UPDATE.c.id > last),
            )
        )
    if request_pks is not None:
        where.append(UPDATE.c.service_request_id.in_(list(request_pks)))
    rows = await conn.execute(
        select(*_COLUMNS).where(*where).order_by(UPDATE.c.updated_at, UPDATE.c.id).limit(limit)
    )
    return [_stored(r) for r in rows]


async def history(
    conn: AsyncConnection, jurisdiction_pk: int, request_pk: int
) -> list[StoredUpdate]:
    """Every update of one request, oldest first."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(
            UPDATE.c.service_request_id == request_pk,
            UPDATE.c.jurisdiction_id == jurisdiction_pk,
        )
        .order_by(UPDATE.c.updated_at, UPDATE.c.id)
    )
    return [_stored(r) for r in rows]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the admin API shows of a request's service promise (``app.domain.service_promise``)."""

    id: int
    status: str
    detailed_status: str | None
    service_code: str
    division_code: str | None
    division_name: str | None
    agency_responsible: str | None
    channel: str | None
    first_contact_resolved: bool
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None
    app_name: str | None
    api_key_id: int | None
    sandbox: bool


async def request_facts(
    conn: AsyncConnection, jurisdiction_pk: int, request_pk: int
) -> RequestFacts | None:
    """One request's service-promise facts, or None when the jurisdiction has no such one."""
    row = (
        await conn.execute(
            select(
                REQUEST.c.id,
                REQUEST.c.status,
                REQUEST.c.detailed_status,
                SERVICE.c.service_code,
                DIVISION.c.code,
                DIVISION.c.name,
                REQUEST.c.agency_responsible,
                REQUEST.c.channel,
                REQUEST.c.first_contact_resolved,
                REQUEST.c.requested_at,
                REQUEST.c.updated_at,
                REQUEST.c.expected_at,
                APP.c.name,
                REQUEST.c.api_key_id,
                REQUEST.c.sandbox,
            )
            .join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
            .outerjoin(DIVISION, DIVISION.c.id == SERVICE.c.division_id)
            .outerjoin(APP, APP.c.id == REQUEST.c.app_id)
            .where(REQUEST.c.id == request_pk, REQUEST.c.jurisdiction_id == jurisdiction_pk)
        )
    ).first()
    if row is None:
        return None
    return RequestFacts(
        id=int(row[0]),
        status=row[1],
        detailed_status=row[2],
        service_code=row[3],
        division_code=row[4],
        division_name=row[5],
        agency_responsible=row[6],
        channel=row[7],
        first_contact_resolved=bool(row[8]),
        requested_at=row[9],
        updated_at=row[10],
        expected_at=row[11],
        app_name=row[12],
        api_key_id=row[13],
        sandbox=bool(row[14]),
    )
