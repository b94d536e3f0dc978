"""Paths, logging and small helpers shared by the harness modules."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
LOGS = WORK / "logs"
RESULTS = BENCH / "results"
LUA = BENCH / "lua"
PYTHON = sys.executable

_T0 = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr with the elapsed time."""
    elapsed = time.monotonic() - _T0
    sys.stderr.write(f"[bench {elapsed:7.1f}s] {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no inherited OPEN311_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPEN311_")}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def with_database(dsn: str, name: str) -> str:
    """``dsn`` (postgresql://user:pass@host:port/db) pointing at database ``name``."""
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"
