"""Shared column helpers for the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Table
from sqlmodel import Field, SQLModel

from app.store.types import UTCDateTime


class TableModel(SQLModel):
    """The base of every table: declares, for type checkers, the ``__table__`` that
    SQLAlchemy gives each table class (code reads ``Model.__table__`` for Core statements)."""

    __table__: ClassVar[Table]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def created_at_field() -> Any:
    """A non-null creation timestamp defaulting to now."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def timestamp_field(*, nullable: bool = True, index: bool = False) -> Any:
    """An aware UTC timestamp column."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)
