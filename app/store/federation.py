"""Federation SQL: partner rows and their health, synced request copies, the forward queue.

The federation package (``app.federation``) decides; these functions read and write. Each
takes the connection its caller opened (so several run in one transaction) and returns typed
values. Dialect branches live here: PostgreSQL claims forwards with ``FOR UPDATE SKIP
LOCKED`` and keeps the PostGIS ``location`` column of synced copies in step with lat/long.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update

from app.geo.points import point_expression
from app.store.queue import FORWARD_STATE
from app.store.tables import (
    Area,
    BoundarySet,
    FederationForward,
    FederationPartner,
    FederationRequest,
    Jurisdiction,
    RequestToken,
    ServiceRequest,
    ServiceType,
    Submission,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

PARTNER = FederationPartner.__table__
MAPPING = FederationRequest.__table__
JURISDICTION = Jurisdiction.__table__
SERVICE = ServiceType.__table__
REQUEST = ServiceRequest.__table__
BOUNDARY_SET = BoundarySet.__table__
AREA = Area.__table__
QUEUE = Submission.__table__
FORWARD = FederationForward.__table__
TOKEN = RequestToken.__table__

# The request columns a synced copy takes from the partner's document.
SYNCED_FIELDS = (
    "status",
    "status_notes",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_at",
    "updated_at",
    "expected_at",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "lon",
    "media_url",
)


def _postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


# ---------------------------------------------------------------------------------------
# Partner rows


@dataclass(frozen=True, slots=True)
class PartnerStatus:
    """A partner's kind, its jurisdiction's name, and its health."""

    kind: str
    name: str
    status: str
    consecutive_failures: int
    breaker_open_until: datetime | None
    last_refresh_at: datetime | None
    last_synced_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PartnerRow(PartnerStatus):
    """A partner row: its status, its jurisdiction's key, code and time zone, how it is
    reached."""

    jurisdiction_pk: int
    code: str
    timezone: str
    base_url: str | None
    fmt: str
    api_key: str | None
    partner_jurisdiction_id: str | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A remote partner's endpoint settings."""

    base_url: str
    fmt: str
    api_key: str | None
    partner_jurisdiction_id: str | None


async def partner_kind(conn: AsyncConnection, jurisdiction_pk: int) -> str | None:
    """The partner kind of a jurisdiction (``remote``/``region``), None for a local one."""
    kind: str | None = (
        await conn.execute(
            select(PARTNER.c.kind).where(PARTNER.c.jurisdiction_id == jurisdiction_pk)
        )
    ).scalar()
    return kind


async def save_partner(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    kind: str,
    endpoint: Endpoint | None,
    now: datetime,
) -> None:
    """Create the partner row of a jurisdiction, or set its kind (and endpoint, if given)."""
    values: dict[str, Any] = {"kind": kind}
    if endpoint is not None:
        values.update(
            base_url=endpoint.base_url,
            format=endpoint.fmt,
            partner_api_key=endpoint.api_key,
            partner_jurisdiction_id=endpoint.partner_jurisdiction_id,
        )
    if await partner_kind(conn, jurisdiction_pk) is None:
        await conn.execute(
            insert(PARTNER).values(
                jurisdiction_id=jurisdiction_pk,
                status="unknown",
                consecutive_failures=0,
                created_at=now,
                **values,
            )
        )
    else:
        await conn.execute(
            update(PARTNER).where(PARTNER.c.jurisdiction_id == jurisdiction_pk).values(**values)
        )


async def jurisdiction_code(conn: AsyncConnection, jurisdiction_pk: int) -> str:
    """The code of a jurisdiction by primary key."""
    code: str = (
        await conn.execute(select(JURISDICTION.c.code).where(JURISDICTION.c.id == jurisdiction_pk))
    ).scalar_one()
    return code


async def remote_codes(conn: AsyncConnection) -> list[str]:
    """The codes of every remote partner jurisdiction."""
    rows = await conn.execute(
        select(JURISDICTION.c.code)
        .join(PARTNER, PARTNER.c.jurisdiction_id == JURISDICTION.c.id)
        .where(PARTNER.c.kind == "remote")
    )
    return [row[0] for row in rows]


async def partners(
    conn: AsyncConnection, code: str | None = None, kind: str | None = None
) -> list[PartnerRow]:
    """Partner rows (optionally of one code, compared case-insensitively, or one kind),
    ordered by code."""
    query = (
        select(
            PARTNER,
            JURISDICTION.c.code,
            JURISDICTION.c.name,
            JURISDICTION.c.timezone,
        )
        .join(JURISDICTION, JURISDICTION.c.id == PARTNER.c.jurisdiction_id)
        .order_by(JURISDICTION.c.code)
    )
    if code is not None:
        query = query.where(func.lower(JURISDICTION.c.code) == code.lower())
    if kind is not None:
        query = query.where(PARTNER.c.kind == kind)
    rows = (await conn.execute(query)).mappings().all()
    return [
        PartnerRow(
            jurisdiction_pk=row["jurisdiction_id"],
            code=row["code"],
            name=row["name"],
            timezone=row["timezone"],
            kind=row["kind"],
            base_url=row["base_url"],
            fmt=row["format"],
            api_key=row["partner_api_key"],
            partner_jurisdiction_id=row["partner_jurisdiction_id"],
            status=row["status"],
            consecutive_failures=row["consecutive_failures"],
            breaker_open_until=row["breaker_open_until"],
            last_refresh_at=row["last_refresh_at"],
            last_synced_at=row["last_synced_at"],
            last_error=row["last_error"],
        )
        for row in rows
    ]


async def current_set_area_codes(
    conn: AsyncConnection, jurisdiction_pk: int, set_kind: str
) -> list[str]:
    """The area codes of a jurisdiction's current boundary set of ``set_kind``, ordered
    (repeats kept: an area may be in several pieces)."""
    rows = await conn.execute(
        select(AREA.c.code)
        .join(BOUNDARY_SET, BOUNDARY_SET.c.id == AREA.c.boundary_set_id)
        .where(
            BOUNDARY_SET.c.jurisdiction_id == jurisdiction_pk,
            BOUNDARY_SET.c.kind == set_kind,
            BOUNDARY_SET.c.current.is_(True),
        )
        .order_by(AREA.c.code)
    )
    return [row[0] for row in rows]


@dataclass(frozen=True, slots=True)
class JurisdictionRow:
    """A jurisdiction's primary key, code and name."""

    pk: int
    code: str
    name: str


async def jurisdictions(conn: AsyncConnection) -> list[JurisdictionRow]:
    """Every jurisdiction, ordered by code."""
    rows = await conn.execute(
        select(JURISDICTION.c.id, JURISDICTION.c.code, JURISDICTION.c.name).order_by(
            JURISDICTION.c.code
        )
    )
    return [JurisdictionRow(pk, code, name) for pk, code, name in rows]


@dataclass(frozen=True, slots=True)
class PartnerSync:
    """A partner's kind and when it was last synced."""

    kind: str
    last_synced_at: datetime | None


async def partner_sync(conn: AsyncConnection, jurisdiction_pk: int) -> PartnerSync | None:
    """The kind and last sync of a partner jurisdiction; None for a local one."""
    row = (
        await conn.execute(
            select(PARTNER.c.kind, PARTNER.c.last_synced_at).where(
                PARTNER.c.jurisdiction_id == jurisdiction_pk
            )
        )
    ).first()
    return None if row is None else PartnerSync(row[0], row[1])


# ---------------------------------------------------------------------------------------
# Health and the circuit breaker


async def partner_succeeded(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    *,
    status: str,
    refreshed_at: datetime | None = None,
    synced_at: datetime | None = None,
    warning: str | None = None,
    warning_at: datetime | None = None,
) -> None:
    """A call succeeded: failures reset, circuit closed, ``status`` set; the refresh and sync
    times and the warning are stamped when given (otherwise left as they are)."""
    values: dict[str, Any] = {
        "consecutive_failures": 0,
        "breaker_open_until": None,
        "status": status,
    }
    if refreshed_at is not None:
        values["last_refresh_at"] = refreshed_at
    if synced_at is not None:
        values["last_synced_at"] = synced_at
    if warning is not None:
        values.update(last_error=warning, last_error_at=warning_at)
    await conn.execute(
        update(PARTNER).where(PARTNER.c.jurisdiction_id == jurisdiction_pk).values(**values)
    )


async def count_failure(conn: AsyncConnection, jurisdiction_pk: int) -> int:
    """Count one more consecutive failure; the new count."""
    failures: int = (
        await conn.execute(
            update(PARTNER)
            .where(PARTNER.c.jurisdiction_id == jurisdiction_pk)
            .values(consecutive_failures=PARTNER.c.consecutive_failures + 1)
            .returning(PARTNER.c.consecutive_failures)
        )
    ).scalar_one()
    return failures


async def partner_failed(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    *,
    status: str,
    error: str,
    error_at: datetime,
    breaker_open_until: datetime | None = None,
    refreshed_at: datetime | None = None,
) -> None:
    """A call failed: ``status`` and the error set; the circuit's reopening time and the
    refresh time stamped when given (otherwise left as they are)."""
    values: dict[str, Any] = {"status": status, "last_error": error, "last_error_at": error_at}
    if breaker_open_until is not None:
        values["breaker_open_until"] = breaker_open_until
    if refreshed_at is not None:
        values["last_refresh_at"] = refreshed_at
    await conn.execute(
        update(PARTNER).where(PARTNER.c.jurisdiction_id == jurisdiction_pk).values(**values)
    )


async def claim_refresh(
    conn: AsyncConnection, jurisdiction_pk: int, seen: datetime | None, now: datetime
) -> bool:
    """Stamp ``last_refresh_at`` with ``now`` if it is still ``seen``; whether it was.

    A conditional UPDATE, so of several worker loops that found the partner due exactly one
    wins (on PostgreSQL the row lock makes the others re-check and miss; SQLite writes one at a
    time).
    """
    column = PARTNER.c.last_refresh_at
    result = await conn.execute(
        update(PARTNER)
        .where(
            PARTNER.c.jurisdiction_id == jurisdiction_pk,
            column.is_(None) if seen is None else column == seen,
        )
        .values(last_refresh_at=now)
    )
    return result.rowcount == 1


# ---------------------------------------------------------------------------------------
# Mirrored services


async def deactivate_services_except(
    conn: AsyncConnection, jurisdiction_pk: int, keep: Collection[int], now: datetime
) -> None:
    """Deactivate every service of a jurisdiction whose primary key is not in ``keep``."""
    await conn.execute(
        update(SERVICE)
        .where(SERVICE.c.jurisdiction_id == jurisdiction_pk, SERVICE.c.id.not_in(keep))
        .values(active=False, updated_at=now)
    )


async def add_inactive_service(
    conn: AsyncConnection, jurisdiction_pk: int, code: str, name: str, now: datetime
) -> int:
    """A new inactive (``realtime``) service row; its primary key."""
    pk: int = (
        await conn.execute(
            insert(SERVICE)
            .values(
                jurisdiction_id=jurisdiction_pk,
                service_code=code,
                service_name=name,
                type="realtime",
                active=False,
                created_at=now,
                updated_at=now,
            )
            .returning(SERVICE.c.id)
        )
    ).scalar_one()
    return pk


async def service_code(conn: AsyncConnection, service_pk: int) -> str:
    """The code of a service by primary key."""
    code: str = (
        await conn.execute(select(SERVICE.c.service_code).where(SERVICE.c.id == service_pk))
    ).scalar_one()
    return code


async def service_code_and_name(conn: AsyncConnection, service_pk: int) -> tuple[str, str] | None:
    """The code and name of a service by primary key, None if there is none."""
    row = (
        await conn.execute(
            select(SERVICE.c.service_code, SERVICE.c.service_name).where(SERVICE.c.id == service_pk)
        )
    ).first()
    return None if row is None else (row[0], row[1])


# ---------------------------------------------------------------------------------------
# Synced request copies


@dataclass(frozen=True, slots=True)
class Synced:
    """What storing a batch of synced copies did."""

    ids: dict[str, int]  # partner id -> our id
    added: int
    updated: int


async def save_synced(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    items: list[dict[str, Any]],
    services: Mapping[str, int],
    now: datetime,
) -> Synced:
    """Store or refresh synced copies of partner requests (each ``partner_request_id`` once;
    ``services``: service code -> our service primary key, for every item's code)."""
    ids: dict[str, int] = {}
    existing = dict(
        (
            await conn.execute(
                select(MAPPING.c.partner_request_id, MAPPING.c.service_request_id).where(
                    MAPPING.c.jurisdiction_id == jurisdiction_pk,
                    MAPPING.c.partner_request_id.in_([i["partner_request_id"] for i in items]),
                )
            )
        ).all()
    )
    fresh = [i for i in items if i["partner_request_id"] not in existing]
    old = [i for i in items if i["partner_request_id"] in existing]
    touched: list[int] = []
    if fresh:
        rows = []
        for item in fresh:
            row = {name: item[name] for name in SYNCED_FIELDS}
            row["requested_at"] = row["requested_at"] or now
            row["updated_at"] = row["updated_at"] or row["requested_at"]
            row.update(
                jurisdiction_id=jurisdiction_pk,
                service_type_id=services[item["service_code"]],
                created_at=now,
                sandbox=False,
            )
            rows.append(row)
        new_ids = (
            (
                await conn.execute(
                    insert(REQUEST).returning(REQUEST.c.id, sort_by_parameter_order=True), rows
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            insert(MAPPING),
            [
                {
                    "service_request_id": pk,
                    "jurisdiction_id": jurisdiction_pk,
                    "partner_request_id": item["partner_request_id"],
                    "synced_at": now,
                }
                for pk, item in zip(new_ids, fresh, strict=True)
            ],
        )
        for pk, item in zip(new_ids, fresh, strict=True):
            ids[item["partner_request_id"]] = int(pk)
        touched += new_ids
    if old:
        params = []
        for item in old:
            row = {f"v_{name}": item[name] for name in SYNCED_FIELDS}
            row["v_requested_at"] = row["v_requested_at"] or now
            row["v_updated_at"] = row["v_updated_at"] or row["v_requested_at"]
            row["v_service_type_id"] = services[item["service_code"]]
            row["k_id"] = existing[item["partner_request_id"]]
            params.append(row)
            ids[item["partner_request_id"]] = int(existing[item["partner_request_id"]])
        await conn.execute(
            update(REQUEST)
            .where(REQUEST.c.id == bindparam("k_id"))
            .values({name: bindparam(f"v_{name}") for name in (*SYNCED_FIELDS, "service_type_id")}),
            params,
        )
        await conn.execute(
            update(MAPPING)
            .where(
                MAPPING.c.jurisdiction_id == jurisdiction_pk,
                MAPPING.c.partner_request_id.in_([i["partner_request_id"] for i in old]),
            )
            .values(synced_at=now)
        )
        touched += [existing[i["partner_request_id"]] for i in old]
    if _postgres(conn) and touched:
        await conn.execute(
            update(REQUEST)
            .where(REQUEST.c.id.in_(touched))
            .values(location=point_expression(REQUEST.c.lat, REQUEST.c.lon))
        )
    return Synced(ids, len(fresh), len(old))


async def set_submitted_fields(
    conn: AsyncConnection,
    request_pk: int,
    *,
    attributes: dict[str, Any] | None,
    media_urls: list[str] | None,
    api_key_id: int | None,
    app_id: str | None,
    private: Mapping[str, Any],
) -> None:
    """Give a synced copy of a forwarded submission what only we know: its attribute answers,
    media URLs, API key and the submitter's private fields (``private``: column -> value)."""
    await conn.execute(
        update(REQUEST)
        .where(REQUEST.c.id == request_pk)
        .values(
            attributes=attributes,
            media_urls=media_urls,
            api_key_id=api_key_id,
            app_id=app_id,
            **private,
        )
    )


# ---------------------------------------------------------------------------------------
# The forward queue


@dataclass(frozen=True, slots=True)
class ClaimedForward:
    """A forward claimed by ``claim_forwards`` (``attempts``: this one counted)."""

    submission_pk: int
    token: str
    service_pk: int
    payload: dict[str, Any]
    target_pk: int
    partner_token: str | None
    partner_request_id: str | None
    attempts: int


async def claim_forwards(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedForward]:
    """Claim up to ``limit`` due forwards (oldest due first): push their next attempt to
    ``lease_until`` and count an attempt. PostgreSQL skips forwards another worker has locked."""
    query = (
        select(
            QUEUE.c.id,
            QUEUE.c.token,
            QUEUE.c.service_type_id,
            QUEUE.c.payload,
            FORWARD.c.target_jurisdiction_id,
            FORWARD.c.partner_token,
            FORWARD.c.partner_request_id,
            QUEUE.c.attempts,
        )
        .join(FORWARD, FORWARD.c.submission_id == QUEUE.c.id)
        .where(QUEUE.c.state == FORWARD_STATE, FORWARD.c.next_attempt_at <= now)
        .order_by(FORWARD.c.next_attempt_at, QUEUE.c.id)
        .limit(limit)
    )
    if _postgres(conn):
        query = query.with_for_update(skip_locked=True, of=FORWARD)
    rows = [
        ClaimedForward(*row[:-1], attempts=row[-1] + 1) for row in (await conn.execute(query)).all()
    ]
    if rows:
        ids = [r.submission_pk for r in rows]
        await conn.execute(
            update(FORWARD)
            .where(FORWARD.c.submission_id.in_(ids))
            .values(next_attempt_at=lease_until)
        )
        await conn.execute(
            update(QUEUE).where(QUEUE.c.id.in_(ids)).values(attempts=QUEUE.c.attempts + 1)
        )
    return rows


async def set_partner_ids(
    conn: AsyncConnection,
    submission_pk: int,
    partner_request_id: str | None,
    partner_token: str | None,
) -> None:
    """Remember the id or token the partner gave a forwarded submission."""
    await conn.execute(
        update(FORWARD)
        .where(FORWARD.c.submission_id == submission_pk)
        .values(partner_request_id=partner_request_id, partner_token=partner_token)
    )


async def finish_forward(
    conn: AsyncConnection, submission_pk: int, token: str, request_pk: int | None, now: datetime
) -> None:
    """A forward is done: its token resolves to ``request_pk`` (when there is one)."""
    if request_pk is not None:
        await conn.execute(
            update(TOKEN).where(TOKEN.c.token == token).values(service_request_id=request_pk)
        )
    await conn.execute(
        update(QUEUE)
        .where(QUEUE.c.id == submission_pk)
        .values(state="done", done_at=now, error=None)
    )


async def fail_forward(
    conn: AsyncConnection, submission_pk: int, status: int | None, error: str, now: datetime
) -> None:
    """A forward the partner refused: the submission fails with ``error``."""
    await conn.execute(
        update(QUEUE)
        .where(QUEUE.c.id == submission_pk)
        .values(state="failed", error=error, done_at=now)
    )
    await conn.execute(
        update(FORWARD)
        .where(FORWARD.c.submission_id == submission_pk)
        .values(last_status=status, last_error=error)
    )


async def reschedule_forward(
    conn: AsyncConnection, submission_pk: int, next_attempt_at: datetime, error: str | None
) -> None:
    """Try a forward again at ``next_attempt_at``; ``error`` (when given) is recorded."""
    values: dict[str, Any] = {"next_attempt_at": next_attempt_at}
    if error is not None:
        values["last_error"] = error
    await conn.execute(
        update(FORWARD).where(FORWARD.c.submission_id == submission_pk).values(**values)
    )
