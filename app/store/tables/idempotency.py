"""Idempotency records of POST requests and shared rate-limit buckets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field
from app.store.types import JSONValue


class IdempotencyRecord(TableModel, table=True):
    """The outcome of a POST made with an ``Idempotency-Key`` (per API key, kept >= 24 h)."""

    __tablename__ = "idempotency_record"

    api_key_id: int = Field(
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int | None = Field(default=None)
    # The POST response item (rendered in the format asked for on each replay).
    response: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    created_at: datetime = created_at_field()


class RateBucket(TableModel, table=True):
    """A token bucket shared by every server process (PostgreSQL)."""

    __tablename__ = "rate_bucket"

    bucket: str = Field(primary_key=True, max_length=255)
    tokens: float
    updated_at: datetime = created_at_field()
