"""py-spy profiles of our server under wrk load, summarised as text (top frames)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.common import LUA, PYTHON, WORK, log
from bench.loadgen import Target, wrk_path


def py_spy() -> str | None:
    """The py-spy binary of this venv, if installed (pip install py-spy)."""
    candidate = Path(PYTHON).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


_LINE = re.compile(r":\d+\)$")


def summarise(raw: Path, top: int = 30) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks.

    Idle thread-pool workers (waiting on their queue) are left out; the share of samples in
    thread-pool work (FastAPI runs plain ``def`` dependencies there) is given separately.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = pooled = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # One entry per function: drop the line numbers py-spy appends.
        frames = [_LINE.sub(")", f.strip()) for f in stack.split(";")]
        if any(f.startswith("WorkerThread.run") for f in frames):
            if frames[-1].startswith("Condition.wait") and any(
                f.startswith("Queue.get") for f in frames
            ):
                continue
            pooled += count
        elif any(f.startswith("run_in_threadpool") for f in frames):
            pooled += count
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples\n"
    lines = [
        f"{total} busy samples (py-spy, 200 Hz). 'Runner.run' self time is the native event "
        "loop (uvloop, httptools, socket I/O, waiting for the database).",
        f"Thread-pool hops and work (plain-def FastAPI dependencies run via anyio): "
        f"{100 * pooled / total:.1f}% of busy samples.\n",
        "## self time (top functions)\n",
    ]
    lines += [f"{100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines += ["", "## inclusive time\n"]
    lines += [f"{100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top + 40)]
    return "\n".join(lines) + "\n"


def record(pid: int, target: Target, seconds: int, connections: int, out: Path) -> Path | None:
    """Profile ``pid`` while wrk loads ``target``; the summary file (None without py-spy)."""
    binary = py_spy()
    if binary is None:
        log("py-spy not installed: skipping profiles (pip install py-spy)")
        return None
    command = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds + 2}s",
        "-s",
        str(LUA / "bench.lua"),
        target.url,
    ]
    if target.args:
        command += ["--", *target.args]
    load = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw = WORK / f"{out.stem}.collapsed"  # py-spy's raw stacks stay out of results/
    try:
        subprocess.run(
            [
                binary,
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(raw),
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
            timeout=seconds + 60,
        )
    finally:
        load.wait(seconds + 30)
    out.write_text(summarise(raw))
    time.sleep(1)  # let the server drain what wrk left in flight
    return out
