"""Service requests as the domain and the store exchange them: a parsed submission, the row a
new request is stored as, the filters of GET requests, what a read asks the store for and the
rows it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


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
    # Photos uploaded with it and stored (app.media): {url, thumbnail_url, content_type,
    # width, height} each; their urls come first in media_urls.
    photos: list[dict[str, Any]] = field(default_factory=list)
    # Staff intake (``app.domain.channels``; keys with the staff scope only): the channel the
    # request came in through, the status it is filed with (e.g. ``fixed``: resolved during
    # the contact) and an ``expected_datetime`` overriding the computed one (W3C text, checked).
    channel: str | None = None
    status: str | None = None
    expected_datetime: str | None = None

    @property
    def staff_intake(self) -> bool:
        """Whether the submission names a status or an expected datetime (recorded in the
        request's history, so it is stored in a transaction rather than in one statement)."""
        return self.status is not None or self.expected_datetime is not None


@dataclass(frozen=True, slots=True)
class WardRule:
    """How a located request gets its ward: the jurisdiction's current ward set."""

    set_id: int
    tolerance_m: float
    required: bool  # a location in no ward is refused (nothing stored)


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A new request as stored: the submission, its service and jurisdiction, who sent it."""

    jurisdiction_pk: int
    service_pk: int
    at: datetime  # requested, updated and created
    submission: Submission
    agency_responsible: str | None = None
    service_notice: str | None = None
    api_key_id: int | None = None
    app_id: int | None = None
    sandbox: bool = False
    ward: WardRule | None = None  # located, and the jurisdiction has wards
    expected_at: datetime | None = None  # the service's resolve target, from ``at``
    channel: str = "api"  # the intake channel (app.domain.channels)
    first_contact_resolved: bool = False
    status: str = "open"  # core status: a staff intake may file it closed
    detailed_status: str | None = None

    def columns(self) -> dict[str, Any]:
        """Column values of the ``service_request`` row (location and ward aside). ``photos``
        only when some were uploaded: the statement of a request without keeps its shape."""
        sub = self.submission
        row: dict[str, Any] = {
            "jurisdiction_id": self.jurisdiction_pk,
            "service_type_id": self.service_pk,
            "status": self.status,
            "description": sub.description,
            "agency_responsible": self.agency_responsible,
            "service_notice": self.service_notice,
            "requested_at": self.at,
            "updated_at": self.at,
            "created_at": self.at,
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
            "api_key_id": self.api_key_id,
            "app_id": self.app_id,
            "sandbox": self.sandbox,
            "expected_at": self.expected_at,
            "channel": self.channel,
            "first_contact_resolved": self.first_contact_resolved,
        } | ({"detailed_status": self.detailed_status} if self.detailed_status else {})
        if sub.photos:
            row["photos"] = sub.photos
        return row


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An Idempotency-Key to claim with the request, and the outcome to record under it."""

    api_key_id: int
    key: str
    request_hash: str
    status_code: int


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A WGS84 box (degrees), west <= east (no box crosses the antimeridian)."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


@dataclass(frozen=True, slots=True)
class Circle:
    """A WGS84 centre (degrees) and a radius (metres)."""

    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class TextQuery:
    """q= as the store matches it: the words description or address must all hold, and the
    services whose name holds them all (matched in the catalog)."""

    words: tuple[str, ...]
    service_pks: tuple[int, ...] = ()


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
    # Where: a bounding box and/or a circle (every one given must hold).
    bbox: BoundingBox | None = None
    near: Circle | None = None
    # Text search: the words of q= (each must match).
    words: list[str] | None = None

    @property
    def by_update(self) -> bool:
        """Sort and page on updated_datetime (sync clients) rather than requested_datetime."""
        if self.cursor is not None:
            return self.cursor[0] == "u"
        return self.updated_after is not None or self.updated_before is not None


@dataclass(frozen=True, slots=True)
class RequestRead:
    """What one GET requests or GET requests/{id} read asks the store for, in database terms.

    ``zone``: render the datetimes as W3C text in this zone (the store does it fastest: in SQL
    on PostgreSQL); None: the rows carry aware datetimes.
    """

    jurisdiction_pk: int
    zone: str | None = None
    extensions: bool = False  # the ward's code and name
    private_app: int | None = None  # reporter fields of requests this app submitted
    sandbox: bool = False  # sandbox requests of ``viewer_app`` only (else real ones only)
    viewer_app: int | None = None
    request_id: int | None = None  # GET requests/{id}: this one request
    # GET requests: each filter None when absent.
    ids: tuple[int, ...] | None = None
    service_pks: tuple[int, ...] | None = None
    ward_set: int | None = None
    ward_codes: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    by_update: bool = False  # newest updated first (sync clients), else newest requested
    after: tuple[datetime, int] | None = None  # keyset position (sort timestamp, id)
    limit: int = 1
    offset: int = 0
    bbox: BoundingBox | None = None  # located in this box
    near: Circle | None = None  # located within this circle
    near_box: BoundingBox | None = None  # the box around ``near`` (the index's prefilter)
    text: TextQuery | None = None  # q=


class RequestRow(NamedTuple):
    """One request as a read returns it (private fields None unless asked for)."""

    id: int
    status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_at: str | datetime  # W3C text when the read gave a zone
    updated_at: str | datetime
    expected_at: str | datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    lon: float | None
    media_url: str | None
    ward_code: str | None  # with extensions
    ward_name: str | None
    channel: str | None
    first_contact_resolved: bool | int | None  # SQLite: 0/1
    app_id: int | None  # with private fields
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    device_id: str | None
    account_id: str | None


@dataclass(slots=True)
class RequestPage:
    """The rows of a read and, for a full page, the keyset position after its last row."""

    rows: list[RequestRow]
    last: tuple[datetime, int] | None = None
