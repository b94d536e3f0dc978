"""Apps: client apps, key scopes/sandbox/limits, idempotency records, shared rate buckets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "client_app",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("contact", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_app")),
        sa.UniqueConstraint("name", name=op.f("uq_client_app_name")),
    )
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("app_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("scopes", sa.String(length=255), nullable=False, server_default="submit")
        )
        batch.add_column(sa.Column("jurisdiction_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("sandbox", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_key_app_id_client_app"),
            "client_app",
            ["app_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            op.f("fk_api_key_jurisdiction_id_jurisdiction"),
            "jurisdiction",
            ["jurisdiction_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("service_request") as batch:
        batch.add_column(sa.Column("app_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("sandbox", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_foreign_key(
            op.f("fk_service_request_app_id_client_app"),
            "client_app",
            ["app_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "idempotency_record",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", JSON_TYPE, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_idempotency_record_api_key_id_api_key"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("pk_idempotency_record")),
    )
    op.create_table(
        "rate_bucket",
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_bucket")),
    )


def downgrade() -> None:
    op.drop_table("rate_bucket")
    op.drop_table("idempotency_record")
    with op.batch_alter_table("service_request") as batch:
        batch.drop_constraint(op.f("fk_service_request_app_id_client_app"), type_="foreignkey")
        batch.drop_column("sandbox")
        batch.drop_column("app_id")
    with op.batch_alter_table("api_key") as batch:
        batch.drop_constraint(op.f("fk_api_key_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_api_key_app_id_client_app"), type_="foreignkey")
        batch.drop_column("rate_limit_per_minute")
        batch.drop_column("sandbox")
        batch.drop_column("jurisdiction_id")
        batch.drop_column("scopes")
        batch.drop_column("app_id")
    op.drop_table("client_app")
