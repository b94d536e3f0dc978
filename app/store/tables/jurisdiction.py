"""A jurisdiction (city) served by this endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field
from app.store.types import JSONValue


class Jurisdiction(TableModel, table=True):
    """One city; ``code`` is the GeoReport ``jurisdiction_id`` (e.g. ``toronto.ca``)."""

    __tablename__ = "jurisdiction"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=255, unique=True)
    name: str = Field(max_length=255)
    timezone: str = Field(default="UTC", max_length=64)
    contact: str | None = Field(default=None, max_length=1000)
    key_service: str | None = Field(default=None, max_length=1000)
    # Accept locations outside every ward of the current ward set (else 400).
    accepts_outside: bool = Field(default=False)
    # The business calendar (app.domain.business_calendar.BusinessCalendar.to_config); null:
    # the example calendar of a demo jurisdiction, or none.
    business_calendar: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
