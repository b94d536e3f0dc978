"""Lifecycle: update history, detailed status, batch submission queue, webhooks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("service_request") as batch:
        batch.add_column(sa.Column("detailed_status", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_service_request_jurisdiction_updated",
        "service_request",
        ["jurisdiction_id", "updated_at", "id"],
    )
    op.create_table(
        "request_update",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_request_id", BIGINT, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detailed_status", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=4000), nullable=True),
        sa.Column("media_url", sa.String(length=2048), nullable=True),
        sa.Column("external_status_code", sa.String(length=255), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["client_app.id"],
            name=op.f("fk_request_update_app_id_client_app"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_request_update_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_request_id"],
            ["service_request.id"],
            name=op.f("fk_request_update_service_request_id_service_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_update")),
        sa.UniqueConstraint("app_id", "external_id", name=op.f("uq_request_update_app_id")),
    )
    op.create_index(
        "ix_request_update_jurisdiction_updated",
        "request_update",
        ["jurisdiction_id", "updated_at", "id"],
    )
    op.create_index(
        op.f("ix_request_update_service_request_id"), "request_update", ["service_request_id"]
    )
    op.create_table(
        "submission",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_type_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_submission_api_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_submission_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_type_id"],
            ["service_type.id"],
            name=op.f("fk_submission_service_type_id_service_type"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
        sa.UniqueConstraint("token", name=op.f("uq_submission_token")),
    )
    op.create_index("ix_submission_state_created", "submission", ["state", "id"])
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["client_app.id"],
            name=op.f("fk_webhook_subscription_app_id_client_app"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    op.create_index(op.f("ix_webhook_subscription_app_id"), "webhook_subscription", ["app_id"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("update_id", BIGINT, nullable=True),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name=op.f("fk_webhook_delivery_subscription_id_webhook_subscription"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["update_id"],
            ["request_update.id"],
            name=op.f("fk_webhook_delivery_update_id_request_update"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_state_next", "webhook_delivery", ["state", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_state_next", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index(op.f("ix_webhook_subscription_app_id"), table_name="webhook_subscription")
    op.drop_table("webhook_subscription")
    op.drop_index("ix_submission_state_created", table_name="submission")
    op.drop_table("submission")
    op.drop_index(op.f("ix_request_update_service_request_id"), table_name="request_update")
    op.drop_index("ix_request_update_jurisdiction_updated", table_name="request_update")
    op.drop_table("request_update")
    op.drop_index("ix_service_request_jurisdiction_updated", table_name="service_request")
    with op.batch_alter_table("service_request") as batch:
        batch.drop_column("detailed_status")
