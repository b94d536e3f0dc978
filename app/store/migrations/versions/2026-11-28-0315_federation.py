"""Federation: partner/region jurisdictions, synced request ids, forwarded submissions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 03:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "federation_partner",
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("partner_api_key", sa.String(length=255), nullable=True),
        sa.Column("partner_jurisdiction_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("breaker_open_until", TS, nullable=True),
        sa.Column("last_refresh_at", TS, nullable=True),
        sa.Column("last_synced_at", TS, nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_federation_partner_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jurisdiction_id", name=op.f("pk_federation_partner")),
    )
    op.create_table(
        "federation_request",
        sa.Column("service_request_id", BIGINT, nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("partner_request_id", sa.String(length=255), nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_federation_request_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_request_id"],
            ["service_request.id"],
            name=op.f("fk_federation_request_service_request_id_service_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_request_id", name=op.f("pk_federation_request")),
        sa.UniqueConstraint(
            "jurisdiction_id",
            "partner_request_id",
            name=op.f("uq_federation_request_jurisdiction_id"),
        ),
    )
    op.create_table(
        "federation_forward",
        sa.Column("submission_id", BIGINT, nullable=False),
        sa.Column("target_jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("partner_token", sa.String(length=255), nullable=True),
        sa.Column("partner_request_id", sa.String(length=255), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_federation_forward_submission_id_submission"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_federation_forward_target_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_federation_forward")),
    )
    op.create_index("ix_federation_forward_due", "federation_forward", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_federation_forward_due", table_name="federation_forward")
    op.drop_table("federation_forward")
    op.drop_table("federation_request")
    op.drop_table("federation_partner")
