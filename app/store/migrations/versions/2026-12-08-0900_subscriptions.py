"""Subscriptions: webhooks for new requests and updates of any app's requests, filtered.

- ``webhook_subscription``: ``kind`` (``own``: updates of the app's own requests, as before;
  ``feed``: the public events that match its filters), ``events`` (``created``,
  ``updated``), the filters (``filter_jurisdiction_id``, ``service_codes``, ``wards``,
  ``bbox``) and the feed's position (``request_cursor``, ``update_cursor``: the last request
  and update fed).
- ``webhook_delivery``: the ``event`` and ``request_id`` of each delivery (its log).

Revision ID: 0014_subscriptions
Revises: 0013_reports
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_subscriptions"
down_revision: str | None = "0013_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=8), nullable=False, server_default="own")
        )
        batch.add_column(sa.Column("events", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("filter_jurisdiction_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("service_codes", JSON_TYPE, nullable=True))
        batch.add_column(sa.Column("wards", JSON_TYPE, nullable=True))
        batch.add_column(sa.Column("bbox", JSON_TYPE, nullable=True))
        batch.add_column(sa.Column("request_cursor", BIGINT, nullable=False, server_default="0"))
        batch.add_column(sa.Column("update_cursor", BIGINT, nullable=False, server_default="0"))
        batch.create_foreign_key(
            op.f("fk_webhook_subscription_filter_jurisdiction_id_jurisdiction"),
            "jurisdiction",
            ["filter_jurisdiction_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("webhook_delivery") as batch:
        batch.add_column(sa.Column("event", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("request_id", BIGINT, nullable=True))
    op.create_index(
        "ix_webhook_delivery_subscription_id", "webhook_delivery", ["subscription_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_subscription_id", table_name="webhook_delivery")
    with op.batch_alter_table("webhook_delivery") as batch:
        batch.drop_column("request_id")
        batch.drop_column("event")
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.drop_constraint(
            op.f("fk_webhook_subscription_filter_jurisdiction_id_jurisdiction"),
            type_="foreignkey",
        )
        for column in (
            "update_cursor",
            "request_cursor",
            "bbox",
            "wards",
            "service_codes",
            "filter_jurisdiction_id",
            "events",
            "kind",
        ):
            batch.drop_column(column)
