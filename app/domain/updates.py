"""Request updates: staff changes and app updates, their history and the updates feed.

Compatible with mySociety/FixMyStreet's ``servicerequestupdates`` extension: every change is a
``request_update`` row (its ``update_id`` is ``str(id)``); the core request ``status`` stays
``open``/``closed`` and the richer value lives in ``detailed_status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain import policy, webhooks
from app.domain.api_keys import KeyInfo
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import is_http_url
from app.errors import BadRequest, InvalidParameter, RequestNotFound
from app.georeport import params as parameters
from app.georeport.datetimes import format_w3c, parse_w3c, shift, to_utc
from app.store.tables import RequestUpdate, ServiceRequest
from app.store.tables.base import utcnow

REQUEST = ServiceRequest.__table__
UPDATE = RequestUpdate.__table__

# Extended statuses (lowercase) and the core status each one means.
DETAILED_STATUSES: dict[str, str] = {
    "open": "open",
    "reopen": "open",
    "in_progress": "open",
    "planned": "open",
    "action_scheduled": "open",
    "investigating": "open",
    "for_triage": "open",
    "closed": "closed",
    "fixed": "closed",
    "duplicate": "closed",
    "not_councils_responsibility": "closed",
    "no_further_action": "closed",
    "internal_referral": "closed",
    "cancelled": "closed",
}


def parse_status(value: str) -> tuple[str, str]:
    """(core status, detailed status) of a status given in any case (``IN_PROGRESS``)."""
    detailed = value.strip().lower().replace(" ", "_")
    if detailed == "reopen":
        return "open", "open"
    core = DETAILED_STATUSES.get(detailed)
    if core is None:
        raise InvalidParameter(
            f"status {value[:40]!r} is not one of {', '.join(sorted(DETAILED_STATUSES))} "
            "(any case)."
        )
    return core, detailed


@dataclass(slots=True)
class Change:
    """A change to a request; None means unchanged."""

    status: str | None = None
    status_notes: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    expected_datetime: str | None = None
    description: str | None = None
    media_url: str | None = None
    external_status_code: str | None = None
    updated_datetime: str | None = None


def _text(name: str, value: str | None, limit: int, problems: list[str]) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        problems.append(f"{name} is too long: at most {limit} characters.")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        problems.append(f"{name} contains control characters.")
    return value or None


async def apply_change(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    service_request_id: str,
    change: Change,
    *,
    caller: KeyInfo | None = None,
    external_id: str | None = None,
) -> dict[str, Any]:
    """Change a request and record the update (same transaction); the update's wire item.

    ``caller``: the API key of an app's update (None: staff); the policy decides whether it
    may change this request.
    """
    app_id = caller.app_id if caller is not None else None
    problems: list[str] = []
    core = detailed = None
    if change.status:
        try:
            core, detailed = parse_status(change.status)
        except InvalidParameter as exc:
            problems.extend(exc.descriptions)
    values: dict[str, Any] = {}
    for name, limit in (
        ("status_notes", 4000),
        ("agency_responsible", 255),
        ("service_notice", 1000),
    ):
        text = _text(name, getattr(change, name), limit, problems)
        if getattr(change, name) is not None:
            values[name] = text
    description = _text("description", change.description, 4000, problems)
    media_url = _text("media_url", change.media_url, 2048, problems)
    if media_url is not None and not is_http_url(media_url):
        problems.append("media_url must be an absolute http or https URL.")
    code = _text("external_status_code", change.external_status_code, 255, problems)
    now = utcnow()
    when = now
    for name in ("expected_datetime", "updated_datetime"):
        raw = getattr(change, name)
        if raw:
            try:
                parsed = to_utc(parse_w3c(raw, jurisdiction.tz, allow_date_only=False))
            except ValueError:
                problems.append(f"{name} must be a W3C datetime with a time zone.")
                continue
            if name == "expected_datetime":
                values["expected_at"] = parsed
            else:
                if parsed > now + timedelta(minutes=5):
                    problems.append("updated_datetime must not be in the future.")
                when = min(parsed, now)
    if problems:
        raise InvalidParameter(*problems)
    if (
        not (service_request_id.isascii() and service_request_id.isdigit())
        or len(service_request_id) > 18
    ):
        raise RequestNotFound(f"No service request with id {service_request_id[:64]!r}.")
    request_pk = int(service_request_id)
    row = (
        await conn.execute(
            select(REQUEST.c.status, REQUEST.c.app_id, REQUEST.c.sandbox)
            .where(REQUEST.c.id == request_pk, REQUEST.c.jurisdiction_id == jurisdiction.pk)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise RequestNotFound(f"No service request with id {service_request_id!r}.")
    if caller is not None:
        policy.check_request_update(caller, jurisdiction.pk, row[1], bool(row[2]))
    if core is not None:
        values["status"] = core
        values["detailed_status"] = detailed
    if "status_notes" not in values and description is not None:
        values["status_notes"] = description
    values["updated_at"] = now
    await conn.execute(update(REQUEST).where(REQUEST.c.id == request_pk).values(**values))
    final_core = core or row[0]
    update_pk = (
        await conn.execute(
            insert(UPDATE)
            .values(
                jurisdiction_id=jurisdiction.pk,
                service_request_id=request_pk,
                status=final_core,
                detailed_status=detailed,
                description=description,
                media_url=media_url,
                external_status_code=code,
                updated_at=when,
                app_id=app_id,
                external_id=external_id,
                sandbox=row[2],
                created_at=now,
            )
            .returning(UPDATE.c.id)
        )
    ).scalar_one()
    item = {
        "update_id": str(update_pk),
        "service_request_id": str(request_pk),
        "status": detailed or final_core,
        "updated_datetime": format_w3c(when, jurisdiction.tz),
        "description": description,
        "media_url": media_url,
        "external_status_code": code,
    }
    # Tell the app that submitted the request (never blocks: deliveries are queued).
    await webhooks.enqueue_update(
        conn,
        app_id=row[1],
        update_pk=int(update_pk),
        payload={"event": "service_request.updated", "update": item},
    )
    return item


async def app_update(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    *,
    caller: KeyInfo,
    params: dict[str, list[str]],
) -> dict[str, Any]:
    """POST servicerequestupdates: an app (e.g. FixMyStreet) reports an update of a request
    it may change (see ``app.domain.policy``)."""
    app_id = caller.app_id

    def one(name: str) -> str | None:
        return parameters.one(name, params.get(name, ()))

    missing = [
        name
        for name in ("service_request_id", "update_id", "updated_datetime", "status")
        if one(name) is None
    ]
    if missing:
        raise BadRequest(*[f"{name} is required." for name in missing])
    external = one("update_id")
    assert external is not None  # noqa: S101 - invariant, not an input check
    if len(external) > 255:
        raise BadRequest("update_id is too long: at most 255 characters.")
    seen = (
        await conn.execute(
            select(UPDATE.c.id).where(UPDATE.c.app_id == app_id, UPDATE.c.external_id == external)
        )
    ).scalar()
    if seen is not None:
        raise BadRequest(f"update_id {external!r} was already received (as update {seen}).")
    change = Change(
        status=one("status"),
        description=one("description") or "",
        media_url=one("media_url"),
        updated_datetime=one("updated_datetime"),
        external_status_code=one("external_status_code"),
    )
    return await apply_change(
        conn,
        jurisdiction,
        one("service_request_id") or "",
        change,
        caller=caller,
        external_id=external,
    )


async def list_updates(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    *,
    start_date: str | None,
    end_date: str | None,
    window_days: int,
    max_results: int,
    viewer: KeyInfo | None = None,
) -> list[dict[str, Any]]:
    """GET servicerequestupdates: updates timed in [start_date, end_date], oldest first.

    A sandbox ``viewer`` sees only the updates of its app's sandbox requests; everyone else
    only public ones."""
    bounds: dict[str, datetime] = {}
    problems = []
    for name, text in (("start_date", start_date), ("end_date", end_date)):
        if text is not None and text.strip():
            try:
                bounds[name] = to_utc(parse_w3c(text, jurisdiction.tz))
            except ValueError:
                problems.append(f"{name} must be a W3C datetime with a time zone.")
    if problems:
        raise InvalidParameter(*problems)
    start = bounds.get("start_date")
    # Only a start: up to now, or an empty window at the start when it lies ahead.
    end = bounds.get("end_date") or max(utcnow(), start or utcnow())
    start = start or shift(end, -timedelta(days=window_days))
    if end < start:
        raise InvalidParameter("end_date must not be before start_date.")
    rows = await conn.execute(
        select(
            UPDATE.c.id,
            UPDATE.c.service_request_id,
            UPDATE.c.status,
            UPDATE.c.detailed_status,
            UPDATE.c.updated_at,
            UPDATE.c.description,
            UPDATE.c.media_url,
            UPDATE.c.external_status_code,
        )
        .where(
            UPDATE.c.jurisdiction_id == jurisdiction.pk,
            _visible(viewer),
            UPDATE.c.updated_at >= start,
            UPDATE.c.updated_at <= end,
        )
        .order_by(UPDATE.c.updated_at, UPDATE.c.id)
        .limit(max_results)
    )
    return [
        {
            "update_id": str(r[0]),
            "service_request_id": str(r[1]),
            "status": r[3] or r[2],
            "updated_datetime": format_w3c(r[4], jurisdiction.tz),
            "description": r[5],
            "media_url": r[6],
            "external_status_code": r[7],
        }
        for r in rows
    ]


def _visible(viewer: KeyInfo | None) -> Any:
    if viewer is None or not viewer.sandbox:
        return UPDATE.c.sandbox.is_(False)
    own = select(REQUEST.c.id).where(REQUEST.c.app_id == viewer.app_id, REQUEST.c.sandbox)
    return UPDATE.c.sandbox.is_(True) & UPDATE.c.service_request_id.in_(own)


async def history(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, service_request_id: int
) -> list[dict[str, Any]]:
    """Every update of one request, oldest first (admin view)."""
    rows = await conn.execute(
        select(
            UPDATE.c.id,
            UPDATE.c.status,
            UPDATE.c.detailed_status,
            UPDATE.c.updated_at,
            UPDATE.c.description,
            UPDATE.c.external_status_code,
            UPDATE.c.app_id,
        )
        .where(
            UPDATE.c.service_request_id == service_request_id,
            UPDATE.c.jurisdiction_id == jurisdiction.pk,
        )
        .order_by(UPDATE.c.updated_at, UPDATE.c.id)
    )
    return [
        {
            "update_id": str(r[0]),
            "status": r[2] or r[1],
            "updated_datetime": format_w3c(r[3], jurisdiction.tz),
            "description": r[4],
            "external_status_code": r[5],
            "by": "staff" if r[6] is None else f"app {r[6]}",
        }
        for r in rows
    ]
