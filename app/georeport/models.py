"""Pydantic wire models: GeoReport v2 field names, types and order.

They document the API (OpenAPI schemas) and validate decoded documents in tests and clients.
Each model names its XML element (the OpenAPI ``xml`` annotation); containers and their
wrapped arrays are annotated from ``app.georeport.codec.CONTAINER_ITEMS`` by ``app.api.docs``.
The server's hot paths build the same shapes as plain dicts (see ``app.domain``); the tests check
that every response validates against these models and the community JSON Schemas.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class ServiceType(StrEnum):
    """What POST requests returns for a service."""

    realtime = "realtime"
    batch = "batch"
    blackbox = "blackbox"


class Datatype(StrEnum):
    """The six attribute datatypes of a service definition."""

    string = "string"
    number = "number"
    datetime = "datetime"
    text = "text"
    singlevaluelist = "singlevaluelist"
    multivaluelist = "multivaluelist"


class Status(StrEnum):
    """Core v2 request status."""

    open = "open"
    closed = "closed"


class Channel(StrEnum):
    """How a request came in (its intake channel; extension, ``extensions=true``).

    An app's key carries its channel (``api`` unless the operator sets another on the app or
    the key); a staff key's intake names it (``app.domain.channels``).
    """

    phone = "phone"
    web = "web"
    mobile_app = "mobile_app"
    email = "email"
    counter = "counter"
    kiosk = "kiosk"
    social_media = "social_media"
    partner = "partner"
    api = "api"


# The enums' values as plain strings, in order: for membership tests (``in`` on an enum class
# refuses a non-member on Python 3.11) and for messages that list the allowed values.
SERVICE_TYPES: tuple[str, ...] = tuple(t.value for t in ServiceType)
DATATYPES: tuple[str, ...] = tuple(d.value for d in Datatype)
# The datatypes whose attributes have ``values``.
LIST_DATATYPES: tuple[str, ...] = (Datatype.singlevaluelist.value, Datatype.multivaluelist.value)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)


def _drop_default(schema: dict[str, Any]) -> None:
    # An optional field that is absent rather than null: no "default": null in the schema.
    schema.pop("default", None)


def _omitted() -> Any:
    """An optional field that is left out of the document rather than rendered as null."""
    return Field(default=None, json_schema_extra=_drop_default)


def _element(name: str) -> ConfigDict:
    """Model config of a wire model rendered as the XML element ``<name>``."""
    return ConfigDict(extra="forbid", json_schema_extra={"xml": {"name": name}})


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Endpoint(_Wire):
    """One endpoint of the discovery document."""

    model_config = _element("endpoint")

    specification: str
    url: str
    changeset: datetime
    type: str
    formats: list[str]
    # Extension endpoints: the resources they serve, as paths under url.
    resources: list[str] | SkipJsonSchema[None] = _omitted()


class Discovery(_Wire):
    """The discovery document."""

    model_config = _element("discovery")

    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Endpoint]
    # Extensions: the largest page of a paged list (page_size, X-Page-Size-Max) and the
    # languages on offer (locale, Accept-Language), the default first.
    max_page_size: int | SkipJsonSchema[None] = _omitted()
    locales: list[str] | SkipJsonSchema[None] = _omitted()


class Service(_Wire):
    """An item of GET services."""

    model_config = _element("service")

    service_code: str
    service_name: str
    description: str | None
    metadata: bool
    type: ServiceType
    keywords: str | None
    group: str | None


class AttributeValue(_Wire):
    """An allowed value of a list attribute."""

    model_config = _element("value")

    key: str
    name: str


class Attribute(_Wire):
    """An attribute of a service definition; ``values`` only (and always) for list datatypes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "xml": {"name": "attribute"},
            "if": {"properties": {"datatype": {"enum": list(LIST_DATATYPES)}}},
            "then": {"required": ["values"]},
            "else": {"not": {"required": ["values"]}},
        },
    )

    variable: bool
    code: str
    datatype: Datatype
    required: bool
    datatype_description: str | None
    order: int = Field(ge=1)
    description: str
    values: list[AttributeValue] | SkipJsonSchema[None] = _omitted()


class ServiceDefinition(_Wire):
    """GET services/{service_code}."""

    model_config = _element("service_definition")

    service_code: str
    attributes: list[Attribute]


class Photo(_Wire):
    """A photo uploaded with a request (a ``media`` file part), re-encoded without metadata."""

    model_config = _element("photo")

    url: str
    thumbnail_url: str
    content_type: str
    width: int
    height: int


class SubmittedValue(_Wire):
    """A public value of a submitted attribute (extension): one of a variable attribute the
    service defines, one entry a value (a multivaluelist gives several)."""

    model_config = _element("attribute")

    code: str
    name: str = Field(description="The attribute's description (its question).")
    value: str = Field(description="The value as submitted (the key of a list value).")
    value_name: str | None = Field(description="The name of a list value; null otherwise.")


class Note(_Wire):
    """One update of a request's history (extension), as public as the updates feed."""

    model_config = _element("note")

    update_id: str
    datetime: datetime
    status: Status
    detailed_status: str | None
    description: str | None
    media_url: str | None
    media_urls: list[str] = Field(
        description="Every media URL of the update: its uploaded photos first, then the "
        "media_url it was posted with."
    )
    photos: list[Photo] = Field(description="The photos uploaded with the update.")


class ExtendedAttributes(_Wire):
    """Extension (``extensions=true``): the ward a request was geocoded to, or nulls; how it
    came in and whether it was resolved during that first contact; its detailed status, every
    media URL (its uploaded photos first), its uploaded photos with their thumbnails, public
    attribute values and update history (oldest first, the newest
    ``requests.extensions_max_notes``)."""

    model_config = _element("extended_attributes")

    ward: str | None
    ward_name: str | None
    channel: Channel | SkipJsonSchema[None] | None = _omitted()
    first_contact_resolution: bool | SkipJsonSchema[None] = _omitted()
    detailed_status: str | SkipJsonSchema[None] | None = _omitted()
    media_urls: list[str] | SkipJsonSchema[None] = _omitted()
    photos: list[Photo] | SkipJsonSchema[None] = _omitted()
    attributes: list[SubmittedValue] | SkipJsonSchema[None] = _omitted()
    notes: list[Note] | SkipJsonSchema[None] = _omitted()


class ServiceRequest(_Wire):
    """An item of GET requests and GET requests/{id}: all 17 fields, always present.

    ``extended_attributes`` is present only when the client asked for ``extensions=true``.
    """

    model_config = _element("request")

    service_request_id: str
    status: Status
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime | None
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None = Field(ge=-90, le=90)
    long: float | None = Field(ge=-180, le=180)
    media_url: str | None
    extended_attributes: ExtendedAttributes | SkipJsonSchema[None] = _omitted()


# The 17 fields of a service request, in the spec's order (spec digest §9).
REQUEST_FIELDS: tuple[str, ...] = tuple(
    name for name in ServiceRequest.model_fields if name != "extended_attributes"
)


class NearbyRequest(ServiceRequest):
    """An item of GET requests/nearby (extension): a request and how far it is from the
    point asked about (metres, on the sphere)."""

    model_config = _element("request")

    distance_m: float = Field(ge=0)


class RequestCreated(_Wire):
    """The item of a POST requests response (realtime: id; batch: token; blackbox: neither)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "xml": {"name": "request"},
            # The spec: service_request_id and token never appear together.
            "not": {"required": ["service_request_id", "token"]},
        },
    )

    service_request_id: str | SkipJsonSchema[None] = _omitted()
    token: str | SkipJsonSchema[None] = _omitted()
    service_notice: str | None
    account_id: str | None


class TokenResult(_Wire):
    """The item of GET tokens/{token}; the id is null while the token is pending."""

    model_config = _element("request")

    service_request_id: str | None
    token: str


class Error(_Wire):
    """An item of an error document."""

    model_config = _element("error")

    code: int
    description: str
