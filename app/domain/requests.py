"""Service requests: validate submissions, store them through the store, search and read
them, and build their wire items.

Reporter contact fields are read only for a viewer allowed to see them (``private_fields_app``).
No SQL here: the store (``app.store``) runs it, on either backend.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.domain import cursors
from app.domain.api_keys import KeyInfo
from app.domain.catalog import Catalog, ServiceInfo
from app.domain.channels import extension_fields
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.policy import private_fields_app
from app.domain.service_promise import intake_columns
from app.errors import InvalidParameter, RequestNotFound
from app.geo.points import box_around, check_lat_long, distance_m
from app.geo.wards import WardIndex
from app.georeport.datetimes import format_w3c, parse_w3c, shift
from app.georeport.models import STATUSES
from app.georeport.params import one
from app.models.requests import (
    BoundingBox,
    Circle,
    NewRequest,
    RequestRead,
    RequestRow,
    TextQuery,
    WardRule,
)
from app.models.requests import RequestFilters as RequestFilters  # its home; re-exported
from app.models.requests import Submission as Submission  # its home; re-exported
from app.settings import RequestsSettings
from app.store import requests as store
from app.store.details import RequestDetails, request_details
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.store.base import Store, WardIndexes

ATTRIBUTE_KEY = re.compile(r"^attribute\[(?P<code>[^\]]*)\](?P<multi>\[\])?$")
# Control characters other than tab, line feed and carriage return are refused in any text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SINGLE_LINE_CONTROL = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")
_WHITESPACE = re.compile(r"\s")

# What the extensions show of an uploaded photo (app.georeport.models.Photo).
PHOTO_FIELDS = ("url", "thumbnail_url", "content_type", "width", "height")


def public_photos(photos: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """What the API shows of stored photos (a request's or an update's), in order."""
    return [{k: photo.get(k) for k in PHOTO_FIELDS} for photo in photos or ()]


def note_media_urls(media_url: str | None, photos: Sequence[dict[str, Any]]) -> list[str]:
    """Every media URL of an update: its uploaded photos' first, then its own media_url when
    it is not one of them."""
    urls = [str(photo["url"]) for photo in photos if photo.get("url")]
    if media_url and media_url not in urls:
        urls.append(media_url)
    return urls


# Optional text fields of POST requests and their maximum lengths.
TEXT_FIELDS: dict[str, int] = {
    "address_string": 1000,
    "address_id": 255,
    "email": 320,
    "device_id": 255,
    "account_id": 255,
    "first_name": 255,
    "last_name": 255,
    "phone": 64,
}


# ---------------------------------------------------------------------------------------
# POST requests: validation


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host (media_url of requests and updates)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[x": a bracket that opens no IPv6 address
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def is_email(text: str) -> bool:
    """``local@domain.tld``: one ``@``, no white space, a dot inside the domain.

    Linear in the length (a backtracking pattern for the same rule is quadratic on hostile
    input); callers check the length first.
    """
    local, at, domain = text.partition("@")
    return (
        bool(at and local)
        and "@" not in domain
        and "." in domain[1:-1]
        and _WHITESPACE.search(text) is None
    )


def _check_text(name: str, value: str, limit: int, problems: list[str], *, multiline: bool) -> str:
    if len(value) > limit:
        problems.append(f"{name} is too long: at most {limit} characters, got {len(value)}.")
        return value
    pattern = _CONTROL if multiline else _SINGLE_LINE_CONTROL
    if pattern.search(value):
        problems.append(f"{name} contains control characters.")
    return value


def _parse_number(name: str, text: str, problems: list[str]) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        problems.append(f"{name} must be a decimal number, got {text[:40]!r}.")
        return None
    if not math.isfinite(value):
        problems.append(f"{name} must be a finite decimal number.")
        return None
    return value


def _one(items: dict[str, list[str]], name: str, problems: list[str]) -> str | None:
    """The value of a single-valued optional parameter (``app.georeport.params``)."""
    return one(name, items.get(name, ()), problems)


def validate_submission(
    items: Sequence[tuple[str, str]],
    service: ServiceInfo,
    limits: RequestsSettings,
    *,
    staff: bool = False,
) -> Submission:
    """Check every field of a submission against the spec and the service definition.

    All problems are reported at once in one 400 error document. ``staff``: the key may file
    a staff intake, so ``status`` and ``expected_datetime`` are read (otherwise they are
    server-owned fields a client may echo, ignored as before); ``channel`` is always read
    (a key without the staff scope naming one is refused at intake).
    """
    problems: list[str] = []
    grouped: dict[str, list[str]] = {}
    raw_attributes: dict[str, list[tuple[bool, str]]] = {}
    for key, value in items:
        # fullmatch: with match, "$" would also accept a key ending in a line feed.
        match = ATTRIBUTE_KEY.fullmatch(key)
        if match:
            code = match["code"]
            if code.strip() == "":
                problems.append(f"{key} has an empty attribute code.")
                continue
            raw_attributes.setdefault(code, []).append((match["multi"] is not None, value))
        else:
            grouped.setdefault(key, []).append(value)

    sub = Submission()
    lat_text = _one(grouped, "lat", problems)
    lon_text = _one(grouped, "long", problems)
    if (lat_text is None) != (lon_text is None):
        problems.append("lat and long must be given together.")
    elif lat_text is not None and lon_text is not None:
        lat = _parse_number("lat", lat_text, problems)
        lon = _parse_number("long", lon_text, problems)
        if lat is not None and lon is not None:
            range_problems = check_lat_long(lat, lon)
            problems.extend(range_problems)
            if not range_problems:
                sub.lat, sub.lon = lat, lon

    for name, limit in TEXT_FIELDS.items():
        sent = _one(grouped, name, problems)
        if sent is None:
            continue
        if len(sent) > limit:  # the limit applies to the value as sent; nothing else is checked
            problems.append(f"{name} is too long: at most {limit} characters, got {len(sent)}.")
            continue
        text = _check_text(name, sent.strip(), limit, problems, multiline=False)
        setattr(sub, "address" if name == "address_string" else name, text)
        if name == "email" and not is_email(text):
            problems.append("email is not a valid e-mail address.")

    description = _one(grouped, "description", problems)
    if description is not None:
        sub.description = _check_text(
            "description", description, limits.description_max_length, problems, multiline=True
        )

    media = [m.strip() for m in grouped.get("media_url", []) if m.strip()]
    if len(media) > limits.max_media_urls:
        problems.append(f"At most {limits.max_media_urls} media_url values are accepted.")
    for url in media:
        _check_text("media_url", url, 2048, problems, multiline=False)
        if not is_http_url(url):
            problems.append("media_url must be an absolute http or https URL.")
    sub.media_urls = list(dict.fromkeys(media))

    if (
        sub.lat is None
        and sub.address is None
        and sub.address_id is None
        and not any(p.startswith(("lat", "long")) for p in problems)
    ):
        problems.append("A location is required: lat and long, or address_string, or address_id.")

    sub.attributes = _validate_attributes(raw_attributes, service, limits, problems)
    _staff_intake_fields(grouped, sub, problems, staff=staff)
    if problems:
        raise InvalidParameter(*problems)
    return sub


def _staff_intake_fields(
    grouped: dict[str, list[str]], sub: Submission, problems: list[str], *, staff: bool
) -> None:
    """The staff intake fields (``channel``; for a staff key ``status`` and
    ``expected_datetime`` too), checked for form only (400); who may send a channel is
    decided at intake (``intake_columns``: 403)."""
    from app.domain.channels import parse_channel
    from app.domain.statuses import parse_status

    channel = _one(grouped, "channel", problems)
    if channel is not None:
        try:
            sub.channel = parse_channel(channel).value
        except InvalidParameter as exc:
            problems.extend(exc.descriptions)
    if not staff:
        return
    status = _one(grouped, "status", problems)
    if status is not None and status.strip():
        try:
            sub.status = parse_status(status[:64])[1]
        except InvalidParameter as exc:
            problems.extend(exc.descriptions)
    expected = _one(grouped, "expected_datetime", problems)
    if expected is not None and expected.strip():
        try:
            parse_w3c(expected[:64], allow_date_only=False)
            sub.expected_datetime = expected.strip()
        except ValueError:
            problems.append(
                "expected_datetime must be a W3C datetime with a time zone, "
                "e.g. 2024-03-05T14:07:00-05:00."
            )


def _validate_attributes(
    raw: dict[str, list[tuple[bool, str]]],
    service: ServiceInfo,
    limits: RequestsSettings,
    problems: list[str],
) -> dict[str, Any]:
    if len(raw) > limits.max_attributes:
        problems.append(f"At most {limits.max_attributes} attributes are accepted.")
        return {}
    defined = {a.code: a for a in service.attributes}
    values: dict[str, Any] = {}
    for code, entries in raw.items():
        name = f"attribute[{code}]"
        texts = [v for _, v in entries]
        for text in texts:
            _check_text(name, text, limits.attribute_value_max_length, problems, multiline=True)
        attribute = defined.get(code)
        if len(code) > 255:
            problems.append("An attribute code is longer than 255 characters.")
            continue
        if _SINGLE_LINE_CONTROL.search(code):
            problems.append(f"{name[:80]!r} has control characters in its code.")
            continue
        non_empty = [t for t in texts if t.strip() != ""]
        if attribute is None:
            # Unknown codes are kept as sent (clients add their own, e.g. fixmystreet_id).
            if non_empty:
                values[code] = non_empty if len(non_empty) > 1 else non_empty[0]
            continue
        if not attribute.variable or not non_empty:
            continue
        if attribute.datatype == "multivaluelist":
            chosen = list(dict.fromkeys(t.strip() for t in non_empty))
            unknown = [t for t in chosen if t not in attribute.keys]
            if unknown:
                problems.append(
                    f"{name}: {', '.join(repr(u) for u in unknown[:5])} not among the allowed "
                    f"values ({', '.join(sorted(attribute.keys))})."
                )
            values[code] = chosen
            continue
        if len(non_empty) > 1 or any(multi for multi, _ in entries):
            problems.append(f"{name} takes a single value but was given {len(non_empty)}.")
            continue
        text = non_empty[0].strip()
        if attribute.datatype == "singlevaluelist":
            if text not in attribute.keys:
                problems.append(
                    f"{name}: {text[:40]!r} is not among the allowed values "
                    f"({', '.join(sorted(attribute.keys))})."
                )
        elif attribute.datatype == "number":
            if _parse_number(name, text, problems) is None:
                continue
        elif attribute.datatype == "datetime":
            try:
                parse_w3c(text, allow_date_only=False)
            except ValueError:
                problems.append(
                    f"{name} must be an ISO 8601 datetime with a time zone, "
                    "e.g. 2024-03-05T14:07:00-05:00."
                )
                continue
        elif attribute.datatype == "string" and ("\n" in text or "\r" in text):
            problems.append(f"{name} must be a single line of text.")
            continue
        values[code] = text if attribute.datatype != "text" else non_empty[0]
    for attribute in service.attributes:
        missing = attribute.variable and attribute.required and attribute.code not in values
        reported = any(p.startswith(f"attribute[{attribute.code}]") for p in problems)
        if missing and not reported:
            problems.append(f"attribute[{attribute.code}] is required for service {service.code}.")
    return values


# ---------------------------------------------------------------------------------------
# POST requests: storage


def ward_rule(
    jurisdiction: JurisdictionInfo, sub: Submission, tolerance_m: float
) -> WardRule | None:
    """How a submission gets its ward: the jurisdiction's current ward set, if it has one and
    the submission is located."""
    if sub.lat is None or sub.lon is None or jurisdiction.ward_set_id is None:
        return None
    return WardRule(jurisdiction.ward_set_id, tolerance_m, not jurisdiction.accepts_outside)


def new_request(
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    sub: Submission,
    key: KeyInfo | None,
    now: datetime,
    tolerance_m: float,
) -> NewRequest:
    """A submission as the store stores it, with its service-promise facts: the
    ``expected_datetime`` its service's resolve target gives (or the one a staff intake
    names), and its intake channel (the key's, or the one a staff intake names); a staff
    intake may file it closed (resolved at first contact)."""
    intake = intake_columns(
        jurisdiction,
        service,
        key,
        now,
        channel=sub.channel,
        status=sub.status,
        expected=sub.expected_datetime,
    )
    return NewRequest(
        jurisdiction_pk=jurisdiction.pk,
        service_pk=service.pk,
        at=now,
        submission=sub,
        agency_responsible=service.agency_responsible,
        service_notice=service.service_notice,
        api_key_id=key.id if key else None,
        app_id=key.app_id if key else None,
        sandbox=key.sandbox if key else False,
        ward=ward_rule(jurisdiction, sub, tolerance_m),
        expected_at=intake["expected_at"],
        channel=intake["channel"],
        first_contact_resolved=intake["first_contact_resolved"],
        status=intake["status"],
        detailed_status=intake["detailed_status"],
    )


async def check_location(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    sub: Submission,
    *,
    ward_index: WardIndex | None = None,
    wards: WardIndexes | None = None,
    tolerance_m: float,
) -> None:
    """400 now when a located submission lies in no ward (for queued batch submissions).

    ``ward_index`` or ``wards``: in-process ward indexes, for a store that uses them."""
    rule = ward_rule(jurisdiction, sub, tolerance_m)
    if rule is None or not rule.required:
        return
    assert sub.lat is not None  # noqa: S101 - a ward rule is for a located submission
    assert sub.lon is not None  # noqa: S101 - a ward rule is for a located submission
    if await store.ward_of(conn, rule, sub.lat, sub.lon, ward_index, wards) is None:
        raise outside_error(jurisdiction)


class LocationOutside(InvalidParameter):
    """400: the location is in no ward of the jurisdiction."""


def outside_error(jurisdiction: JurisdictionInfo) -> LocationOutside:
    """400: a location in none of the jurisdiction's wards."""
    return LocationOutside(
        f"The location lat/long is outside {jurisdiction.name} ({jurisdiction.code}): it is in "
        "none of its wards. Check the coordinates (decimal degrees, WGS84)."
    )


async def create_request(
    conn: AsyncConnection,
    *,
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    sub: Submission,
    key: KeyInfo | None,
    ward_index: WardIndex | None = None,
    tolerance_m: float = 0.0,
    token: str | None = None,
    wards: WardIndexes | None = None,
) -> dict[str, Any]:
    """Store a submission on ``conn``; the POST response item for the service's type.

    ``token``: the existing token of a queued batch submission, pointed at the new request.
    ``ward_index`` (or ``wards``, the indexes by set): the in-process ward index, used by a
    store that looks wards up in process (the store knows its backend).

    A located request gets the ward of the jurisdiction's current ward set. A location in no
    ward is refused (400, nothing stored) unless the jurisdiction accepts outside locations;
    address-only requests have no ward.
    """
    new = new_request(jurisdiction, service, sub, key, utcnow(), tolerance_m)
    request_pk = await store.insert_request(conn, new, ward_index, wards)
    if request_pk is None:
        raise outside_error(jurisdiction)
    if sub.staff_intake:
        await _record_intake(conn, new, request_pk, key)
    item: dict[str, Any] = {}
    if token is not None:
        # A queued submission (a batch service, or a sandbox one for a partner city): its
        # token now gives the request's id.
        await store.point_token(conn, token, request_pk)
        item["token"] = token
    elif service.type == "realtime":
        item["service_request_id"] = str(request_pk)
    elif service.type == "batch":
        token = secrets.token_urlsafe(18)
        await store.insert_token(conn, token, jurisdiction.pk, request_pk, new.at)
        item["token"] = token
    item["service_notice"] = service.service_notice
    item["account_id"] = sub.account_id
    return item


async def _record_intake(
    conn: AsyncConnection, new: NewRequest, request_pk: int, key: KeyInfo | None
) -> None:
    """A staff intake's status and expected datetime, as the first entry of the request's
    history (so an override of the computed expected_datetime stays on record)."""
    from app.store import updates as updates_store

    override = new.submission.expected_datetime is not None
    await updates_store.insert_update(
        conn,
        jurisdiction_pk=new.jurisdiction_pk,
        request_pk=request_pk,
        status=new.status,
        detailed_status=new.detailed_status,
        description="Filed by staff intake"
        + (" (expected_datetime set by staff)" if override else "")
        + ".",
        media_url=None,
        external_status_code=None,
        updated_at=new.at,
        app_id=new.app_id,
        external_id=None,
        sandbox=new.sandbox,
        created_at=new.at,
        api_key_id=key.id if key is not None else None,
        expected_at=new.expected_at if override else None,
    )


# ---------------------------------------------------------------------------------------
# GET requests


@dataclass(slots=True)
class PageInfo:
    """Paging facts of a list response (for headers)."""

    next_cursor: str | None = None
    page_size: int = 0


def encode_cursor(kind: str, stamp: datetime, request_pk: int) -> str:
    """An opaque position for keyset paging (``app.domain.cursors``)."""
    return cursors.encode(kind, stamp, request_pk)


def decode_cursor(text: str) -> tuple[str, datetime, int]:
    """The position of a GET requests cursor, kinds ``r`` and ``u`` (ValueError when it is
    not one of ours; see ``app.domain.cursors``)."""
    return cursors.decode(text, ("r", "u"))


_WORD = re.compile(r"[^\W_]+")


def search_words(text: str) -> list[str]:
    """The words of a text search (runs of letters and digits, lowercased, each once): what
    both backends' full-text indexes split text into for simple words."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))


def text_query(words: Sequence[str], catalog: Catalog) -> TextQuery:
    """q= for the store: its words, and the services whose name holds every one of them."""
    wanted = set(words)
    services = tuple(
        service.pk for service in catalog.services if wanted <= set(search_words(service.name))
    )
    return TextQuery(tuple(words), services)


def split_list(values: Sequence[str]) -> list[str]:
    """Comma lists and repeated parameters merged; items trimmed, empties dropped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def with_default_window(filters: RequestFilters, limits: RequestsSettings) -> RequestFilters:
    """Bound a search without dates to a window (spec digest §12 #4, #5): the last
    ``default_window_days`` days; a single bound gets the window on its other side."""
    window = timedelta(days=limits.default_window_days)
    if filters.by_update or filters.updated_after or filters.updated_before:
        # Sync clients: no default window on requested_datetime (spec digest §10.2).
        return filters
    # shift(): a bound near year 1 or 9999 must not overflow the window arithmetic.
    if filters.start is None and filters.end is None:
        filters.end = utcnow()
        filters.start = filters.end - window
    elif filters.end is None and filters.start is not None:
        filters.end = min(shift(filters.start, window), utcnow())
        filters.end = max(filters.end, filters.start)
    elif filters.start is None and filters.end is not None:
        filters.start = shift(filters.end, -window)
    return filters


@dataclass(frozen=True, slots=True)
class _Wire:
    """How rows of one read become wire items: the zone, extensions, private fields.

    ``rendered``: the store gave the datetimes as W3C text in the zone (else datetimes,
    ``speed.sql_timestamps`` off). ``private_app``: the app whose requests' reporter fields
    the viewer sees (``reporter``).
    """

    tz: Any
    rendered: bool
    extensions: bool
    private_app: int | None

    def item(self, row: RequestRow) -> dict[str, Any]:
        """The wire item of a row. Optional text stored as "" (e.g. by an import) is unknown:
        null, never ""."""
        requested, updated, expected = row.requested_at, row.updated_at, row.expected_at
        if not self.rendered:
            tz = self.tz
            requested = format_w3c(requested, tz)  # type: ignore[arg-type]
            updated = format_w3c(updated, tz)  # type: ignore[arg-type]
            if expected is not None:
                expected = format_w3c(expected, tz)  # type: ignore[arg-type]
        item: dict[str, Any] = {
            "service_request_id": str(row.id),
            "status": row.status,
            "status_notes": row.status_notes or None,
            "service_name": row.service_name,
            "service_code": row.service_code,
            "description": row.description or None,
            "agency_responsible": row.agency_responsible or None,
            "service_notice": row.service_notice or None,
            "requested_datetime": requested,
            "updated_datetime": updated,
            "expected_datetime": expected,
            "address": row.address or None,
            "address_id": row.address_id or None,
            "zipcode": row.zipcode or None,
            "lat": row.lat,
            "long": row.lon,
            "media_url": row.media_url or None,
        }
        if self.extensions:
            item["extended_attributes"] = {
                "ward": row.ward_code,
                "ward_name": row.ward_name,
                **extension_fields(row.channel, bool(row.first_contact_resolved)),
            }
        if self.private_app is not None and row.app_id == self.private_app:
            item["reporter"] = {
                "email": row.email,
                "phone": row.phone,
                "first_name": row.first_name,
                "last_name": row.last_name,
                "device_id": row.device_id,
                "account_id": row.account_id,
            }
        return item


def _reader(
    jurisdiction: JurisdictionInfo,
    extensions: bool,
    viewer: KeyInfo | None,
    sql_w3c: bool,
) -> tuple[_Wire, dict[str, Any]]:
    """The wire of a read and the part of a ``RequestRead`` that says who sees what.

    ``viewer`` is the API key of the caller, if any. Sandbox keys see only their app's sandbox
    requests; everyone else sees real requests only. A key with the ``read_private`` scope
    sees the reporter's contact fields of requests its own app submitted.
    """
    private_app = private_fields_app(viewer, jurisdiction.pk)
    sandbox = viewer is not None and viewer.sandbox
    read = {
        "jurisdiction_pk": jurisdiction.pk,
        "zone": jurisdiction.tz.key if sql_w3c else None,
        "extensions": extensions,
        "private_app": private_app,
        "sandbox": sandbox,
        "viewer_app": viewer.app_id if viewer is not None and sandbox else None,
    }
    return _Wire(jurisdiction.tz, sql_w3c, extensions, private_app), read


def read_conditions(
    jurisdiction: JurisdictionInfo, catalog: Catalog, filters: RequestFilters
) -> dict[str, Any] | None:
    """The filters of GET requests as the fields of a ``RequestRead`` (None: nothing can
    match, e.g. only unknown service codes). Shared by GET requests and the exports."""
    where: dict[str, Any] = {}
    if filters.ids is not None:
        if not filters.ids:
            return None
        where["ids"] = tuple(filters.ids)
        return where
    if filters.service_codes is not None:
        pks = [catalog.by_code[c].pk for c in filters.service_codes if c in catalog.by_code]
        if not pks:
            return None
        where["service_pks"] = tuple(pks)
    if filters.wards is not None:
        if jurisdiction.ward_set_id is None:
            return None
        where["ward_set"], where["ward_codes"] = jurisdiction.ward_set_id, tuple(filters.wards)
    if filters.statuses is not None and len(filters.statuses) < len(STATUSES):
        where["statuses"] = tuple(filters.statuses)
    if filters.bbox is not None:
        where["bbox"] = filters.bbox
    if filters.near is not None:
        near = filters.near
        where["near"] = near
        where["near_box"] = BoundingBox(*box_around(near.lat, near.lon, near.radius_m))
    if filters.words is not None:
        where["text"] = text_query(filters.words, catalog)
    where.update(
        start=filters.start,
        end=filters.end,
        updated_after=filters.updated_after,
        updated_before=filters.updated_before,
    )
    return where


async def list_requests(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    limits: RequestsSettings,
    viewer: KeyInfo | None = None,
    page: PageInfo | None = None,
    *,
    sql_w3c: bool = True,
) -> list[dict[str, Any]]:
    """GET requests: newest first, at most ``max_results`` (or ``page_size``) a page.

    ``page`` (when given) receives the cursor of the next page, if the page is full.
    ``sql_w3c``: the store renders the datetimes (else ``format_w3c``; ``speed.sql_timestamps``).
    """
    page = page if page is not None else PageInfo()
    wire, read = _reader(jurisdiction, filters.extensions, viewer, sql_w3c)
    size = filters.page_size or limits.max_results
    page.next_cursor = None
    page.page_size = size
    where = read_conditions(jurisdiction, catalog, filters)
    if where is None:
        return []
    kind = "u" if filters.by_update and filters.ids is None else "r"
    after = None
    if filters.cursor is not None:
        _, stamp, last = filters.cursor
        after = (stamp, last)
    offset = (filters.page - 1) * size if filters.cursor is None and filters.page > 1 else 0
    result = await source.read_requests(
        RequestRead(**read, by_update=kind == "u", after=after, limit=size, offset=offset, **where)
    )
    if result.last is not None:
        page.next_cursor = encode_cursor(kind, *result.last)
    items = [wire.item(row) for row in result.rows]
    if filters.extensions and items:
        await add_details(source, items, jurisdiction, catalog, viewer, limits.extensions_max_notes)
    return items


async def get_request(
    source: Store,
    jurisdiction: JurisdictionInfo,
    service_request_id: str,
    extensions: bool = False,
    viewer: KeyInfo | None = None,
    *,
    sql_w3c: bool = True,
    catalog: Catalog | None = None,
    max_notes: int = 100,
) -> dict[str, Any]:
    """GET requests/{id}: one request of this jurisdiction, or 404 (``sql_w3c``: as in
    ``list_requests``; ``catalog``: with extensions, the details of ``add_details``)."""
    if (
        not (service_request_id.isascii() and service_request_id.isdigit())
        or len(service_request_id) > 18
    ):
        raise RequestNotFound(f"No service request with id {service_request_id[:64]!r}.")
    wire, read = _reader(jurisdiction, extensions, viewer, sql_w3c)
    result = await source.read_requests(RequestRead(**read, request_id=int(service_request_id)))
    if not result.rows:
        raise RequestNotFound(f"No service request with id {service_request_id!r}.")
    item = wire.item(result.rows[0])
    if extensions and catalog is not None:
        await add_details(source, [item], jurisdiction, catalog, viewer, max_notes)
    return item


async def nearby_requests(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    service_code: str,
    lat: float,
    lon: float,
    limits: RequestsSettings,
    viewer: KeyInfo | None = None,
    extensions: bool = False,
    *,
    sql_w3c: bool = True,
) -> list[dict[str, Any]]:
    """GET requests/nearby: open requests of the service within ``nearby_radius_m`` of the
    point, requested in the last ``nearby_max_age_days``, nearest first, at most
    ``nearby_max_results``; each with its ``distance_m``. An unknown service has none."""
    service = catalog.by_code.get(service_code)
    if service is None:
        return []
    wire, read = _reader(jurisdiction, extensions, viewer, sql_w3c)
    now = utcnow()
    circle = Circle(lat, lon, limits.nearby_radius_m)
    ranked = await store.nearest(
        source.engine,
        RequestRead(
            **read,
            service_pks=(service.pk,),
            statuses=("open",),
            start=now - timedelta(days=limits.nearby_max_age_days),
            end=now,
            near=circle,
            near_box=BoundingBox(*box_around(lat, lon, circle.radius_m)),
            limit=limits.nearby_max_results,
        ),
    )
    if not ranked:
        return []
    # The rows themselves through the read every list uses (the same fields, privacy rules).
    page = await source.read_requests(
        RequestRead(**read, ids=tuple(pk for pk, _ in ranked), limit=len(ranked))
    )
    rows = {row.id: row for row in page.rows}
    items = []
    for pk, haversine in ranked:
        row = rows.get(pk)
        if row is not None:  # else removed between the two reads
            item = wire.item(row)
            item["distance_m"] = round(distance_m(haversine), 1)
            items.append(item)
    if extensions and items:
        await add_details(source, items, jurisdiction, catalog, viewer, limits.extensions_max_notes)
    return items


def public_attributes(values: dict[str, Any], service: ServiceInfo | None) -> list[dict[str, Any]]:
    """The public values of a request's submitted attributes: those of the variable attributes
    its service defines (in their order), one entry a value. Values under any other code
    (a client's own fields, attributes no longer defined) are never shown: nothing says they
    are meant for the public."""
    if service is None:
        return []
    shown = []
    for attribute in service.attributes:
        if not attribute.variable or attribute.code not in values:
            continue
        value = values[attribute.code]
        names = dict(attribute.values or ())
        for entry in value if isinstance(value, list) else [value]:
            text = str(entry)
            shown.append(
                {
                    "code": attribute.code,
                    "name": attribute.description,
                    "value": text,
                    "value_name": names.get(text),
                }
            )
    return shown


def detail_fields(
    details: RequestDetails | None, service: ServiceInfo | None, tz: Any
) -> dict[str, Any]:
    """The detail fields of a request's ``extended_attributes`` (``extensions=true``)."""
    if details is None:
        return {
            "detailed_status": None,
            "media_urls": [],
            "photos": [],
            "attributes": [],
            "notes": [],
        }
    return {
        "detailed_status": details.detailed_status,
        "media_urls": details.media_urls,
        "photos": public_photos(details.photos),
        "attributes": public_attributes(details.attributes, service),
        "notes": [
            {
                "update_id": str(note.update_id),
                "datetime": format_w3c(note.updated_at, tz),
                "status": note.status,
                "detailed_status": note.detailed_status,
                "description": note.description or None,
                "media_url": note.media_url or None,
                "media_urls": note_media_urls(note.media_url, note.photos),
                "photos": public_photos(note.photos),
            }
            for note in details.notes
        ],
    }


async def add_details(
    source: Store,
    items: list[dict[str, Any]],
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    viewer: KeyInfo | None,
    max_notes: int,
) -> None:
    """Add each item's details to its ``extended_attributes``: its detailed status, media
    URLs, public attribute values and update history (the newest ``max_notes`` updates, as
    public as the updates feed; a sandbox viewer's sandbox updates)."""
    found = await request_details(
        source.engine,
        [int(item["service_request_id"]) for item in items],
        sandbox=viewer is not None and viewer.sandbox,
        max_notes=max_notes,
    )
    for item in items:
        details = found.get(int(item["service_request_id"]))
        service = catalog.by_code.get(item["service_code"])
        item["extended_attributes"].update(detail_fields(details, service, jurisdiction.tz))


def public_wire(jurisdiction: JurisdictionInfo) -> tuple[_Wire, dict[str, Any]]:
    """The wire and the ``RequestRead`` fields of a read of public fields with extensions
    (the ward), real requests only (subscriptions' ``service_request.created`` events)."""
    return _reader(jurisdiction, True, None, True)


def export_read(
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    viewer: KeyInfo | None = None,
    *,
    sql_w3c: bool = True,
) -> tuple[_Wire, RequestRead] | None:
    """The wire and the first read of an export (None: nothing can match): GET requests'
    ``filters``, public fields only (never reporter fields; a sandbox ``viewer`` gets its
    app's sandbox requests, everyone else real ones only), newest requested first."""
    where = read_conditions(jurisdiction, catalog, filters)
    if where is None:
        return None
    wire, read = _reader(jurisdiction, filters.extensions, viewer, sql_w3c)
    read["private_app"] = None
    wire = _Wire(wire.tz, wire.rendered, wire.extensions, None)
    return wire, RequestRead(**read, by_update=False, **where)


async def stream_requests(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    *,
    batch_size: int,
    sql_w3c: bool = True,
    viewer: KeyInfo | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every request GET requests' ``filters`` match, in batches of at most ``batch_size``
    wire items (``export_read``): the exports.

    No result cap and constant memory: each batch is one keyset read (newest requested
    first, then by id) that starts after the last row of the previous one, on a connection
    taken for that read only, so a long export never holds a connection or a reader between
    batches. The order is on ``requested_datetime``, which never changes, so a request
    updated while the export runs is neither skipped nor sent twice."""
    plan = export_read(jurisdiction, catalog, filters, viewer, sql_w3c=sql_w3c)
    if plan is None:
        return
    wire, read = plan
    after: tuple[datetime, int] | None = None
    while True:
        result = await source.read_requests(replace(read, after=after, limit=batch_size))
        if result.rows:
            yield [wire.item(row) for row in result.rows]
        if result.last is None:
            return
        after = result.last
