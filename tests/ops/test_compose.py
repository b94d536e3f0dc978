"""docker-compose.yml, checked the way ``docker compose config`` would (no Docker here).

Every command must parse as a real ``open311`` command line, and every variable the file
uses must be in ``.env.example``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel

from app.cli import cli
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $${VAR} is escaped.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            pairs[key.strip()] = value
    return pairs


def _pending(ctx: Any) -> list[str]:
    # The arguments left after a group parsed its own (typer vendors click 8.2's Context).
    return [*getattr(ctx, "_protected_args", []), *ctx.args]


def _parse_open311(args: list[str]) -> list[str]:
    """Parse an ``open311`` command line with the real CLI; the command path it names."""
    assert args[0] == "open311", args
    command: Any = typer.main.get_command(cli)
    ctx = command.make_context("open311", list(args[1:]))
    path = []
    rest = _pending(ctx)
    while hasattr(command, "commands"):
        assert rest, f"{args}: a group needs a subcommand"
        name, sub, rest = command.resolve_command(ctx, rest)
        path.append(name)
        # Parsing checks that every option and argument exists and has the right type.
        ctx = sub.make_context(name, list(rest), parent=ctx)
        rest = _pending(ctx)
        command = sub
    assert not rest, f"{args}: unexpected arguments {rest}"
    return path


def test_services_and_structure(compose: dict[str, Any]) -> None:
    assert set(compose) <= TOP_LEVEL, set(compose) - TOP_LEVEL
    services = compose["services"]
    assert {"db", "migrate", "api", "worker"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in (compose.get("volumes") or {}), f"undeclared volume {source}"


def test_database_image_is_pinned_and_checked(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    image, _, tag = db["image"].rpartition(":")
    assert image == "postgis/postgis"
    assert tag != "latest"
    assert re.fullmatch(r"\d+-\d+(\.\d+)*", tag), db["image"]
    check = db["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(check["test"])
    assert {"interval", "timeout", "retries"} <= set(check)
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_migrations_run_once_before_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert _parse_open311(migrate["command"]) == ["migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["restart"] in ("unless-stopped", "always")
    assert _parse_open311(services["api"]["command"]) == ["serve"]
    assert _parse_open311(services["worker"]["command"]) == ["worker"]


def test_app_services_share_image_and_configuration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    app_services = [services[n] for n in ("migrate", "api", "worker")]
    for service in app_services:
        assert service["env_file"] == ".env"
        assert service["environment"]["OPEN311_DB__URL"].startswith("postgresql://")
        assert "@db:5432/" in service["environment"]["OPEN311_DB__URL"]
    for key in ("build", "image", "env_file"):
        assert len({repr(s.get(key)) for s in app_services}) == 1, f"{key} differs"
    # The same environment, except that the API leaves the worker to the worker service.
    api_environment = dict(services["api"]["environment"])
    assert api_environment.pop("OPEN311_WORKER__IN_PROCESS") == "false"
    for service in (services["migrate"], services["worker"]):
        assert service["environment"] == api_environment
    assert Settings.model_validate({"worker": {"in_process": "false"}}).worker.in_process is False


def test_every_command_is_an_open311_command(compose: dict[str, Any]) -> None:
    commands = [s["command"] for s in compose["services"].values() if "command" in s]
    assert len(commands) == 3
    for command in commands:
        assert isinstance(command, list), "exec form: no shell between Docker and open311"
        _parse_open311(command)
    with pytest.raises(Exception, match="No such command"):
        _parse_open311(["open311", "serv"])
    with pytest.raises(Exception, match="No such option"):
        _parse_open311(["open311", "serve", "--hots", "0.0.0.0"])  # noqa: S104 - a test setting, not a bind
    with pytest.raises(Exception, match="valid integer"):
        _parse_open311(["open311", "serve", "--port", "eighty"])


def test_published_port_is_the_served_port(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    command = api["command"]
    port = command[command.index("--port") + 1]
    host, _, container = api["ports"][0].rpartition(":")
    assert container == port == "8000"
    assert host
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - a test setting, not a bind
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])
    assert "ports" not in compose["services"]["worker"]
    assert "ports" not in compose["services"]["db"]


def test_env_example_has_every_variable_the_compose_file_uses() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = {m.group(1) for m in VARIABLE.finditer(text)}
    assert {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"} <= used
    example = _env_example()
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    # $${VAR} is passed to the container's shell, not interpolated by compose.
    assert "$${POSTGRES_USER}" in text


def test_env_example_settings_exist() -> None:
    """Every OPEN311_* line of .env.example names a real setting (and validates)."""
    example = {k: v for k, v in _env_example().items() if k.startswith("OPEN311_")}
    assert example
    for key in example:
        model: Any = Settings
        for part in key.removeprefix("OPEN311_").lower().split("__"):
            assert isinstance(model, type), key
            assert issubclass(model, BaseModel), key
            assert part in model.model_fields, f"{key}: no setting {part!r}"
            model = model.model_fields[part].annotation
    nested: dict[str, Any] = {}
    for key, value in example.items():
        *groups, leaf = key.removeprefix("OPEN311_").lower().split("__")
        target = nested
        for group in groups:
            target = target.setdefault(group, {})
        target[leaf] = value
    settings = Settings.model_validate(nested)
    assert settings.log_format == "json"
    assert settings.environment == "production"
