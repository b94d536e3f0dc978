"""A request's life after filing: update history, queued batch submissions, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field, timestamp_field
from app.store.types import JSONValue

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class RequestUpdate(TableModel, table=True):
    """One change of a request (staff update, app update): the request's history.

    ``update_id`` on the wire is ``str(id)``. ``status`` is the core open/closed after the
    update; ``detailed_status`` the richer lowercase value (e.g. ``in_progress``, ``fixed``).
    """

    __tablename__ = "request_update"
    __table_args__ = (
        Index("ix_request_update_jurisdiction_updated", "jurisdiction_id", "updated_at", "id"),
        UniqueConstraint("app_id", "external_id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIGINT, primary_key=True, autoincrement=True)
    )
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_request_id: int = Field(
        sa_column=Column(
            BIGINT, ForeignKey("service_request.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    status: str = Field(max_length=16)
    detailed_status: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=4000)
    media_url: str | None = Field(default=None, max_length=2048)
    # Photos uploaded with the update (as service_request.photos); the first is media_url.
    photos: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONValue)
    external_status_code: str | None = Field(default=None, max_length=255)
    updated_at: datetime = created_at_field()
    # Who made it: staff (app_id null) or an app; external_id is the app's own update id.
    app_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("client_app.id", ondelete="SET NULL"), nullable=True),
    )
    external_id: str | None = Field(default=None, max_length=255)
    # The API key that made it (an app's, or a staff admin's; null: staff on the CLI).
    api_key_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True),
    )
    # The expected_datetime this update set (a staff override of the computed one), if any.
    expected_at: datetime | None = timestamp_field()
    sandbox: bool = Field(default=False)
    created_at: datetime = created_at_field()


class Submission(TableModel, table=True):
    """A POST to a batch service, queued until a worker turns it into a request."""

    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_state_created", "state", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIGINT, primary_key=True, autoincrement=True)
    )
    token: str = Field(max_length=64, unique=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    service_type_id: int = Field(
        sa_column=Column(Integer, ForeignKey("service_type.id", ondelete="CASCADE"), nullable=False)
    )
    api_key_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True),
    )
    # The validated submission (app.domain.requests.Submission fields).
    payload: dict[str, Any] = Field(sa_type=JSONValue)
    # queued -> done | failed
    state: str = Field(default="queued", max_length=16)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_at_field()
    done_at: datetime | None = timestamp_field()


class WebhookSubscription(TableModel, table=True):
    """An app's callback URL for updates to the requests it submitted."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("client_app.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    url: str = Field(max_length=2048)
    secret: str = Field(max_length=128)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    # "own": updates of the app's own requests; "feed": the public events of any request that
    # match the filters below (app.domain.subscriptions).
    kind: str = Field(
        default="own", sa_column=Column(String(8), nullable=False, server_default="own")
    )
    events: str | None = Field(default=None, max_length=32)  # "created,updated"
    filter_jurisdiction_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=True),
    )
    service_codes: list[str] | None = Field(default=None, sa_type=JSONValue)
    wards: list[str] | None = Field(default=None, sa_type=JSONValue)
    bbox: list[float] | None = Field(default=None, sa_type=JSONValue)
    # The feed's position: the last request and the last update fed to this subscription.
    request_cursor: int = Field(
        default=0, sa_column=Column(BIGINT, nullable=False, server_default="0")
    )
    update_cursor: int = Field(
        default=0, sa_column=Column(BIGINT, nullable=False, server_default="0")
    )


class WebhookDelivery(TableModel, table=True):
    """One signed POST to a subscription, retried with backoff and recorded."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_state_next", "state", "next_attempt_at"),
        Index("ix_webhook_delivery_subscription_id", "subscription_id", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIGINT, primary_key=True, autoincrement=True)
    )
    subscription_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False
        )
    )
    update_id: int | None = Field(
        default=None,
        sa_column=Column(
            BIGINT, ForeignKey("request_update.id", ondelete="CASCADE"), nullable=True
        ),
    )
    payload: dict[str, Any] = Field(sa_type=JSONValue)
    # pending -> delivered | failed (after the last attempt)
    state: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = created_at_field()
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=2000)
    delivered_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    # Its event (service_request.created / .updated) and request, for the delivery log.
    event: str | None = Field(default=None, max_length=32)
    request_id: int | None = Field(default=None, sa_column=Column(BIGINT, nullable=True))
