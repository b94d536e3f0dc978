"""Address points of a jurisdiction: what its embedded geocoder (``app.geo.gazetteer``) is
built from (``open311 addresses import``)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field

from app.geo.addresses import MAX_ADDRESS_LENGTH
from app.store.tables.base import TableModel


class AddressPoint(TableModel, table=True):
    """One address (as written in the imported file) and its WGS84 point."""

    __tablename__ = "address_point"

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("jurisdiction.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    address: str = Field(max_length=MAX_ADDRESS_LENGTH)
    lat: float
    lon: float
