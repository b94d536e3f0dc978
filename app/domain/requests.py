"""Service requests: validate and store submissions, search and read them.

Read paths select columns with SQLAlchemy Core and build wire dicts directly (no ORM objects);
reporter contact fields are never selected by them.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.api_keys import KeyInfo
from app.domain.catalog import Catalog, ServiceInfo
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.policy import private_fields_app
from app.errors import InvalidParameter, RequestNotFound
from app.geo.points import check_lat_long, point_expression
from app.geo.wards import WardIndex
from app.georeport.datetimes import format_w3c, parse_w3c, shift
from app.georeport.models import STATUSES
from app.georeport.params import one
from app.settings import RequestsSettings
from app.store.engine import Direct, fetch_all
from app.store.tables import Area, RequestToken, ServiceRequest, ServiceType
from app.store.tables.base import utcnow
from app.store.ward_sql import ward_cte, ward_id_expression

AREA = Area.__table__
REQUEST = ServiceRequest.__table__
SERVICE = ServiceType.__table__
TOKEN = RequestToken.__table__

ATTRIBUTE_KEY = re.compile(r"^attribute\[(?P<code>[^\]]*)\](?P<multi>\[\])?$")
# Control characters other than tab, line feed and carriage return are refused in any text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SINGLE_LINE_CONTROL = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")
_WHITESPACE = re.compile(r"\s")

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


@dataclass(slots=True)
class Submission:
    """A validated POST requests submission."""

    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_urls: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


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
) -> Submission:
    """Check every field of a submission against the spec and the service definition.

    All problems are reported at once in one 400 error document.
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
    if problems:
        raise InvalidParameter(*problems)
    return sub


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


async def check_location(
    conn: AsyncConnection,
    jurisdiction: JurisdictionInfo,
    sub: Submission,
    *,
    postgis: bool,
    ward_index: WardIndex | None,
    tolerance_m: float,
) -> None:
    """400 now when a located submission lies in no ward (for queued batch submissions)."""
    if sub.lat is None or sub.lon is None or jurisdiction.ward_set_id is None:
        return
    if jurisdiction.accepts_outside:
        return
    if postgis:
        ward = (
            await conn.execute(
                select(
                    ward_id_expression(
                        jurisdiction.ward_set_id,
                        point_expression(sub.lat, sub.lon),
                        sub.lat,
                        tolerance_m,
                    )
                )
            )
        ).scalar()
    else:
        hit = ward_index.lookup(sub.lat, sub.lon, tolerance_m) if ward_index else None
        ward = hit.area_id if hit else None
    if ward is None:
        raise outside_error(jurisdiction)


class LocationOutside(InvalidParameter):
    """400: the location is in no ward of the jurisdiction."""


def outside_error(jurisdiction: JurisdictionInfo) -> LocationOutside:
    """400: a location in none of the jurisdiction's wards."""
    return LocationOutside(
        f"The location lat/long is outside {jurisdiction.name} ({jurisdiction.code}): it is in "
        "none of its wards. Check the coordinates (decimal degrees, WGS84)."
    )


def request_row(
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    sub: Submission,
    key: KeyInfo | None,
    now: datetime,
) -> dict[str, Any]:
    """The column values of a new request (location and ward are added by the caller)."""
    return {
        "jurisdiction_id": jurisdiction.pk,
        "service_type_id": service.pk,
        "status": "open",
        "description": sub.description,
        "agency_responsible": service.agency_responsible,
        "service_notice": service.service_notice,
        "requested_at": now,
        "updated_at": now,
        "created_at": now,
        "address": sub.address,
        "address_id": sub.address_id,
        "lat": sub.lat,
        "lon": sub.lon,
        "media_url": sub.media_urls[0] if sub.media_urls else None,
        "media_urls": sub.media_urls or None,
        "attributes": sub.attributes or None,
        "email": sub.email,
        "device_id": sub.device_id,
        "account_id": sub.account_id,
        "first_name": sub.first_name,
        "last_name": sub.last_name,
        "phone": sub.phone,
        "api_key_id": key.id if key else None,
        "app_id": key.app_id if key else None,
        "sandbox": key.sandbox if key else False,
    }


async def create_request(
    conn: AsyncConnection,
    *,
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    sub: Submission,
    key: KeyInfo | None,
    postgis: bool,
    ward_index: WardIndex | None = None,
    tolerance_m: float = 0.0,
    token: str | None = None,
) -> dict[str, Any]:
    """Store a submission; the POST response item for the service's type.

    ``token``: the existing token of a queued batch submission, pointed at the new request.

    A located request gets the ward of the jurisdiction's current ward set: on PostGIS inside
    the INSERT itself (no extra round trip), on the embedded default from ``ward_index``.
    A location in no ward is refused (400, nothing stored) unless the jurisdiction accepts
    outside locations; address-only requests have no ward.
    """
    now = utcnow()
    row = request_row(jurisdiction, service, sub, key, now)
    located = sub.lat is not None and sub.lon is not None
    ward_set = jurisdiction.ward_set_id if located else None
    if postgis and located:
        assert sub.lat is not None  # noqa: S101 - invariant, not an input check
        assert sub.lon is not None  # noqa: S101 - invariant, not an input check
        point = point_expression(sub.lat, sub.lon)
        row["location"] = point
        if ward_set is not None:
            row["ward_id"] = ward_id_expression(ward_set, point, sub.lat, tolerance_m)
    elif ward_set is not None and ward_index is not None:
        assert sub.lat is not None  # noqa: S101 - invariant, not an input check
        assert sub.lon is not None  # noqa: S101 - invariant, not an input check
        hit = ward_index.lookup(sub.lat, sub.lon, tolerance_m)
        if hit is None and not jurisdiction.accepts_outside:
            raise outside_error(jurisdiction)
        row["ward_id"] = hit.area_id if hit else None
    statement = insert(REQUEST)
    if postgis and ward_set is not None and not jurisdiction.accepts_outside:
        # WITH ward AS (lookup) INSERT ... SELECT ... WHERE the ward exists: one statement,
        # nothing stored outside, the lookup run once.
        ward = ward_cte(row["ward_id"])
        row["ward_id"] = ward.c.ward_id
        guarded = (
            select(
                *[
                    v if isinstance(v, ColumnElement) else literal(v, REQUEST.c[k].type)
                    for k, v in row.items()
                ]
            )
            .select_from(ward)
            .where(ward.c.ward_id.is_not(None))
        )
        request_pk = (
            await conn.execute(statement.from_select(list(row), guarded).returning(REQUEST.c.id))
        ).scalar()
        if request_pk is None:
            raise outside_error(jurisdiction)
    else:
        request_pk = (
            await conn.execute(statement.values(row).returning(REQUEST.c.id))
        ).scalar_one()
    item: dict[str, Any] = {}
    if token is not None:
        # A queued submission (a batch service, or a sandbox one for a partner city): its
        # token now gives the request's id.
        await conn.execute(
            update(TOKEN).where(TOKEN.c.token == token).values(service_request_id=request_pk)
        )
        item["token"] = token
    elif service.type == "realtime":
        item["service_request_id"] = str(request_pk)
    elif service.type == "batch":
        token = secrets.token_urlsafe(18)
        await conn.execute(
            insert(TOKEN).values(
                token=token,
                jurisdiction_id=jurisdiction.pk,
                service_request_id=request_pk,
                created_at=now,
            )
        )
        item["token"] = token
    item["service_notice"] = service.service_notice
    item["account_id"] = sub.account_id
    return item


# ---------------------------------------------------------------------------------------
# GET requests


@dataclass(slots=True)
class PageInfo:
    """Paging facts of a list response (for headers)."""

    next_cursor: str | None = None
    page_size: int = 0


@dataclass(slots=True)
class RequestFilters:
    """Parsed GET requests filters (already validated)."""

    ids: list[int] | None = None
    service_codes: list[str] | None = None
    statuses: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    wards: list[str] | None = None
    extensions: bool = False
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    page: int = 1
    page_size: int | None = None
    # Keyset position after which to continue: (order key "r"/"u", timestamp, id).
    cursor: tuple[str, datetime, int] | None = None

    @property
    def by_update(self) -> bool:
        """Sort and page on updated_datetime (sync clients) rather than requested_datetime."""
        if self.cursor is not None:
            return self.cursor[0] == "u"
        return self.updated_after is not None or self.updated_before is not None


def encode_cursor(kind: str, stamp: datetime, request_pk: int) -> str:
    """An opaque position for keyset paging."""
    raw = orjson.dumps({"k": kind, "t": stamp.isoformat(), "i": request_pk})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# Request ids are PostgreSQL bigints: a cursor naming a larger one is not one of ours.
REQUEST_ID_MAX = 2**63 - 1
CURSOR_MAX_LENGTH = 200


def decode_cursor(text: str) -> tuple[str, datetime, int]:
    """The position of a cursor (ValueError when it is not one of ours).

    Every value is checked to be one the database takes (an id within 64 bits, a time that
    is one in UTC), so a forged cursor is a 400, never a database error."""
    if len(text) > CURSOR_MAX_LENGTH:
        raise ValueError(text[:CURSOR_MAX_LENGTH])
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        kind, stamp, pk = data["k"], datetime.fromisoformat(data["t"]), data["i"]
        if stamp.tzinfo is not None:
            stamp.astimezone(UTC)  # OverflowError near year 1 or 9999
    except (ValueError, KeyError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValueError(text) from exc
    if kind not in ("r", "u") or stamp.tzinfo is None:
        raise ValueError(text)
    if type(pk) is not int or not 0 <= pk <= REQUEST_ID_MAX:
        raise ValueError(text)
    return kind, stamp, pk


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


_COLUMNS = (
    REQUEST.c.id,
    REQUEST.c.status,
    REQUEST.c.status_notes,
    SERVICE.c.service_name,
    SERVICE.c.service_code,
    REQUEST.c.description,
    REQUEST.c.agency_responsible,
    REQUEST.c.service_notice,
    REQUEST.c.requested_at,
    REQUEST.c.updated_at,
    REQUEST.c.expected_at,
    REQUEST.c.address,
    REQUEST.c.address_id,
    REQUEST.c.zipcode,
    REQUEST.c.lat,
    REQUEST.c.lon,
    REQUEST.c.media_url,
)


PRIVATE_COLUMNS = (
    REQUEST.c.app_id,
    REQUEST.c.email,
    REQUEST.c.phone,
    REQUEST.c.first_name,
    REQUEST.c.last_name,
    REQUEST.c.device_id,
    REQUEST.c.account_id,
)
PRIVATE_FIELDS = ("email", "phone", "first_name", "last_name", "device_id", "account_id")


@dataclass(frozen=True, slots=True)
class ReadShape:
    """What changes the SQL of a read (every value is a bound parameter)."""

    postgres: bool
    sql_w3c: bool = True  # PostgreSQL renders the datetimes (``speed.sql_timestamps``)
    extensions: bool = False
    private: bool = False
    sandbox: bool = False
    by_id: bool = False  # GET requests/{id}
    # List filters: 0 absent, 1 one value (an equality the planner can use with the order of
    # an index), 2 several values (one array parameter on PostgreSQL, IN elsewhere).
    ids: int = 0  # the service_request_id filter
    services: int = 0
    wards: int = 0
    statuses: int = 0
    start: bool = False
    end: bool = False
    updated_after: bool = False
    updated_before: bool = False
    by_update: bool = False  # newest updated first (sync clients), else newest requested
    cursor: bool = False
    offset: bool = False


def _w3c_sql(column: Any) -> ColumnElement[str]:
    """PostgreSQL: ``YYYY-MM-DDThh:mm:ss±hh:mm`` of a timestamptz in the session's time zone,
    which the read path sets to the jurisdiction's (``fetch_all(..., timezone=)``); exactly
    what ``format_w3c`` writes (whole seconds; NULL stays NULL)."""
    return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM', type_=String())


def _member(
    column: ColumnElement[Any], name: str, item_type: Any, postgres: bool, count: int
) -> ColumnElement[bool]:
    # One value: an equality. Several: one array parameter on PostgreSQL (the same SQL for any
    # number of values), an expanding IN list elsewhere.
    if count == 1:
        return column == bindparam(name, type_=item_type)
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(item_type)))
    return column.in_(bindparam(name, expanding=True))


@cache
def read_statement(shape: ReadShape) -> Select[Any]:
    """The SELECT of a read shape, built once (so compiled once), values bound by name."""
    columns: list[Any] = list(_COLUMNS)
    if shape.postgres and shape.sql_w3c:
        # Datetimes rendered by PostgreSQL (C, not Python) in the session's zone, which the
        # read sets to the jurisdiction's.
        for at in (8, 9, 10):
            columns[at] = _w3c_sql(columns[at]).label(columns[at].name)
    if shape.extensions:
        columns += [AREA.c.code, AREA.c.name]
    if shape.private:
        columns += PRIVATE_COLUMNS
    order = REQUEST.c.updated_at if shape.by_update else REQUEST.c.requested_at
    if not shape.by_id:
        columns.append(order.label("sort_key"))  # the keyset cursor of a full page
    query = select(*columns).join(SERVICE, SERVICE.c.id == REQUEST.c.service_type_id)
    if shape.extensions:
        query = query.outerjoin(AREA, AREA.c.id == REQUEST.c.ward_id)
    query = query.where(REQUEST.c.jurisdiction_id == bindparam("jurisdiction", type_=Integer()))
    if shape.sandbox:
        query = query.where(
            REQUEST.c.sandbox.is_(True), REQUEST.c.app_id == bindparam("viewer_app")
        )
    else:
        query = query.where(REQUEST.c.sandbox.is_(False))
    if shape.by_id:
        return query.where(REQUEST.c.id == bindparam("request_id"))
    if shape.ids:
        query = query.where(_member(REQUEST.c.id, "ids", BigInteger(), shape.postgres, shape.ids))
    if shape.services:
        query = query.where(
            _member(
                REQUEST.c.service_type_id, "services", Integer(), shape.postgres, shape.services
            )
        )
    if shape.wards:
        query = query.where(
            REQUEST.c.ward_id.in_(
                select(AREA.c.id).where(
                    AREA.c.boundary_set_id == bindparam("ward_set", type_=Integer()),
                    _member(AREA.c.code, "ward_codes", String(), shape.postgres, shape.wards),
                )
            )
        )
    if shape.statuses:
        query = query.where(
            _member(REQUEST.c.status, "statuses", String(), shape.postgres, shape.statuses)
        )
    if shape.start:
        query = query.where(REQUEST.c.requested_at >= bindparam("start"))
    if shape.end:
        query = query.where(REQUEST.c.requested_at <= bindparam("end"))
    if shape.updated_after:
        query = query.where(REQUEST.c.updated_at >= bindparam("updated_after"))
    if shape.updated_before:
        query = query.where(REQUEST.c.updated_at <= bindparam("updated_before"))
    if shape.cursor:
        stamp = bindparam("cursor_at", type_=order.type)
        query = query.where(
            or_(
                order < stamp,
                and_(order == stamp, REQUEST.c.id < bindparam("cursor_id", type_=BigInteger())),
            )
        )
    query = query.order_by(order.desc(), REQUEST.c.id.desc()).limit(
        bindparam("limit", type_=Integer())
    )
    if shape.offset:
        query = query.offset(bindparam("offset", type_=Integer()))
    return query


class _View:
    """The shape and row rendering of one read: core fields, extensions, private fields.

    ``viewer`` is the API key of the caller, if any. Sandbox keys see only their app's sandbox
    requests; everyone else sees real requests only. A key with the ``read_private`` scope
    sees the reporter's contact fields (``reporter``) of requests its own app submitted.
    """

    def __init__(
        self,
        jurisdiction: JurisdictionInfo,
        extensions: bool,
        viewer: KeyInfo | None,
        postgres: bool,
        *,
        by_id: bool = False,
        sql_w3c: bool = True,
    ) -> None:
        self.tz = jurisdiction.tz
        self.extensions = extensions
        self.private_app = private_fields_app(viewer, jurisdiction.pk)
        sandbox = viewer is not None and viewer.sandbox
        self.shape = ReadShape(
            postgres=postgres,
            sql_w3c=sql_w3c,
            extensions=extensions,
            private=self.private_app is not None,
            sandbox=sandbox,
            by_id=by_id,
        )
        self.params: dict[str, Any] = {"jurisdiction": jurisdiction.pk}
        # The session time zone the statement renders datetimes in (None: rendered here).
        self.zone = self.tz.key if sql_w3c else None
        if sandbox:
            assert viewer is not None  # noqa: S101 - invariant, not an input check
            self.params["viewer_app"] = viewer.app_id

    def item(self, row: Sequence[Any]) -> dict[str, Any]:
        """The wire item of a row."""
        item = _wire(row, self.tz)
        at = len(_COLUMNS)
        if self.extensions:
            item["extended_attributes"] = {"ward": row[at], "ward_name": row[at + 1]}
            at += 2
        if self.private_app is not None and row[at] == self.private_app:
            item["reporter"] = dict(zip(PRIVATE_FIELDS, tuple(row)[at + 1 : at + 7], strict=True))
        return item


def _w3c(value: Any, tz: Any) -> str:
    # PostgreSQL reads render datetimes in SQL (see _w3c_sql); SQLite rows carry datetimes.
    return value if value.__class__ is str else format_w3c(value, tz)


def _wire(row: Sequence[Any], tz: Any) -> dict[str, Any]:
    # Optional text stored as "" (e.g. by an import) is unknown: null, never "".
    expected = row[10]
    return {
        "service_request_id": str(row[0]),
        "status": row[1],
        "status_notes": row[2] or None,
        "service_name": row[3],
        "service_code": row[4],
        "description": row[5] or None,
        "agency_responsible": row[6] or None,
        "service_notice": row[7] or None,
        "requested_datetime": _w3c(row[8], tz),
        "updated_datetime": _w3c(row[9], tz),
        "expected_datetime": _w3c(expected, tz) if expected is not None else None,
        "address": row[11] or None,
        "address_id": row[12] or None,
        "zipcode": row[13] or None,
        "lat": row[14],
        "long": row[15],
        "media_url": row[16] or None,
    }


async def list_requests(
    source: AsyncConnection | Direct,
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
    ``sql_w3c``: PostgreSQL renders the datetimes (else ``format_w3c``; ``speed.sql_timestamps``).
    """
    page = page if page is not None else PageInfo()
    view = _View(jurisdiction, filters.extensions, viewer, _postgres(source), sql_w3c=sql_w3c)
    params = view.params
    shape: dict[str, Any] = {}

    def member(name: str, values: list[Any], param: str | None = None) -> None:
        shape[name] = 1 if len(values) == 1 else 2
        params[param or name] = values[0] if len(values) == 1 else values

    if filters.ids is not None:
        if not filters.ids:
            return []
        member("ids", filters.ids)
    else:
        if filters.service_codes is not None:
            pks = [catalog.by_code[c].pk for c in filters.service_codes if c in catalog.by_code]
            if not pks:
                return []
            member("services", pks)
        if filters.wards is not None:
            if jurisdiction.ward_set_id is None:
                return []
            member("wards", filters.wards, "ward_codes")
            params["ward_set"] = jurisdiction.ward_set_id
        if filters.statuses is not None and len(filters.statuses) < len(STATUSES):
            member("statuses", filters.statuses)
        for name in ("start", "end", "updated_after", "updated_before"):
            value = getattr(filters, name)
            if value is not None:
                shape[name], params[name] = True, value
    kind = "u" if filters.by_update and filters.ids is None else "r"
    shape["by_update"] = kind == "u"
    if filters.cursor is not None:
        _, stamp, last = filters.cursor
        shape["cursor"], params["cursor_at"], params["cursor_id"] = True, stamp, last
    size = filters.page_size or limits.max_results
    params["limit"] = size
    if filters.cursor is None and filters.page > 1:
        shape["offset"], params["offset"] = True, (filters.page - 1) * size
    statement = read_statement(dataclasses.replace(view.shape, **shape))
    rows = await fetch_all(source, statement, params, timezone=view.zone)
    page.next_cursor = None
    if len(rows) == size and filters.ids is None:
        last_row = rows[-1]  # its last column is the sort timestamp itself
        page.next_cursor = encode_cursor(kind, last_row[-1], last_row[0])
    page.page_size = size
    return [view.item(row) for row in rows]


def _postgres(source: AsyncConnection | Direct) -> bool:
    if isinstance(source, Direct):
        return source.postgres
    return source.dialect.name == "postgresql"


async def get_request(
    source: AsyncConnection | Direct,
    jurisdiction: JurisdictionInfo,
    service_request_id: str,
    extensions: bool = False,
    viewer: KeyInfo | None = None,
    *,
    sql_w3c: bool = True,
) -> dict[str, Any]:
    """GET requests/{id}: one request of this jurisdiction, or 404 (``sql_w3c``: as in
    ``list_requests``)."""
    if (
        not (service_request_id.isascii() and service_request_id.isdigit())
        or len(service_request_id) > 18
    ):
        raise RequestNotFound(f"No service request with id {service_request_id[:64]!r}.")
    view = _View(jurisdiction, extensions, viewer, _postgres(source), by_id=True, sql_w3c=sql_w3c)
    statement = read_statement(view.shape)
    params = {**view.params, "request_id": int(service_request_id)}
    rows = await fetch_all(source, statement, params, timezone=view.zone)
    row = rows[0] if rows else None
    if row is None:
        raise RequestNotFound(f"No service request with id {service_request_id!r}.")
    return view.item(row)
