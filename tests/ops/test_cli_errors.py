"""Every ``open311`` failure is one line on stderr and a non-zero exit (issue 21, point 5).

The main failures run as real processes (``python -m app``): an unreachable database (a
closed port on 127.0.0.1), a DSN that is not one, a bad file, a bad argument, a bad setting.
``open311 --debug`` shows the traceback as well. Then every command that needs the database
is driven against the closed port in process (typer's runner: the same click group, so the
same handler), so a command added later cannot print a traceback unnoticed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli
from app.demo.loader import BOUNDARIES, CATALOG_FILE, REQUESTS_FILE, SUDBURY_TRANSLATIONS_FILE
from app.settings import get_settings
from tests.ops.server import cli_env, free_port, run_cli


@pytest.fixture(scope="module")
def closed_dsn() -> str:
    """A PostgreSQL URL at a loopback port nobody listens on."""
    return f"postgresql://open311:secret@127.0.0.1:{free_port()}/open311"


def one_line(result: subprocess.CompletedProcess[str], code: int, *mentions: str) -> str:
    """The failure's single stderr line (checked: exit code, no traceback, what it names)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("Error: "), lines
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])
    return lines[0]


def test_unreachable_database(tmp_path: Path, closed_dsn: str) -> None:
    env = cli_env(tmp_path, OPEN311_DB__URL=closed_dsn)
    line = one_line(
        run_cli(tmp_path, "migrate", env=env),
        1,
        "cannot connect to the PostgreSQL database 127.0.0.1:",
        "Is it running",
        "OPEN311_DB__URL",
    )
    assert "secret" not in line  # the password is never shown

    debug = run_cli(tmp_path, "--debug", "migrate", env=env)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ConnectionRefusedError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line

    one_line(run_cli(tmp_path, "worker", env=env), 1, "cannot connect")


def test_bad_dsn_and_bad_settings(tmp_path: Path) -> None:
    for dsn in ("not a url", "mysql://user@db.example/open311"):
        env = cli_env(tmp_path, OPEN311_DB__URL=dsn)
        one_line(run_cli(tmp_path, "migrate", env=env), 2, "OPEN311_DB__URL", "postgresql://")
    env = cli_env(tmp_path, OPEN311_DB__POOL_SIZE="many")
    one_line(run_cli(tmp_path, "keys", "list", env=env), 2, "OPEN311_DB__POOL_SIZE")


def test_bad_argument_and_bad_file(tmp_path: Path) -> None:
    short = run_cli(tmp_path, "demo", "--api-key", "a-key")
    one_line(short, 2, "--api-key", "at least 8 characters")
    assert not (tmp_path / "open311.db").exists()  # refused before anything was loaded

    one_line(run_cli(tmp_path, "migrate", "no-such-revision"), 2, "no-such-revision")
    missing = tmp_path / "missing.geojson"
    one_line(
        run_cli(tmp_path, "openapi", "--output", str(tmp_path / "no" / "dir" / "openapi.json")),
        2,
        "cannot open",
        "No such file or directory",
    )
    broken = tmp_path / "partners.geojson"
    broken.write_text("{not json", encoding="utf-8")
    one_line(
        run_cli(
            tmp_path,
            "federation",
            "add-region",
            "r.example",
            "--name",
            "R",
            "--partners-file",
            str(broken),
        ),
        2,
        "partners.geojson",
    )
    for args in (
        ("boundaries", "import", str(missing), "--jurisdiction", "toronto.ca", "--name", "x"),
        ("services", "import", str(missing.with_suffix(".csv")), "--jurisdiction", "x"),
        ("translations", "import", str(missing.with_suffix(".csv")), "--jurisdiction", "x"),
        ("addresses", "import", str(missing.with_suffix(".csv")), "--jurisdiction", "x"),
    ):
        result = run_cli(tmp_path, *args)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "missing." in result.stderr
        assert "Traceback" not in result.stderr


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


# A command line for each command that uses the database (their arguments are valid).
DATABASE_COMMANDS = {
    ("migrate",): [],
    ("demo",): ["--no-requests"],
    ("worker",): ["--once"],
    ("export",): ["--output", "requests.csv"],
    ("keys", "create"): ["App"],
    ("keys", "list"): [],
    ("keys", "rotate"): ["1"],
    ("keys", "revoke"): ["1"],
    ("apps",): [],
    ("sandbox-reset",): [],
    ("jurisdictions", "list"): [],
    ("jurisdictions", "create"): ["a.example", "--name", "A", "--timezone", "UTC"],
    ("boundaries", "import"): [
        str(BOUNDARIES / "greater_sudbury_wards_12.geojson"),
        "--jurisdiction",
        "a.example",
        "--name",
        "w",
        "--code-field",
        "ward_code",
    ],
    ("boundaries", "list"): [],
    ("addresses", "import"): [str(REQUESTS_FILE), "--jurisdiction", "a.example"],
    ("boundaries", "activate"): ["w", "--jurisdiction", "a.example"],
    ("boundaries", "reassign"): ["a.example"],
    ("requests", "update"): ["1", "--status", "closed"],
    ("services", "import"): [str(CATALOG_FILE), "--jurisdiction", "a.example"],
    ("translations", "import"): [str(SUDBURY_TRANSLATIONS_FILE), "--jurisdiction", "a.example"],
    ("federation", "add-remote"): ["p.example", "--name", "P", "--url", "http://127.0.0.1:9/"],
    ("federation", "add-region"): ["r.example", "--name", "R"],
    ("federation", "refresh"): [],
    ("federation", "status"): [],
    ("jurisdictions", "calendar"): ["a.example"],
    ("divisions", "list"): ["--jurisdiction", "a.example"],
    ("divisions", "add"): ["pfr", "--name", "Parks", "--jurisdiction", "a.example"],
    ("divisions", "rename"): ["pfr", "--name", "P", "--jurisdiction", "a.example"],
    ("divisions", "remove"): ["pfr", "--jurisdiction", "a.example"],
    ("services", "list"): ["--jurisdiction", "a.example"],
    ("services", "move"): ["X", "--division", "pfr", "--jurisdiction", "a.example"],
    ("services", "moves"): ["--jurisdiction", "a.example"],
    ("services", "levels"): ["X", "resolve=1 business_day", "--jurisdiction", "a.example"],
    ("report", "service-promise"): ["--jurisdiction", "a.example"],
    ("report", "key-metrics"): ["--jurisdiction", "a.example", "--year", "2018"],
}
# Commands that never touch the database.
WITHOUT_DATABASE = {("serve",), ("openapi",), ("conformance",)}


def test_every_database_command_fails_in_one_line(closed_dsn: str) -> None:
    commands = set(_commands(typer.main.get_command(cli)))
    assert commands == set(DATABASE_COMMANDS) | WITHOUT_DATABASE, "a new command: list it here"
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        for path, args in DATABASE_COMMANDS.items():
            result = runner.invoke(cli, [*path, *args], env={"OPEN311_DB__URL": closed_dsn})
            lines = result.stderr.strip().splitlines()
            assert result.exit_code == 1, (path, result.exit_code, result.output)
            assert len(lines) == 1, (path, result.stderr)
            assert lines[0].startswith("Error: cannot connect to the PostgreSQL database"), (
                path,
                lines,
            )
            assert "Traceback" not in result.output
    finally:
        get_settings.cache_clear()
