"""API keys of client apps (POST requests needs one)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, timestamp_field


class ApiKey(SQLModel, table=True):
    """A client key: only a SHA-256 hash and a short visible prefix are stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = timestamp_field()
