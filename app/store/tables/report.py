"""Daily rollups of the service-promise reports (``app.domain.reports``).

One ``report_day`` row per jurisdiction, local day (of ``requested_datetime``, in the
jurisdiction's time zone), dimension and key: the counts of the public requests received
that day, whatever became of them since, so a report over any period sums at most
days x keys rows instead of reading every request. The dimensions are ``all`` (key ``""``),
``service`` (key: the service type's id), ``ward`` (the area's id, ``""``: no ward) and
``channel`` (the channel, ``""``: none recorded). Besides the counts, each row keeps the
span of the targets (``expected_datetime``) of its still-open requests, so "open and overdue
now" is counted from the rollups too, except for the days whose targets span the present.
``report_month`` holds the same counts summed by calendar month, rewritten with the days, so a
report reads its whole months there.

``report_refresh`` keeps, per jurisdiction, when the rollups were last brought up to date
(the next refresh recomputes the days of the requests changed since then), the refresh pass
in progress and who runs it (a lease, so one pass per jurisdiction runs at a time, in any
process); ``report_pending`` the ranges of local days that pass has still to recompute. A
pass recomputes them a bounded piece at a time, each piece its own short write transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String
from sqlmodel import Field

from app.store.tables.base import TableModel, timestamp_field
from app.store.types import JSONValue


class RollupCounts(TableModel):
    """The counts a rollup keeps of a set of requests (one day's, or one month's)."""

    dimension: str = Field(max_length=8)
    key: str = Field(max_length=64)
    received: int = Field(default=0)
    closed: int = Field(default=0)
    with_target: int = Field(default=0)
    met: int = Field(default=0)  # closed at or before expected_datetime
    late: int = Field(default=0)  # closed after expected_datetime
    first_contact: int = Field(default=0)
    # Times to close of the closed ones: {bucket: count} (app.domain.reports.bucket_of).
    close_buckets: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    # The open ones with a target: how many, and the earliest and latest expected_datetime
    # among them, so "overdue now" needs no request read for a day whose targets have all
    # fallen due (or none yet), only for the few recent days in between.
    open_targeted: int = Field(default=0)
    first_due: datetime | None = timestamp_field()
    last_due: datetime | None = timestamp_field()


class ReportDay(RollupCounts, table=True):
    """The requests of one local day, for one key of one dimension."""

    __tablename__ = "report_day"
    __table_args__ = (
        Index("ix_report_day_jurisdiction_dimension_day", "jurisdiction_id", "dimension", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    day: date = Field(sa_column=Column(Date, nullable=False))


class ReportMonth(RollupCounts, table=True):
    """The sum of a calendar month's ``report_day`` rows, for one key of one dimension:
    whole months of a report's period are read here (days x keys becomes months x keys)."""

    __tablename__ = "report_month"
    __table_args__ = (
        Index(
            "ix_report_month_jurisdiction_dimension_month", "jurisdiction_id", "dimension", "month"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), nullable=False)
    )
    month: date = Field(sa_column=Column(Date, nullable=False))  # its first day


class ReportRefresh(TableModel, table=True):
    """When a jurisdiction's rollups were last brought up to date (the start of that refresh)."""

    __tablename__ = "report_refresh"

    jurisdiction_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), primary_key=True
        )
    )
    refreshed_at: datetime | None = timestamp_field()
    # The pass in progress (when it started; NULL: none), and the lease of whoever runs it
    # (an owner token and when it last wrote; a lease older than LEASE_S is free to take).
    pass_started: datetime | None = timestamp_field()
    lease_owner: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    lease_at: datetime | None = timestamp_field()


class ReportPending(TableModel, table=True):
    """A range of local days the pass in progress has still to recompute."""

    __tablename__ = "report_pending"

    jurisdiction_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("jurisdiction.id", ondelete="CASCADE"), primary_key=True
        )
    )
    first_day: date = Field(sa_column=Column(Date, primary_key=True))
    last_day: date = Field(sa_column=Column(Date, nullable=False))
