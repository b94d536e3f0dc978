"""Exports streaming now (``app.domain.exports``): one lease per caller, shared by every
server process."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field


class ExportLease(TableModel, table=True):
    """A caller's export streaming now: ``holder`` (the export's own token) holds it until
    ``expires_at`` (renewed while it streams; a lease of a process that died runs out)."""

    __tablename__ = "export_lease"

    caller: str = Field(primary_key=True, max_length=255)
    holder: str = Field(max_length=64)
    expires_at: datetime = created_at_field()
