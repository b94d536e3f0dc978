"""Service requests (reports) and where they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, false
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field, timestamp_field
from app.store.types import JSONValue, PointGeometry


class ServiceRequest(TableModel, table=True):
    """A service request. Its public ``service_request_id`` is ``str(id)``.

    Reporter contact fields (email, phone, names, device_id) are stored for the city's staff and
    never appear in a public response.
    """

    __tablename__ = "service_request"
    __table_args__ = (
        Index("ix_service_request_jurisdiction_requested", "jurisdiction_id", "requested_at", "id"),
        # GET requests with service_code + status, newest first (migration 0006).
        Index(
            "ix_service_request_list",
            "jurisdiction_id",
            "service_type_id",
            "status",
            "requested_at",
            "id",
        ),
        Index("ix_service_request_service_type_requested", "service_type_id", "requested_at"),
        Index("ix_service_request_ward_requested", "ward_id", "requested_at"),
        Index("ix_service_request_jurisdiction_updated", "jurisdiction_id", "updated_at", "id"),
        # Open and overdue now, for the service-promise reports (migration 0013_reports).
        Index("ix_service_request_status_expected", "jurisdiction_id", "status", "expected_at"),
        Index("ix_service_request_location", "location", postgresql_using="gist").ddl_if(
            dialect="postgresql"
        ),
    )

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only that is the auto-assigned rowid.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_type_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("service_type.id", ondelete="RESTRICT"), nullable=False
        )
    )
    status: str = Field(default="open", max_length=16)
    # Richer internal status (lowercase, e.g. in_progress, fixed); the wire status stays
    # open/closed.
    detailed_status: str | None = Field(default=None, max_length=64)
    status_notes: str | None = Field(default=None, max_length=4000)
    description: str | None = Field(default=None, max_length=4000)
    agency_responsible: str | None = Field(default=None, max_length=255)
    service_notice: str | None = Field(default=None, max_length=1000)
    requested_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    expected_at: datetime | None = timestamp_field()
    address: str | None = Field(default=None, max_length=1000)
    address_id: str | None = Field(default=None, max_length=255)
    zipcode: str | None = Field(default=None, max_length=32)
    lat: float | None = Field(default=None)
    lon: float | None = Field(default=None)
    # PostGIS point (SRID 4326) on PostgreSQL; always NULL on the embedded SQLite default.
    location: Any = Field(default=None, sa_type=PointGeometry, nullable=True)
    media_url: str | None = Field(default=None, max_length=2048)
    # Every media_url posted (clients such as FixMyStreet repeat it); the first is media_url.
    media_urls: list[str] | None = Field(default=None, sa_type=JSONValue)
    # Photos uploaded with the request (migration 0011), in order: {url, thumbnail_url,
    # content_type, width, height}; the first one's url is media_url.
    photos: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONValue)
    # Submitted attribute values: {code: value or [values]}.
    attributes: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    # Private reporter data.
    email: str | None = Field(default=None, max_length=320)
    device_id: str | None = Field(default=None, max_length=255)
    account_id: str | None = Field(default=None, max_length=255)
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=64)
    # The ward (area of the jurisdiction's current ward set) the location falls in.
    ward_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("area.id", ondelete="SET NULL"), nullable=True),
    )
    # The app that submitted the request (kept when its keys rotate) and whether it was made
    # with a sandbox key: sandbox requests never mix with real ones.
    app_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("client_app.id", ondelete="SET NULL"), nullable=True),
    )
    sandbox: bool = Field(default=False)
    api_key_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True),
    )
    # How the request came in (app.georeport.models.Channel; null: not recorded, e.g. imported)
    # and whether it was resolved during that first contact (app.domain.channels).
    channel: str | None = Field(default=None, max_length=16)
    # A server default only: the hot path's compiled INSERT binds every column that has a
    # Python-side default, and a column it does not fill must stay out of its statement.
    first_contact_resolved: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = created_at_field()
