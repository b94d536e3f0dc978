"""Soak: a bounded mixed-load run against a real server process, zero errors, stable memory.

Marked ``slow`` (not part of ``make test``); run it on demand:

    bash scripts/test.sh -m slow tests/reliability/test_soak.py

8 clients loop over a mix of calls (services, definition, POST realtime and batch, GET by id
in XML, the list with filters, tokens) for ``OPEN311_SOAK_SECONDS`` (default 120 s) on each
backend. Every answer must be a 200. The server's resident memory is sampled every second:
once warm (after the first quarter), its growth over the rest of the run must stay within
``MAX_GROWTH`` of the warm level — a leak of a few kilobytes per call would exceed it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import Seed
from tests.ops.server import Server, serve
from tests.reliability.conftest import Backend

pytestmark = pytest.mark.slow

BASE = "/open311/v2"
CLIENTS = 8
SECONDS = float(os.environ.get("OPEN311_SOAK_SECONDS", "120"))
MAX_GROWTH = 0.15  # of the warm resident size, plus the slack below
SLACK_BYTES = 8 * 2**20


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def _client(
    server: Server, seed: Seed, n: int, until: float, seen: collections.Counter[str]
) -> None:
    window = {
        "start_date": (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds"),
        "end_date": (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds"),
    }
    ids: list[str] = []
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        i = 0
        while time.monotonic() < until:
            i += 1
            step = i % 7
            if step == 0:
                call = http.get(f"{BASE}/services.json")
            elif step == 1:
                call = http.get(f"{BASE}/services/POTHOLE.xml")
            elif step in (2, 3):
                form = {
                    "api_key": seed.api_key,
                    "service_code": "LITTER.BIN" if step == 2 else "GRAFFITI",
                    "description": f"soak {n}-{i}",
                    "lat": "43.6534",
                    "long": "-79.3841",
                }
                headers = {"Idempotency-Key": f"soak-{n}-{i}"} if i % 3 == 0 else {}
                call = http.post(f"{BASE}/requests.json", data=form, headers=headers)
            elif step == 4 and ids:
                call = http.get(f"{BASE}/requests/{ids[i % len(ids)]}.xml")
            elif step == 5 and tokens:
                call = http.get(f"{BASE}/tokens/{tokens[i % len(tokens)]}.json")
            else:
                call = http.get(f"{BASE}/requests.json", params={**window, "status": "open"})
            response = await call
            seen[f"{response.request.method} {response.status_code}"] += 1
            if response.status_code != 200:
                seen[f"error: {response.request.url.path} {response.text[:120]}"] += 1
                continue
            if step in (2, 3):
                (item,) = response.json()
                if item.get("service_request_id"):
                    ids.append(item["service_request_id"])
                if item.get("token"):
                    tokens.append(item["token"])
                del ids[:-500], tokens[:-500]


async def test_soak_mixed_load_zero_errors_stable_memory(backend: Backend, tmp_path: Path) -> None:
    seed = await backend.seed()
    seen: collections.Counter[str] = collections.Counter()
    samples: list[tuple[float, int]] = []
    with serve(tmp_path, backend.env) as server:
        started = time.monotonic()
        until = started + SECONDS
        clients = [
            asyncio.create_task(_client(server, seed, n, until, seen)) for n in range(CLIENTS)
        ]
        while time.monotonic() < until:
            samples.append((time.monotonic() - started, rss_bytes(server.process.pid)))
            await asyncio.sleep(1.0)
        await asyncio.gather(*clients)
        samples.append((time.monotonic() - started, rss_bytes(server.process.pid)))

    errors = {k: v for k, v in seen.items() if not k.endswith(" 200")}
    assert not errors, errors
    calls = sum(seen.values())
    assert calls > CLIENTS * SECONDS, seen  # the run really loaded the server
    warm = [rss for t, rss in samples if t >= SECONDS / 4]
    baseline = sorted(warm[: max(1, len(warm) // 4)])[len(warm[: max(1, len(warm) // 4)]) // 2]
    peak_end = max(warm[-max(1, len(warm) // 4) :])
    assert peak_end <= baseline * (1 + MAX_GROWTH) + SLACK_BYTES, (
        f"{backend.name}: resident memory grew from {baseline / 2**20:.1f} MiB to "
        f"{peak_end / 2**20:.1f} MiB over {calls} calls",
        samples,
    )
