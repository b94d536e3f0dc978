"""Property tests of the reports' times to close in buckets: percentiles within 2.5 % of
``percentile_cont`` on the exact times, and local days cut into runs."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.reports import _runs, bucket_bounds, bucket_of, hour_days, percentile

# Times to close: seconds up to two years.
times = st.lists(st.floats(0, 2 * 365 * 86400, allow_nan=False), min_size=1, max_size=200)


def _exact(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@settings(max_examples=300, deadline=None)
@given(times, st.sampled_from([0.5, 0.9]))
def test_percentiles_from_buckets_are_within_their_bound(
    values: list[float], fraction: float
) -> None:
    buckets: dict[int, int] = {}
    for seconds in values:
        index = bucket_of(seconds)
        low, high = bucket_bounds(index)
        assert low <= seconds < high or (index == 0 and seconds < 60)
        buckets[index] = buckets.get(index, 0) + 1
    estimate = percentile(buckets, fraction)
    assert estimate is not None
    exact = _exact(values, fraction) / 3600
    assert abs(estimate - exact) <= 0.025 * exact + 30 / 3600 + 1e-9


@given(st.sets(st.integers(0, 800), max_size=60))
def test_days_are_cut_into_runs_of_consecutive_days(offsets: set[int]) -> None:
    start = date(2018, 1, 1)
    days = [start + timedelta(days=n) for n in offsets]
    runs = _runs(days)
    covered = [
        r.first + timedelta(days=n) for r in runs for n in range((r.last - r.first).days + 1)
    ]
    assert covered == sorted(days)
    # Maximal runs: two runs never touch.
    assert all((b.first - a.last).days > 1 for a, b in itertools.pairwise(runs))


@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)),
    st.sampled_from(["America/Toronto", "America/St_Johns", "Asia/Kolkata", "Australia/Eucla"]),
)
def test_a_changed_hour_covers_every_local_day_it_touches(naive: datetime, zone: str) -> None:
    """A refresh finds the requests to recompute by the UTC hour they were made in: the days
    of that hour include the local day of every instant in it (half-hour zones too)."""
    at = naive.replace(tzinfo=UTC)
    hour = at.replace(minute=0, second=0, microsecond=0)
    tz = ZoneInfo(zone)
    assert at.astimezone(tz).date() in hour_days([hour], tz)
