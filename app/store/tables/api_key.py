"""Client apps and their API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field, timestamp_field


class ClientApp(TableModel, table=True):
    """A third-party app (civic-tech client) that submits into this backend."""

    __tablename__ = "client_app"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    contact: str | None = Field(default=None, max_length=1000)
    # The intake channel of the requests its keys file (app.georeport.models.Channel).
    channel: str = Field(
        default="api", sa_column=Column(String(16), nullable=False, server_default="api")
    )
    created_at: datetime = created_at_field()


class ApiKey(TableModel, table=True):
    """A key of an app: only a SHA-256 hash and a short visible prefix are stored.

    ``scopes`` is a space-separated list of ``submit`` (POST requests), ``update`` (POST
    servicerequestupdates on the app's own requests), ``staff`` (with ``update``: on any
    request, for a city's own back office), ``read_private`` (private fields of the app's own
    requests), ``admin`` (the admin API) and ``reports`` (the service-promise reports only):
    ``app.domain.api_keys.SCOPES``; who may do what
    is ``app.domain.policy``. A sandbox key writes requests that are kept apart from real ones.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    app_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("client_app.id", ondelete="CASCADE"), nullable=True),
    )
    scopes: str = Field(default="submit", max_length=255)
    # Restricts the key to one jurisdiction (null: any).
    jurisdiction_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=True),
    )
    sandbox: bool = Field(default=False)
    # Requests per minute (token bucket, burst = the same number); null: the default.
    rate_limit_per_minute: int | None = Field(default=None)
    # The key's own intake channel; null: its app's.
    channel: str | None = Field(default=None, max_length=16)
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = timestamp_field()
