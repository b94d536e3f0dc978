"""Open311 services (request types) and their definition attributes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field
from app.store.types import JSONValue


class ServiceType(TableModel, table=True):
    """A GeoReport "service": a type of request a jurisdiction accepts."""

    __tablename__ = "service_type"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "service_code"),)

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_code: str = Field(max_length=255)
    service_name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=4000)
    type: str = Field(default="realtime", max_length=16)
    keywords: str | None = Field(default=None, max_length=1000)
    group_name: str | None = Field(default=None, max_length=255)
    agency_responsible: str | None = Field(default=None, max_length=255)
    service_notice: str | None = Field(default=None, max_length=1000)
    # The division (agency) the service belongs to: its agency_responsible when set.
    division_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("division.id"), nullable=True, index=True),
    )
    # Targets in the canonical text of app.domain.service_levels ("resolve=5 business_days").
    service_levels: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class ServiceAttribute(TableModel, table=True):
    """One attribute of a service definition (``attribute[code]`` on POST)."""

    __tablename__ = "service_attribute"
    __table_args__ = (UniqueConstraint("service_type_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    service_type_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("service_type.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    code: str = Field(max_length=255)
    variable: bool = Field(default=True)
    datatype: str = Field(max_length=32)
    required: bool = Field(default=False)
    datatype_description: str | None = Field(default=None, max_length=1000)
    position: int = Field(ge=1)
    description: str = Field(default="", max_length=4000)
    # [{"key": ..., "name": ...}] for the list datatypes, null otherwise.
    values: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONValue)
