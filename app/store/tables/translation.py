"""Catalogue translations: the languages a jurisdiction's service catalogue is offered in, and
the translated texts of its services, attributes and attribute values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field

from app.store.tables.base import TableModel, created_at_field


class CatalogLocale(TableModel, table=True):
    """A language of a jurisdiction's catalogue: the one its services are written in
    (``is_default``, at most one) or one with translations. ``updated_at`` moves whenever the
    translations of the language change (a removal too), so the catalogue's last change is
    the latest of its services' and its languages'."""

    __tablename__ = "catalog_locale"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "locale"),)

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    # A BCP 47 tag in its usual case (app.domain.i18n.canonical_tag): "fr", "fr-CA".
    locale: str = Field(max_length=35)
    is_default: bool = Field(default=False)
    updated_at: datetime = created_at_field()


class CatalogTranslation(TableModel, table=True):
    """One translated text of a catalogue, keyed by codes (not row ids), so it outlives a
    re-import of the services, which replaces their attribute rows.

    A service's text has empty ``attribute_code`` and ``value_key``; an attribute's has an
    ``attribute_code``; a value's name has both. ``field`` names the text
    (app.domain.catalog_translations.FIELDS)."""

    __tablename__ = "catalog_translation"
    __table_args__ = (
        UniqueConstraint(
            "jurisdiction_id", "locale", "service_code", "attribute_code", "value_key", "field"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    locale: str = Field(max_length=35)
    service_code: str = Field(max_length=255)
    attribute_code: str = Field(default="", max_length=255)
    value_key: str = Field(default="", max_length=255)
    field: str = Field(max_length=32)
    text: str = Field(max_length=4000)
    updated_at: datetime = created_at_field()
