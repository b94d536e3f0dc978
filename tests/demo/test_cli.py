"""The open311 command, run as a real process on an embedded database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPEN311_DB__SQLITE_PATH": str(tmp_path / "cli.db")}
    env.pop("OPEN311_DB__URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def test_demo_and_key_lifecycle(tmp_path: Path) -> None:
    demo = _run(tmp_path, "demo", "--no-requests", "--api-key", "cli-demo-key-1")
    assert demo.returncode == 0, demo.stderr
    assert "toronto.ca" in demo.stdout
    created = _run(tmp_path, "keys", "create", "Civic App")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert len(key) >= 32
    listed = _run(tmp_path, "keys", "list")
    assert "Civic App" in listed.stdout
    assert key not in listed.stdout  # only the prefix is ever shown again
    assert key[:8] in listed.stdout
    key_id = listed.stdout.strip().splitlines()[-1].split("\t")[0]
    revoked = _run(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _run(tmp_path, "keys", "list").stdout
    again = _run(tmp_path, "keys", "revoke", key_id)
    assert again.returncode == 1
    jurisdictions = _run(tmp_path, "jurisdictions", "list")
    assert "toronto.ca\tCity of Toronto\tAmerica/Toronto" in jurisdictions.stdout
