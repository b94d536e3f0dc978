"""The exports' bench lines (issue 20, point 1).

- **Memory**: the peak resident memory of ``open311 export --format csv`` (one process each)
  on the smallest and on the largest bench database: flat when an export holds one batch,
  whatever the database holds (the ratio largest ÷ smallest should stay near 1).
- **Throughput**: rows per second of ``GET exports/requests.csv`` from our running server,
  read to the end over loopback, ÷ PostgreSQL's own ``COPY (SELECT the same columns of the
  same rows) TO STDOUT WITH CSV`` over one asyncpg connection, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import PYTHON, WORK, clean_env, log
from bench.dataset import JURISDICTION

BASE = "/open311/v2"
# The query of the COPY: the columns of the export's CSV, as PostgreSQL selects them (the same rows: the
# jurisdiction's real requests, newest requested first).
COPY_SQL = """
  SELECT r.id, r.status, r.status_notes, s.service_name, s.service_code, r.description,
         r.agency_responsible, r.service_notice,
         to_char(r.requested_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'),
         to_char(r.updated_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'),
         to_char(r.expected_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'),
         r.address, r.address_id, r.zipcode, r.lat, r.lon, r.media_url
  FROM service_request r JOIN service_type s ON s.id = r.service_type_id
  JOIN jurisdiction j ON j.id = r.jurisdiction_id
  WHERE j.code = '{jurisdiction}' AND NOT r.sandbox
  ORDER BY r.requested_at DESC, r.id DESC
"""
# Peak RSS of one export, measured by the process itself at exit (ru_maxrss, KiB on Linux).
_MEASURED_EXPORT = """
import resource, sys
from app.cli import main
sys.argv = ["open311", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
else:
    code = 0
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _peak_rss_mib(dsn: str, out: Path) -> tuple[float, int]:
    """(peak RSS in MiB, rows) of ``open311 export --format csv`` on ``dsn``."""
    done = subprocess.run(  # noqa: S603 - our own program, fixed arguments
        [PYTHON, "-c", _MEASURED_EXPORT, "export", "--format", "csv", "--output", str(out)],
        env=clean_env(OPEN311_DB__URL=dsn),
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )
    peak = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS")
    )
    with out.open("rb") as file:
        rows = sum(1 for _ in file) - 1
    out.unlink()
    return peak / 1024, rows


def _http_export(base: str) -> tuple[int, float]:
    """(bytes, seconds) of GET exports/requests.csv read to the end."""
    started = time.perf_counter()
    size = 0
    with (
        httpx.Client(timeout=3600) as client,
        client.stream("GET", f"{base}{BASE}/exports/requests.csv") as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_raw():
            size += len(chunk)
    return size, time.perf_counter() - started


async def _copy(dsn: str) -> tuple[int, float]:
    """(bytes, seconds) of PostgreSQL's COPY of the same rows, to a sink."""
    conn = await asyncpg.connect(dsn)
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    try:
        await conn.execute("SET TIME ZONE 'America/Toronto'")
        started = time.perf_counter()
        # COPY (this query) TO STDOUT WITH (FORMAT csv, HEADER)
        await conn.copy_from_query(
            COPY_SQL.format(jurisdiction=JURISDICTION), output=sink, format="csv", header=True
        )
        return size, time.perf_counter() - started
    finally:
        await conn.close()


def export_study(dsns: dict[int, str], main_rows: int, ours_base: str) -> dict[str, Any]:
    """The memory and throughput lines of the exports (see the module's docstring)."""
    smallest, largest = min(dsns), max(dsns)
    memory = {}
    for rows in sorted({smallest, largest}):
        peak, exported = _peak_rss_mib(dsns[rows], WORK / f"export-{rows}.csv")
        memory[rows] = {"peak_rss_mib": round(peak, 1), "rows": exported}
        log(f"  export of {exported:,} rows: peak RSS {peak:.0f} MiB")
    http_bytes, http_s = _http_export(ours_base)
    copy_bytes, copy_s = asyncio.run(_copy(dsns[main_rows]))
    rows = memory.get(main_rows, {}).get("rows") or main_rows
    result = {
        "memory": memory,
        "memory_ratio_largest_smallest": round(
            memory[largest]["peak_rss_mib"] / memory[smallest]["peak_rss_mib"], 2
        ),
        "http_csv": {"bytes": http_bytes, "seconds": round(http_s, 3), "rows": rows},
        "copy_csv": {"bytes": copy_bytes, "seconds": round(copy_s, 3), "rows": rows},
        "throughput_vs_copy": round(copy_s / http_s, 3) if http_s else None,
    }
    log(
        f"  GET exports/requests.csv {rows / http_s:,.0f} rows/s, COPY TO STDOUT "
        f"{rows / copy_s:,.0f} rows/s: {result['throughput_vs_copy']} × COPY"
    )
    (WORK / "exports.json").write_text(json.dumps(result, indent=1))
    return result
