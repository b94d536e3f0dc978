"""Log line pieces written without the logging machinery match what logging would write."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.observability import JsonFormatter, TextFormatter, _record_time, json_line, text_line


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_record_time_matches_datetime(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert _record_time(created) == expected.replace("+00:00", "Z")


def test_access_line_is_the_formatters_line() -> None:
    fields = {
        "method": "GET",
        "path": "/open311/v2/services.json",
        "status": 200,
        "duration_ms": 1.25,
        "client": "127.0.0.1",
        "endpoint": "/open311/v2/services.{format}",
    }
    record = logging.LogRecord(
        "open311.access", logging.INFO, __file__, 1, "%s %s %s", ("GET", fields["path"], 200), None
    )
    record.__dict__.update({"request_id": "r-1", **fields})
    message = f"GET {fields['path']} 200"
    direct = json_line(record.created, "info", "open311.access", message, "r-1", fields)
    assert direct == JsonFormatter().format(record)
    assert json.loads(direct)["endpoint"] == fields["endpoint"]
    text = text_line(record.created, "info", "open311.access", message, "r-1", fields)
    assert text == TextFormatter().format(record)
