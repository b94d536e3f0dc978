"""A real ``open311 serve`` process on an embedded database, for tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import make_run_default_jurisdiction

DEMO_KEY = "ops-demo-key-0123456789"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    """A running server: its base URL and the file its stderr goes to."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_lines(self) -> list[str]:
        """What the server wrote so far, line by line."""
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``open311`` process on an embedded database in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPEN311_")}
    env["OPEN311_DB__SQLITE_PATH"] = str(tmp_path / "open311.db")
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app ARGS`` (the ``open311`` command) to completion."""
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", *args],
        env=env if env is not None else cli_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_server(tmp_path: Path, *, requests: bool = True, **extra_env: str) -> Iterator[Server]:
    """Load the demo into a fresh embedded database and serve it as make run does (Toronto
    answering calls without jurisdiction_id); always stopped."""
    extra_env.setdefault("OPEN311_DEFAULT_JURISDICTION", make_run_default_jurisdiction())
    env = cli_env(tmp_path, **extra_env)
    # The captured 2018 dates: the tests compare with the captured data.
    demo_args = ["demo", "--api-key", DEMO_KEY, "--original-dates"]
    demo_args += [] if requests else ["--no-requests"]
    loaded = run_cli(tmp_path, *demo_args, env=env)
    assert loaded.returncode == 0, loaded.stderr
    with serve(tmp_path, env) as server:
        yield server


def start(cwd: Path, env: dict[str, str], *, port: int | None = None) -> Server:
    """Start ``open311 serve`` in its own session and wait until it is live."""
    port = port or free_port()
    log = cwd / "server.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments, no shell
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"the server exited with {process.returncode}:\n"
                    + "\n".join(server.log_lines())
                )
            try:
                if httpx.get(f"{server.url}/health/live", timeout=1.0).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)
    except BaseException:
        stop(process)
        raise


@contextmanager
def serve(cwd: Path, env: dict[str, str], *, port: int | None = None) -> Iterator[Server]:
    """A running ``open311 serve`` process (see :func:`start`); always stopped."""
    server = start(cwd, env, port=port)
    try:
        yield server
    finally:
        stop(server.process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started in its own session and everything it started (a crash)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and whatever it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
