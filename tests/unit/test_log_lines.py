"""Log line pieces written without the logging machinery match what logging would write."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.observability import (
    AccessLog,
    JsonFormatter,
    TextFormatter,
    _LineFormatter,
    _record_time,
    _StderrHandler,
    json_line,
    text_line,
)


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


async def test_deferred_access_lines_come_out_once_per_loop_turn_and_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = _StderrHandler()
    handler.setFormatter(TextFormatter())
    handler.defer("first\n")
    handler.defer("second\n")
    assert capsys.readouterr().err == ""  # queued until the loop's turn ends
    await asyncio.sleep(0)
    assert capsys.readouterr().err == "first\nsecond\n"

    # Another record writes what is queued first: lines keep their order.
    handler.defer("third\n")
    record = logging.LogRecord("open311.x", logging.WARNING, __file__, 1, "later", (), None)
    handler.emit(record)
    out = capsys.readouterr().err.splitlines()
    assert out[0] == "third"
    assert out[1].endswith("later")
    assert len(out) == 2
    await asyncio.sleep(0)
    assert capsys.readouterr().err == ""  # nothing written twice


def test_deferred_line_without_an_event_loop_is_written_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = _StderrHandler()
    handler.defer("now\n")
    assert capsys.readouterr().err == "now\n"


@pytest.mark.parametrize("direct", [True, False])
def test_access_log_switch_selects_the_direct_writer_or_logging(
    direct: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """``speed.direct_access_log`` off: the line goes through logging's formatter, the same
    line either way."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.setLevel(logging.INFO)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]  # only ours: the direct writer may be used
    formatted: list[bool] = []

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code is _LineFormatter.format.__code__:
            formatted.append(True)

    log = AccessLog(direct=direct)
    scope = {"method": "GET", "path": "/open311/v2/services.json", "client": ("10.0.0.1", 5)}
    sys.setprofile(profile)
    try:
        log.finish(scope, "", "r-1", log.bind("r-1"), 200, 0.0015)
    finally:
        sys.setprofile(None)
        root.handlers[:] = saved
        root.setLevel(level)
    assert bool(formatted) is not direct
    line = json.loads(capsys.readouterr().err)
    assert (line["message"], line["request_id"], line["status"]) == (
        "GET /open311/v2/services.json 200",
        "r-1",
        200,
    )
    assert (line["client"], line["duration_ms"], line["endpoint"]) == ("10.0.0.1", 1.5, "unmatched")
