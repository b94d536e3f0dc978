"""Tokens returned for batch services, resolving to a service request id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Integer
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field


class RequestToken(TableModel, table=True):
    """A POST to a batch service answers with a token; the id is filled once it exists."""

    __tablename__ = "request_token"

    token: str = Field(primary_key=True, max_length=64)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_request_id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"),
            ForeignKey("service_request.id", ondelete="CASCADE"),
            nullable=True,
        ),
    )
    created_at: datetime = created_at_field()
