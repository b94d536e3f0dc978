"""Initial schema: jurisdictions, services, requests, tokens, API keys (PostGIS point).

Revision ID: 0001
Revises:
Create Date: 2026-11-28 02:19:43.807143
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def point_type() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    """PostGIS point on PostgreSQL; an unused text column on the embedded SQLite."""
    if _postgres():
        return Geometry("POINT", srid=4326, spatial_index=False)
    return sa.Text()


def upgrade() -> None:
    if _postgres():
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_index(op.f("ix_api_key_prefix"), "api_key", ["prefix"], unique=False)
    op.create_table(
        "jurisdiction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=1000), nullable=True),
        sa.Column("key_service", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jurisdiction")),
        sa.UniqueConstraint("code", name=op.f("uq_jurisdiction_code")),
    )
    op.create_table(
        "service_type",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_code", sa.String(length=255), nullable=False),
        sa.Column("service_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=4000), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("keywords", sa.String(length=1000), nullable=True),
        sa.Column("group_name", sa.String(length=255), nullable=True),
        sa.Column("agency_responsible", sa.String(length=255), nullable=True),
        sa.Column("service_notice", sa.String(length=1000), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_service_type_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_type")),
        sa.UniqueConstraint(
            "jurisdiction_id", "service_code", name=op.f("uq_service_type_jurisdiction_id")
        ),
    )
    op.create_table(
        "service_attribute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_type_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("variable", sa.Boolean(), nullable=False),
        sa.Column("datatype", sa.String(length=32), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("datatype_description", sa.String(length=1000), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=4000), nullable=False),
        sa.Column("values", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(
            ["service_type_id"],
            ["service_type.id"],
            name=op.f("fk_service_attribute_service_type_id_service_type"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_attribute")),
        sa.UniqueConstraint(
            "service_type_id", "code", name=op.f("uq_service_attribute_service_type_id")
        ),
    )
    op.create_index(
        op.f("ix_service_attribute_service_type_id"),
        "service_attribute",
        ["service_type_id"],
        unique=False,
    )
    op.create_table(
        "service_request",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_type_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_notes", sa.String(length=4000), nullable=True),
        sa.Column("description", sa.String(length=4000), nullable=True),
        sa.Column("agency_responsible", sa.String(length=255), nullable=True),
        sa.Column("service_notice", sa.String(length=1000), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(length=1000), nullable=True),
        sa.Column("address_id", sa.String(length=255), nullable=True),
        sa.Column("zipcode", sa.String(length=32), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("location", point_type(), nullable=True),
        sa.Column("media_url", sa.String(length=2048), nullable=True),
        sa.Column("media_urls", JSON_TYPE, nullable=True),
        sa.Column("attributes", JSON_TYPE, nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_service_request_api_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_service_request_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_type_id"],
            ["service_type.id"],
            name=op.f("fk_service_request_service_type_id_service_type"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_request")),
    )
    op.create_index(
        "ix_service_request_jurisdiction_requested",
        "service_request",
        ["jurisdiction_id", "requested_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_service_request_service_type_requested",
        "service_request",
        ["service_type_id", "requested_at"],
        unique=False,
    )
    if _postgres():
        op.create_index(
            "ix_service_request_location",
            "service_request",
            ["location"],
            postgresql_using="gist",
        )
    op.create_table(
        "request_token",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_request_id", BIGINT, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_request_token_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_request_id"],
            ["service_request.id"],
            name=op.f("fk_request_token_service_request_id_service_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_request_token")),
    )


def downgrade() -> None:
    op.drop_table("request_token")
    if _postgres():
        op.drop_index("ix_service_request_location", table_name="service_request")
    op.drop_index("ix_service_request_service_type_requested", table_name="service_request")
    op.drop_index("ix_service_request_jurisdiction_requested", table_name="service_request")
    op.drop_table("service_request")
    op.drop_index(op.f("ix_service_attribute_service_type_id"), table_name="service_attribute")
    op.drop_table("service_attribute")
    op.drop_table("service_type")
    op.drop_table("jurisdiction")
    op.drop_index(op.f("ix_api_key_prefix"), table_name="api_key")
    op.drop_table("api_key")
