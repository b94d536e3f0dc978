"""How the ``open311`` command answers a failure: one line on stderr, a non-zero exit.

Every command runs inside ``Open311Group.invoke``: an exception that escapes a command is
explained here once (what failed, where, what to do), instead of a Python traceback.
``open311 --debug COMMAND`` prints the traceback too. Exit codes: 2 for what the caller can fix
in the command line, a file or the configuration; 1 for a failure at run time (a database that
cannot be reached or used, anything unexpected).
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import typer
from typer._click.exceptions import ClickException  # typer's own click (it vendors one)
from typer.core import TyperGroup

# Exits and usage errors are click's own business: it prints them and picks the exit code.
PASS_THROUGH: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    ClickException,
)
DB_URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


@dataclass(frozen=True, slots=True)
class Failure:
    """One line for the person at the terminal and the exit code."""

    message: str
    exit_code: int = 1


class Open311Group(TyperGroup):
    """The top-level group: the subcommand runs inside one exception handler."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PASS_THROUGH:
            raise
        except Exception as exc:
            failure = explain(exc)
            if ctx.params.get("debug"):
                traceback.print_exception(exc, file=sys.stderr)
            typer.echo(f"Error: {failure.message}", err=True)
            raise typer.Exit(failure.exit_code) from exc


def _where() -> str:
    """The database the settings name (never the password), or a fallback."""
    try:
        from app.settings import get_settings

        settings = get_settings()
    except Exception:
        return "database"
    if settings.embedded:
        return f"embedded SQLite database {settings.db.sqlite_path}"
    return "PostgreSQL database " + settings.database_url.split("@")[-1]


def _configured_url() -> str:
    try:
        from app.settings import get_settings

        return get_settings().db.url
    except Exception:
        return ""


def _first_line(value: object, limit: int = 200) -> str:
    lines = str(value).strip().splitlines()
    return (lines[0] if lines else type(value).__name__)[:limit].rstrip(".")


def explain(exc: BaseException) -> Failure:
    """What to tell the person who ran the command, for any exception."""
    from pydantic import ValidationError

    from app.errors import Open311Error
    from app.store.errors import is_bad_url

    if isinstance(exc, Open311Error):
        return Failure("; ".join(exc.descriptions), 2)
    if isinstance(exc, ValidationError):
        problem = exc.errors()[0]
        name = "OPEN311_" + "__".join(str(part) for part in problem["loc"]).upper()
        return Failure(
            f"invalid configuration: {name}: {problem['msg']}. Fix the environment variable "
            "(or .env).",
            2,
        )
    url = _configured_url()
    if is_bad_url(exc) or (
        isinstance(exc, ModuleNotFoundError) and url and not url.startswith("postgres")
    ):
        return Failure(
            f"OPEN311_DB__URL is not a database URL this server can use ({_first_line(exc)}): "
            f"set it to {DB_URL_EXAMPLE}, or leave it empty for the embedded SQLite database.",
            2,
        )
    # Alembic is not imported here unless it ran (importing it logs its plugins).
    alembic_errors = sys.modules.get("alembic.util.exc")
    if alembic_errors is not None and isinstance(exc, alembic_errors.CommandError):
        return Failure(
            f"cannot migrate the {_where()}: {_first_line(exc)}. 'open311 migrate' with no "
            "revision upgrades to the newest.",
            2,
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or _first_line(exc)
        return Failure(f"cannot open {exc.filename}: {reason}. Check the path.", 2)
    if isinstance(exc, json.JSONDecodeError):
        return Failure(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}). Fix the file.", 2
        )
    if isinstance(exc, UnicodeDecodeError):
        return Failure(f"a file is not UTF-8 text ({exc.reason}). Save it as UTF-8.", 2)
    database = _database_failure(exc)
    if database is not None:
        return database
    return Failure(
        f"{type(exc).__name__}: {_first_line(exc)}. This is unexpected: run the command again "
        "with 'open311 --debug ...' for the traceback, and report it."
    )


def _database_failure(exc: BaseException) -> Failure | None:
    """A database that cannot be reached (or used): say which and what to check."""
    from app.store.errors import database_fault

    fault = database_fault(exc)
    if fault is None:
        return None
    if fault.kind == "connect":
        cause = fault.cause
        detail = _first_line(cause) if str(cause).strip() else type(cause).__name__
        return Failure(
            f"cannot connect to the {_where()}: {detail}. Is it running and reachable, and "
            f"is OPEN311_DB__URL right ({DB_URL_EXAMPLE})?"
        )
    return Failure(
        f"cannot use the {_where()}: {_first_line(fault.cause)}. Is it running, and migrated "
        "('open311 migrate')?"
    )
