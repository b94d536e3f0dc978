"""Languages and caching: catalogue translations, the languages of each catalogue, and when a
boundary set last changed its current flag.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_locale",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_catalog_locale_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_locale")),
        sa.UniqueConstraint(
            "jurisdiction_id", "locale", name=op.f("uq_catalog_locale_jurisdiction_id")
        ),
    )
    op.create_table(
        "catalog_translation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("service_code", sa.String(length=255), nullable=False),
        sa.Column("attribute_code", sa.String(length=255), nullable=False),
        sa.Column("value_key", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_catalog_translation_jurisdiction_id_jurisdiction"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_translation")),
        sa.UniqueConstraint(
            "jurisdiction_id",
            "locale",
            "service_code",
            "attribute_code",
            "value_key",
            "field",
            name=op.f("uq_catalog_translation_jurisdiction_id"),
        ),
    )
    with op.batch_alter_table("boundary_set") as batch:
        batch.add_column(sa.Column("updated_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("boundary_set") as batch:
        batch.drop_column("updated_at")
    op.drop_table("catalog_translation")
    op.drop_table("catalog_locale")
