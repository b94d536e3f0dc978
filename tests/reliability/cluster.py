"""A throwaway PostgreSQL cluster owned by one test, so that it can crash it.

The shared test cluster serves every other test; this one is created with ``initdb`` in a
temporary directory, listens on its own port and can be stopped with ``-m immediate`` (no
checkpoint, no clean shutdown: what a power cut or ``kill -9`` of the postmaster leaves) and
started again, which replays the WAL. As root the server binaries run as the ``postgres``
user (they refuse root). PostGIS comes from the same installation as the shared cluster.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.ops.server import free_port

PG_ROOT = Path("/usr/lib/postgresql")


def server_binaries() -> Path:
    """The ``bin`` directory of the newest PostgreSQL server installed (fails without one)."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    return Path(initdb).parent


class Cluster:
    """A private PostgreSQL cluster: ``init`` once, then ``start``/``crash``/``stop``."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="open311-crash-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if self.as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        """The admin DSN (trust authentication on loopback)."""
        return f"postgresql://open311@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603 - our own program, fixed arguments, no shell
        assert done.returncode == 0, f"{tool} failed: {done.stdout}\n{done.stderr}\n{self.logs()}"

    def logs(self) -> str:
        """The server log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def init(self) -> None:
        """Create the cluster (superuser ``open311``, trust on loopback)."""
        self._run("initdb", "-D", str(self.data), "-U", "open311", "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (WAL replay included)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "120",
            "start",
        )

    def crash(self) -> None:
        """Immediate stop: every server process exits at once, nothing is flushed or
        checkpointed; the next start recovers from the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        """Stop the server if it runs, then remove the cluster."""
        subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
            (["runuser", "-u", "postgres", "--"] if self.as_postgres else [])
            + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)
