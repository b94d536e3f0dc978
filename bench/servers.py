"""Start and stop the servers under test (each one uvicorn worker on loopback)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from bench.common import LOGS, PYTHON, ROOT, clean_env, free_port, log

_RUNNING: list[subprocess.Popen] = []


@dataclass(slots=True)
class Server:
    """A running server."""

    name: str
    port: int
    process: subprocess.Popen

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"


def start(name: str, command: list[str], env: dict[str, str], ready_path: str) -> Server:
    """Start ``command`` (which must listen on the port given as ``{port}``) and wait for it."""
    port = free_port()
    command = [c.replace("{port}", str(port)) for c in command]
    LOGS.mkdir(parents=True, exist_ok=True)
    output = (LOGS / f"server-{name}.log").open("ab")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _RUNNING.append(process)
    server = Server(name, port, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server {name} exited ({process.returncode}); see {LOGS}/server-{name}.log"
            )
        try:
            with urllib.request.urlopen(server.base + ready_path, timeout=2) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            time.sleep(0.2)
            continue
        if status < 500:
            log(f"server {name} ready on port {port} (pid {process.pid})")
            return server
        time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"server {name} did not become ready; see {LOGS}/server-{name}.log")


def uvicorn_app(name: str, app: str, env: dict[str, str], ready_path: str) -> Server:
    """A baseline ASGI app under uvicorn with the same options ``open311 serve`` uses."""
    command = [
        PYTHON,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--log-level",
        "info",
        "--proxy-headers",
    ]
    return start(name, command, env, ready_path)


def open311(name: str, settings_env: dict[str, str], ready_path: str) -> Server:
    """Our server: ``python -m app serve`` (1 worker), configured through the environment."""
    command = [
        PYTHON,
        "-m",
        "app",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
    ]
    return start(name, command, clean_env(**settings_env), ready_path)


def stop(server: Server) -> None:
    """Stop a server (its process group), politely then firmly."""
    _terminate(server.process)


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    if process in _RUNNING:
        _RUNNING.remove(process)


def stop_all() -> None:
    """Stop every server this harness started."""
    for process in list(_RUNNING):
        _terminate(process)
