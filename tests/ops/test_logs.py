"""The logs of a real ``open311 serve`` process: JSON lines on stderr, one per request."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.ops.server import demo_server


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"not a JSON log line: {line!r}") from exc
    return parsed


def _wait_for(log: Any, request_ids: set[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        entries = _json_lines(log())
        if request_ids <= {e.get("request_id") for e in entries}:
            return entries
        assert time.monotonic() < deadline, f"no log line for {request_ids}"
        time.sleep(0.1)


def test_server_logs_one_json_line_per_request(tmp_path: Path) -> None:
    with demo_server(tmp_path, requests=False) as server:
        ok = httpx.get(
            f"{server.url}/open311/v2/services.json", headers={"X-Request-ID": "it-works-1"}
        )
        assert ok.status_code == 200
        assert ok.headers["x-request-id"] == "it-works-1"
        missing = httpx.get(f"{server.url}/open311/v2/requests/42.xml")
        assert missing.status_code == 404
        generated = missing.headers["x-request-id"]
        entries = _wait_for(server.log_lines, {"it-works-1", generated})

    # Every line is JSON, uvicorn's own included; its access log is replaced by ours.
    assert any(e["logger"] == "uvicorn.error" for e in entries)
    assert not any(e["logger"] == "uvicorn.access" for e in entries)
    first = [e for e in entries if e.get("request_id") == "it-works-1"]
    assert len(first) == 1
    line = first[0]
    assert {"time", "level", "request_id", "method", "path", "status", "duration_ms"} <= set(line)
    assert (line["logger"], line["level"], line["method"]) == ("open311.access", "info", "GET")
    assert (line["path"], line["status"]) == ("/open311/v2/services.json", 200)
    assert line["endpoint"] == "/open311/v2/services.{format}"
    assert line["client"] == "127.0.0.1"
    assert 0 <= line["duration_ms"] < 10_000
    second = [e for e in entries if e.get("request_id") == generated]
    assert len(second) == 1
    assert (second[0]["status"], second[0]["endpoint"]) == (
        404,
        "/open311/v2/requests/{service_request_id}.{format}",
    )
