"""Divisions (agencies) of a jurisdiction, and the record of services moved between them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field


class Division(TableModel, table=True):
    """A division (agency) of a jurisdiction: its services' ``agency_responsible``.

    ``code`` is the short handle operators type (``pfr``); ``name`` is what requests show
    (``Parks, Forestry & Recreation``). Both are unique within the jurisdiction.
    """

    __tablename__ = "division"
    __table_args__ = (
        # Named here: the naming convention would give both the same name.
        UniqueConstraint("jurisdiction_id", "code", name="uq_division_jurisdiction_id_code"),
        UniqueConstraint("jurisdiction_id", "name", name="uq_division_jurisdiction_id_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    code: str = Field(max_length=64)
    name: str = Field(max_length=255)
    contact: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class ServiceMove(TableModel, table=True):
    """A service moved from one division to another: who moved it, when, from where to where.

    The divisions' codes and names are copied, so the record reads the same after a division
    is renamed or removed.
    """

    __tablename__ = "service_move"
    __table_args__ = (Index("ix_service_move_jurisdiction_moved", "jurisdiction_id", "moved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_type_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("service_type.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    from_code: str | None = Field(default=None, max_length=64)
    from_name: str | None = Field(default=None, max_length=255)
    to_code: str | None = Field(default=None, max_length=64)
    to_name: str | None = Field(default=None, max_length=255)
    moved_by: str = Field(max_length=255)
    reason: str | None = Field(default=None, max_length=1000)
    moved_at: datetime = created_at_field()
