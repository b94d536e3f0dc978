"""Pydantic wire models: GeoReport v2 field names, types and order.

They document the API (OpenAPI schemas) and validate decoded documents in tests and clients.
The server's hot paths build the same shapes as plain dicts (see ``app.domain``); the tests check
that every response validates against these models and the community JSON Schemas.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Endpoint(_Wire):
    """One endpoint of the discovery document."""

    specification: str
    url: str
    changeset: datetime
    type: str
    formats: list[str]


class Discovery(_Wire):
    """The discovery document."""

    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(_Wire):
    """An item of GET services."""

    service_code: str
    service_name: str
    description: str | None
    metadata: bool
    type: ServiceType
    keywords: str | None
    group: str | None


class AttributeValue(_Wire):
    """An allowed value of a list attribute."""

    key: str
    name: str


class Attribute(_Wire):
    """An attribute of a service definition."""

    variable: bool
    code: str
    datatype: Datatype
    required: bool
    datatype_description: str | None
    order: int = Field(ge=1)
    description: str
    values: list[AttributeValue] | None = None


class ServiceDefinition(_Wire):
    """GET services/{service_code}."""

    service_code: str
    attributes: list[Attribute]


class ServiceRequest(_Wire):
    """An item of GET requests and GET requests/{id}: all 17 fields, always present."""

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
    lat: float | None
    long: float | None
    media_url: str | None


class RequestCreated(_Wire):
    """The item of a POST requests response (realtime: id; batch: token; blackbox: neither)."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None
    account_id: str | None


class TokenResult(_Wire):
    """The item of GET tokens/{token}; the id is null while the token is pending."""

    service_request_id: str | None
    token: str


class Error(_Wire):
    """An item of an error document."""

    code: int
    description: str
