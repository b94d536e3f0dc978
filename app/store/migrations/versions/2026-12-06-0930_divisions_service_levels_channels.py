"""The service promise: divisions, service levels, calendars, channels, first contact.

- ``division``: the divisions (agencies) of a jurisdiction; ``service_type.division_id``
  gives a service's ``agency_responsible``; ``service_move`` records services moved between
  divisions (who, when, from, to).
- ``service_type.service_levels``: the service's targets (canonical text).
- ``jurisdiction.business_calendar``: its business calendar (JSON).
- ``client_app.channel`` / ``api_key.channel``: the intake channel of the requests they file;
  ``service_request.channel`` and ``service_request.first_contact_resolved``.
- ``request_update.api_key_id`` / ``request_update.expected_at``: who made an update, and the
  expected_datetime it set (a staff override).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "division",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("contact", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_division_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_division")),
        sa.UniqueConstraint(
            "jurisdiction_id", "code", name=op.f("uq_division_jurisdiction_id_code")
        ),
        sa.UniqueConstraint(
            "jurisdiction_id", "name", name=op.f("uq_division_jurisdiction_id_name")
        ),
    )
    with op.batch_alter_table("service_type") as batch:
        batch.add_column(sa.Column("division_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("service_levels", sa.String(length=200), nullable=True))
        batch.create_foreign_key(
            op.f("fk_service_type_division_id_division"), "division", ["division_id"], ["id"]
        )
        batch.create_index(op.f("ix_service_type_division_id"), ["division_id"], unique=False)
    op.create_table(
        "service_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("service_type_id", sa.Integer(), nullable=False),
        sa.Column("from_code", sa.String(length=64), nullable=True),
        sa.Column("from_name", sa.String(length=255), nullable=True),
        sa.Column("to_code", sa.String(length=64), nullable=True),
        sa.Column("to_name", sa.String(length=255), nullable=True),
        sa.Column("moved_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_service_move_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_type_id"],
            ["service_type.id"],
            name=op.f("fk_service_move_service_type_id_service_type"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_move")),
    )
    op.create_index(
        "ix_service_move_jurisdiction_moved", "service_move", ["jurisdiction_id", "moved_at"]
    )
    op.create_index(
        op.f("ix_service_move_service_type_id"), "service_move", ["service_type_id"], unique=False
    )
    with op.batch_alter_table("jurisdiction") as batch:
        batch.add_column(sa.Column("business_calendar", JSON_TYPE, nullable=True))
    with op.batch_alter_table("client_app") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="api")
        )
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
    with op.batch_alter_table("service_request") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column(
                "first_contact_resolved", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("request_update") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("expected_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_request_update_api_key_id_api_key"),
            "api_key",
            ["api_key_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("request_update") as batch:
        batch.drop_constraint(op.f("fk_request_update_api_key_id_api_key"), type_="foreignkey")
        batch.drop_column("expected_at")
        batch.drop_column("api_key_id")
    with op.batch_alter_table("service_request") as batch:
        batch.drop_column("first_contact_resolved")
        batch.drop_column("channel")
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("channel")
    with op.batch_alter_table("client_app") as batch:
        batch.drop_column("channel")
    with op.batch_alter_table("jurisdiction") as batch:
        batch.drop_column("business_calendar")
    op.drop_index(op.f("ix_service_move_service_type_id"), table_name="service_move")
    op.drop_index("ix_service_move_jurisdiction_moved", table_name="service_move")
    op.drop_table("service_move")
    with op.batch_alter_table("service_type") as batch:
        batch.drop_index(op.f("ix_service_type_division_id"))
        batch.drop_constraint(op.f("fk_service_type_division_id_division"), type_="foreignkey")
        batch.drop_column("service_levels")
        batch.drop_column("division_id")
    op.drop_table("division")
