"""Federation: partner (remote) and region jurisdictions, synced request ids, forwarded POSTs.

A jurisdiction without a ``federation_partner`` row is local. The row holds the partner's
endpoint and key (remote) and the health and freshness the listing reports; its breaker columns
are shared by every process (API and workers), so a partner's circuit is opened once for all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field, timestamp_field

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class FederationPartner(TableModel, table=True):
    """How a non-local jurisdiction is served: ``kind`` remote (a partner) or region."""

    __tablename__ = "federation_partner"

    jurisdiction_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), primary_key=True
        )
    )
    # remote | region
    kind: str = Field(max_length=16)
    # Remote only: the partner's GeoReport v2 base URL (no trailing slash), json|xml, its key
    # for our forwarded POSTs and its jurisdiction_id (empty: none sent).
    base_url: str | None = Field(default=None, max_length=2048)
    format: str = Field(default="json", max_length=8)
    partner_api_key: str | None = Field(default=None, max_length=255)
    partner_jurisdiction_id: str | None = Field(default=None, max_length=255)
    # ok | degraded | down | unknown (never contacted)
    status: str = Field(default="unknown", max_length=16)
    consecutive_failures: int = Field(default=0)
    breaker_open_until: datetime | None = timestamp_field()
    last_refresh_at: datetime | None = timestamp_field()
    last_synced_at: datetime | None = timestamp_field()
    last_error: str | None = Field(default=None, max_length=2000)
    last_error_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class FederationRequest(TableModel, table=True):
    """A synced copy: our service request ``service_request_id`` is the partner's request."""

    __tablename__ = "federation_request"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "partner_request_id"),)

    service_request_id: int = Field(
        sa_column=Column(
            BIGINT, ForeignKey("service_request.id", ondelete="CASCADE"), primary_key=True
        )
    )
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    partner_request_id: str = Field(max_length=255)
    synced_at: datetime = created_at_field()


class FederationForward(TableModel, table=True):
    """A queued submission (state ``forward``) bound for a partner, with its retry schedule."""

    __tablename__ = "federation_forward"
    __table_args__ = (Index("ix_federation_forward_due", "next_attempt_at"),)

    submission_id: int = Field(
        sa_column=Column(BIGINT, ForeignKey("submission.id", ondelete="CASCADE"), primary_key=True)
    )
    # The remote jurisdiction the submission goes to (for a region: the routed partner).
    target_jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    next_attempt_at: datetime = created_at_field()
    # The partner's answer: its token (batch service, polled until it yields an id) or id.
    partner_token: str | None = Field(default=None, max_length=255)
    partner_request_id: str | None = Field(default=None, max_length=255)
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=2000)
