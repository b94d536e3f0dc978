"""wrk runs: one target, one round; parsed from the JSON line bench.lua prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import LOGS, LUA


@dataclass(slots=True)
class Target:
    """One endpoint to measure."""

    name: str
    url: str
    args: list[str] = field(default_factory=list)  # bench.lua arguments
    label: str = ""


@dataclass(slots=True)
class Sample:
    """One wrk run."""

    rps: float
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def wrk_path() -> str:
    """The wrk binary (run.sh installs it)."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "wrk is not installed: run bash bench/run.sh (it installs wrk) or apt-get install wrk"
        )
    return found


def run_wrk(
    target: Target, duration: float, connections: int, tag: str, threads: int = 1
) -> Sample:
    """Run wrk against ``target`` for ``duration`` seconds."""
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA / "bench.lua"),
        target.url,
    ]
    if target.args:
        command += ["--", *target.args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    log_file: Path = LOGS / f"wrk-{target.name}.log"
    with log_file.open("a") as handle:
        handle.write(f"### {tag}: {' '.join(command)}\n{out.stdout}{out.stderr}\n")
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {target.name}: {out.stderr or out.stdout}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    errors = sum(data["errors"].values())
    seconds = data["duration_us"] / 1e6
    return Sample(
        rps=data["requests"] / seconds if seconds else 0.0,
        requests=data["requests"],
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )
