"""Request updates: staff changes and app updates, their history and the updates feed.

Compatible with mySociety/FixMyStreet's ``servicerequestupdates`` extension: every change is a
``request_update`` row (its ``update_id`` is ``str(id)``); the core request ``status`` stays
``open``/``closed`` and the richer value lives in ``detailed_status``.

An update records the API key that made it (an app's, or the staff admin's; none on the CLI)
and the ``expected_datetime`` it set, so a staff override of the computed one stays in the
history. A change closing a request can make it resolved at first contact
(``app.domain.channels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from app.domain import cursors, policy, webhooks
from app.domain.api_keys import KeyInfo
from app.domain.channels import resolved_on_update
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.requests import is_http_url, public_photos, split_list
from app.domain.statuses import DETAILED_STATUSES as DETAILED_STATUSES  # re-exported
from app.domain.statuses import parse_status as parse_status  # re-exported
from app.errors import BadRequest, InvalidParameter, RequestNotFound
from app.georeport import params as parameters
from app.georeport.datetimes import format_w3c, parse_w3c, shift, to_utc
from app.store import updates as store
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# The request fields a change may set as they are, with their length limits.
_TEXT_FIELDS: tuple[
    tuple[Literal["status_notes", "agency_responsible", "service_notice"], int], ...
] = (
    ("status_notes", 4000),
    ("agency_responsible", 255),
    ("service_notice", 1000),
)

# A change by the key that filed a request, this soon after, may resolve it at first contact
# (the default of ``service_promise.first_contact_minutes``).
FIRST_CONTACT_WINDOW = timedelta(minutes=30)


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
    # Photos uploaded with the update and stored (app.domain.media.Uploaded.records): the
    # first one's url is the update's media_url, unless it names a media_url of its own.
    photos: list[dict[str, Any]] | None = None


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
    actor: KeyInfo | None = None,
    first_contact_window: timedelta = FIRST_CONTACT_WINDOW,
) -> dict[str, Any]:
    """Change a request and record the update (same transaction); the update's wire item.

    ``caller``: the API key of an app's update (None: staff); the policy decides whether it
    may change this request. ``actor``: the key that made a staff change (the admin API's;
    None on the CLI), recorded with the update like ``caller``.
    """
    app_id = caller.app_id if caller is not None else None
    by_key = caller or actor
    problems: list[str] = []
    core = detailed = None
    if change.status:
        try:
            core, detailed = parse_status(change.status)
        except InvalidParameter as exc:
            problems.extend(exc.descriptions)
    values: store.RequestChanges = {}
    for name, limit in _TEXT_FIELDS:
        text = _text(name, getattr(change, name), limit, problems)
        if getattr(change, name) is not None:
            values[name] = text
    description = _text("description", change.description, 4000, problems)
    media_url = _text("media_url", change.media_url, 2048, problems)
    if media_url is not None and not is_http_url(media_url):
        problems.append("media_url must be an absolute http or https URL.")
    if change.photos and media_url is None:
        # Without a media_url of its own, the update's is its first photo (an update has no
        # list of media URLs: a posted media_url stays, the photos are listed beside it).
        media_url = change.photos[0]["url"]
    code = _text("external_status_code", change.external_status_code, 255, problems)
    now = utcnow()
    when = now
    for field in ("expected_datetime", "updated_datetime"):
        raw = getattr(change, field)
        if raw:
            try:
                parsed = to_utc(parse_w3c(raw, jurisdiction.tz, allow_date_only=False))
            except ValueError:
                problems.append(f"{field} must be a W3C datetime with a time zone.")
                continue
            if field == "expected_datetime":
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
    row = await store.lock_request(conn, jurisdiction.pk, request_pk)
    if row is None:
        raise RequestNotFound(f"No service request with id {service_request_id!r}.")
    if caller is not None:
        policy.check_request_update(caller, jurisdiction.pk, row.app_id, row.sandbox)
    if core is not None:
        values["status"] = core
        values["detailed_status"] = detailed
        if core == "open" and row.status == "closed":
            values["first_contact_resolved"] = False
        elif row.requested_at is not None and resolved_on_update(
            closing=core == "closed" and row.status != "closed",
            filed_by_key=row.api_key_id,
            requested_at=row.requested_at,
            actor=by_key,
            at=when,
            window=first_contact_window,
        ):
            values["first_contact_resolved"] = True
    if "status_notes" not in values and description is not None:
        values["status_notes"] = description
    values["updated_at"] = now
    await store.change_request(conn, request_pk, values)
    final_core = core or row.status
    update_pk = await store.insert_update(
        conn,
        jurisdiction_pk=jurisdiction.pk,
        request_pk=request_pk,
        status=final_core,
        detailed_status=detailed,
        description=description,
        media_url=media_url,
        external_status_code=code,
        updated_at=when,
        app_id=app_id,
        external_id=external_id,
        sandbox=row.sandbox,
        created_at=now,
        api_key_id=by_key.id if by_key is not None else None,
        expected_at=values.get("expected_at"),
        photos=change.photos,
    )
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
        app_id=row.app_id,
        update_pk=update_pk,
        payload={"event": "service_request.updated", "update": item},
    )
    return item


async def app_update(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    *,
    caller: KeyInfo,
    params: dict[str, list[str]],
    first_contact_window: timedelta = FIRST_CONTACT_WINDOW,
    photos: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """POST servicerequestupdates: an app (e.g. FixMyStreet) reports an update of a request
    it may change (see ``app.domain.policy``); ``photos``: its stored uploads."""
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
    seen = await store.app_update_id(conn, app_id, external)
    if seen is not None:
        raise BadRequest(f"update_id {external!r} was already received (as update {seen}).")
    change = Change(
        status=one("status"),
        description=one("description") or "",
        media_url=one("media_url"),
        updated_datetime=one("updated_datetime"),
        external_status_code=one("external_status_code"),
        photos=photos,
    )
    return await apply_change(
        conn,
        jurisdiction,
        one("service_request_id") or "",
        change,
        caller=caller,
        external_id=external,
        first_contact_window=first_contact_window,
    )


# Kind of the updates feed's cursors (see app.domain.cursors): GET requests uses r and u.
FEED_CURSOR = "f"


@dataclass(slots=True)
class FeedQuery:
    """GET servicerequestupdates parameters as sent (strings; None when absent)."""

    start_date: str | None = None
    end_date: str | None = None
    # Every value of service_request_id, repeated or comma-separated.
    service_request_ids: Sequence[str] = ()
    page_size: str | None = None
    cursor: str | None = None


@dataclass(slots=True)
class FeedPage:
    """One page of the updates feed, and the cursor of the next one when there is more."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def _page_size(text: str | None, top: int, problems: list[str]) -> int | None:
    if text is None:
        return None
    text = text.strip()
    # isascii(): isdigit() alone also accepts digits such as "²" that int() refuses.
    if text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= top:
        return int(text)
    problems.append(f"page_size must be a whole number from 1 to {top}.")
    return None


async def list_updates(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    query: FeedQuery,
    *,
    window_days: int,
    max_results: int,
    page_size_max: int,
    viewer: KeyInfo | None = None,
) -> FeedPage:
    """GET servicerequestupdates: updates timed in [start_date, end_date], oldest first (ties
    by id), one page of ``page_size`` (default ``max_results``) after ``cursor``.

    Without dates the window is the last ``window_days`` days, unless ``service_request_id``
    names requests: then every update of theirs. A page that is not the last carries the
    cursor of the next one, so nothing is ever left out silently. A sandbox ``viewer`` sees
    only the updates of its app's sandbox requests; everyone else only public ones."""
    problems: list[str] = []
    bounds: dict[str, datetime] = {}
    for name, text in (("start_date", query.start_date), ("end_date", query.end_date)):
        if text is not None and text.strip():
            try:
                bounds[name] = to_utc(parse_w3c(text, jurisdiction.tz))
            except ValueError:
                problems.append(f"{name} must be a W3C datetime with a time zone.")
    size = _page_size(query.page_size, page_size_max, problems) or max_results
    after: tuple[datetime, int] | None = None
    if query.cursor is not None:
        try:
            _, stamp, last = cursors.decode(query.cursor.strip(), (FEED_CURSOR,))
            after = (stamp, last)
        except ValueError:
            problems.append("cursor is not a cursor given by this server (X-Next-Cursor).")
    ids = list(dict.fromkeys(split_list(query.service_request_ids)))
    if len(ids) > max_results:
        problems.append(f"service_request_id may list at most {max_results} values.")
    if problems:
        raise InvalidParameter(*problems)
    start, end = bounds.get("start_date"), bounds.get("end_date")
    if not ids or start is not None or end is not None:
        # Only a start: up to now, or an empty window at the start when it lies ahead.
        end = end or max(utcnow(), start or utcnow())
        if start is None and after is None:
            start = shift(end, -timedelta(days=window_days))
        if start is not None and end < start:
            raise InvalidParameter("end_date must not be before start_date.")
    # Our ids are integers: anything else names no request and is simply absent.
    request_pks = [int(i) for i in ids if i.isascii() and i.isdigit() and len(i) <= 18]
    if ids and not request_pks:
        return FeedPage([])
    sandbox = viewer is not None and viewer.sandbox
    rows = await store.feed(
        conn,
        jurisdiction.pk,
        start=start,
        end=end,
        # One more than a page: the next page's cursor only when there is a next page.
        limit=size + 1,
        sandbox=sandbox,
        sandbox_app_id=viewer.app_id if viewer is not None and sandbox else None,
        after=after,
        request_pks=request_pks or None,
    )
    page = FeedPage([_feed_item(r, jurisdiction.tz) for r in rows[:size]])
    if len(rows) > size:
        last_row = rows[size - 1]
        page.next_cursor = cursors.encode(FEED_CURSOR, last_row.updated_at, last_row.id)
    return page


def _feed_item(row: store.StoredUpdate, tz: Any) -> dict[str, Any]:
    """An item of GET servicerequestupdates; ``photos`` (every photo uploaded with the update,
    the first being its media_url) only when it has some."""
    item: dict[str, Any] = {
        "update_id": str(row.id),
        "service_request_id": str(row.service_request_id),
        "status": row.detailed_status or row.status,
        "updated_datetime": format_w3c(row.updated_at, tz),
        "description": row.description,
        "media_url": row.media_url,
        "external_status_code": row.external_status_code,
    }
    if row.photos:
        item["photos"] = public_photos(row.photos)
    return item


async def history(
    conn: AsyncConnection, jurisdiction: JurisdictionInfo, service_request_id: int
) -> list[dict[str, Any]]:
    """Every update of one request, oldest first (admin view)."""
    rows = await store.history(conn, jurisdiction.pk, service_request_id)
    return [
        {
            "update_id": str(r.id),
            "status": r.detailed_status or r.status,
            "updated_datetime": format_w3c(r.updated_at, jurisdiction.tz),
            "description": r.description,
            "external_status_code": r.external_status_code,
            "expected_datetime": (
                format_w3c(r.expected_at, jurisdiction.tz) if r.expected_at is not None else None
            ),
            "by": "staff" if r.app_id is None else f"app {r.app_id}",
            "key_id": r.api_key_id,
        }
        for r in rows
    ]
