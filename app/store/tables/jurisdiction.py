"""A jurisdiction (city) served by this endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field


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
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
