"""The README's command table is the CLI's (issue 21, point 6): it cannot drift.

Every command and subcommand of ``open311`` appears in the table of "The `open311`
command", every command the table names exists, and every ``--option`` it shows is an option
of that command. The API key scopes are listed in full where they are described.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from app.cli import cli
from app.domain.api_keys import SCOPES
from app.store.tables import ApiKey

README = Path(__file__).resolve().parents[2] / "README.md"
CODE_SPAN = re.compile(r"`([^`]+)`")
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def _leaves(group: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    # typer ships its own copy of click: walk the group by duck typing.
    found: dict[tuple[str, ...], Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(_leaves(command, (*path, name)))
        else:
            found[(*path, name)] = command
    return found


def _table_rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The `open311` command", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no command table under '## The `open311` command'"
    return rows


def _first_cell(row: str) -> str:
    # Cells are split on '|' that is not escaped ('\|' separates choices inside a span).
    return re.split(r"(?<!\\)\|", row)[1]


def _resolve(root: Any, span: str) -> tuple[tuple[str, ...], Any]:
    """The command a README code span names (``open311 keys rotate ID`` -> keys rotate)."""
    words = span.split()
    if words[0] == "open311":
        words = words[1:]
    node, path = root, ()
    for word in words:
        if not hasattr(node, "commands") or word not in node.commands:
            break
        node, path = node.commands[word], (*path, word)
    assert path, f"README names no command: `{span}`"
    assert not hasattr(node, "commands"), f"README names no command: `{span}`"
    return path, node


def _documented(root: Any) -> dict[tuple[str, ...], set[str]]:
    """Command path -> the options the README shows for it."""
    documented: dict[tuple[str, ...], set[str]] = {}
    for row in _table_rows():
        for span in CODE_SPAN.findall(_first_cell(row)):
            path, command = _resolve(root, span)
            assert path not in documented, f"`{' '.join(path)}` is in the table twice"
            options = set(OPTION.findall(span))
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            assert options <= known, (path, sorted(options - known))
            documented[path] = options
    return documented


def test_every_command_is_in_the_readme_table_and_nothing_else() -> None:
    root = typer.main.get_command(cli)
    commands = _leaves(root)
    assert {("services", "import"), ("jurisdictions", "create")} <= set(commands)
    documented = _documented(root)
    missing = sorted(" ".join(p) for p in set(commands) - set(documented))
    assert not missing, f"open311 commands missing from the README table: {missing}"
    assert set(documented) == set(commands)


def test_the_table_check_catches_drift() -> None:
    root = typer.main.get_command(cli)
    for span in ("open311 keys forge ID", "open311 keys", "open311 serv"):
        with pytest.raises(AssertionError, match="README names no command"):
            _resolve(root, span)
    path, command = _resolve(root, "open311 serve [--host --port]")
    assert path == ("serve",)
    assert "--port" in {o for p in command.params for o in p.opts}


def test_every_scope_is_named_where_keys_are_described() -> None:
    docstring = ApiKey.__doc__ or ""
    keys_row = next(r for r in _table_rows() if r.startswith("| `open311 keys create"))
    create_help = next(
        p.help
        for p in typer.main.get_command(cli).commands["keys"].commands["create"].params
        if p.name == "scope"
    )
    for scope in SCOPES:
        assert f"``{scope}``" in docstring, scope
        assert scope in keys_row, scope
        assert scope in create_help, scope
