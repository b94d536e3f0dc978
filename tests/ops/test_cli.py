"""``open311 jurisdictions create`` and ``open311 services import``, plus --help everywhere.

Commands that touch a database run as real processes (on PostGIS and on the embedded
backend); checks that stop before the database run in process through typer's runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner, Result

from app.cli import cli
from app.demo.loader import CATALOG_FILE
from app.domain.catalog_files import read_services_csv
from app.settings import DatabaseSettings, Settings
from app.store.engine import make_engine
from app.store.migrate import upgrade
from app.store.tables import Jurisdiction, ServiceAttribute, ServiceType
from tests.conftest import clear
from tests.ops.server import cli_env, run_cli

CSV_HEADER = (
    "service_code,service_name,description,type,keywords,group,agency_responsible,service_notice"
)


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    if settings.embedded:
        return cli_env(tmp_path, OPEN311_DB__SQLITE_PATH=str(settings.db.sqlite_path))
    return cli_env(tmp_path, OPEN311_DB__URL=settings.db.url)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


async def test_create_a_jurisdiction_and_import_its_catalogue(
    settings: Settings, tmp_path: Path
) -> None:
    env = _env(settings, tmp_path)
    engine = make_engine(settings, null_pool=True)
    await clear(engine)
    try:
        created = run_cli(
            tmp_path,
            "jurisdictions",
            "create",
            "ops.example",
            "--name",
            "Ops City",
            "--timezone",
            "America/Chicago",
            "--accepts-outside",
            env=env,
        )
        assert created.returncode == 0, created.stderr
        assert "Created jurisdiction ops.example (Ops City, America/Chicago)" in created.stdout

        imported = run_cli(
            tmp_path,
            "services",
            "import",
            str(CATALOG_FILE),
            "--jurisdiction",
            "OPS.example",
            env=env,
        )
        assert imported.returncode == 0, imported.stderr
        assert "Imported 22 services into ops.example: 22 new, 0 updated." in imported.stdout

        # CSV: one service renamed (its attributes stay), one new; quoted commas and newlines.
        sheet = tmp_path / "more.csv"
        sheet.write_text(
            f"{CSV_HEADER}\n"
            'TO-0007,"Pothole, renamed",Holes in the road,realtime,"pothole, road",Roads,'
            "Transportation,\n"
            'OPS-1,Noisy neighbour,"Two\nlines",blackbox,,Bylaw,,Call 311 at night\n',
            encoding="utf-8",
        )
        again = run_cli(
            tmp_path, "services", "import", str(sheet), "--jurisdiction", "ops.example", env=env
        )
        assert again.returncode == 0, again.stderr
        assert "Imported 2 services into ops.example: 1 new, 1 updated." in again.stdout

        service, attribute, jurisdiction = (
            ServiceType.__table__,
            ServiceAttribute.__table__,
            Jurisdiction.__table__,
        )
        async with engine.connect() as conn:
            place = (
                (
                    await conn.execute(
                        select(jurisdiction).where(jurisdiction.c.code == "ops.example")
                    )
                )
                .mappings()
                .one()
            )
            rows = {
                r["service_code"]: r
                for r in (
                    await conn.execute(
                        select(service).where(service.c.jurisdiction_id == place["id"])
                    )
                ).mappings()
            }
            kept = (
                await conn.execute(
                    select(attribute.c.code)
                    .where(attribute.c.service_type_id == rows["TO-0007"]["id"])
                    .order_by(attribute.c.position)
                )
            ).scalars()
            kept_codes = list(kept)
        assert (place["name"], place["timezone"], place["accepts_outside"]) == (
            "Ops City",
            "America/Chicago",
            True,
        )
        assert len(rows) == 23
        assert rows["TO-0007"]["service_name"] == "Pothole, renamed"
        assert rows["TO-0007"]["group_name"] == "Roads"
        catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
        pothole = next(s for s in catalog["services"] if s["service_code"] == "TO-0007")
        assert kept_codes == [a["code"] for a in pothole["attributes"]]
        assert kept_codes
        new = rows["OPS-1"]
        assert (new["type"], new["description"], new["keywords"]) == (
            "blackbox",
            "Two\nlines",
            None,
        )
        assert new["service_notice"] == "Call 311 at night"
    finally:
        await clear(engine)
        await engine.dispose()


def test_database_errors_are_one_line_with_the_fix(tmp_path: Path) -> None:
    """A database that was never migrated, an existing code, an unknown jurisdiction."""
    empty = run_cli(
        tmp_path, "jurisdictions", "create", "a.example", "--name", "A", "--timezone", "UTC"
    )
    assert empty.returncode == 1
    assert "no such table" in empty.stderr
    assert "'open311 migrate'" in empty.stderr
    assert "Traceback" not in empty.stderr

    upgrade(Settings(db=DatabaseSettings(sqlite_path=tmp_path / "open311.db")))
    args = ("jurisdictions", "create", "a.example", "--name", "A", "--timezone", "UTC")
    assert run_cli(tmp_path, *args).returncode == 0
    twice = run_cli(
        tmp_path, "jurisdictions", "create", "A.EXAMPLE", "--name", "B", "--timezone", "UTC"
    )
    assert twice.returncode == 1
    assert "Error: jurisdiction 'a.example' exists already" in twice.stderr
    assert "Traceback" not in twice.stderr

    unknown = run_cli(
        tmp_path, "services", "import", str(CATALOG_FILE), "--jurisdiction", "b.example"
    )
    assert unknown.returncode == 2
    assert "Error: no jurisdiction 'b.example'" in unknown.stderr
    assert "open311 jurisdictions create" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_bad_csv_rows_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        "service_code,service_name,type\n"
        "A1,Pothole,realtime\n"
        "A2,,batch\n"
        'B1,"two\nlines",weird\n'
        "\n"
        "A1,Again,\n"
        "C1\n",
        encoding="utf-8",
    )
    result = _invoke("services", "import", str(sheet), "--jurisdiction", "x.example")
    assert result.exit_code == 2
    assert "cannot import bad.csv (4 problems); nothing was imported" in result.output
    for expected in (
        "line 3: service_name is empty",
        "line 4: type 'weird' is not one of realtime, batch, blackbox",
        "line 7: service_code 'A1' is already on line 2",
        "line 8: 1 field, but the header has 3",
    ):
        assert expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("code,name\nA,B\n", "line 1: unknown column(s) 'code', 'name'; the columns are"),
        ("service_code,attributes\nA,x\n", "attributes are imported from JSON only"),
        ("service_code\nA\n", "line 1: the column 'service_name' is missing"),
        ("", "is empty: expected a header row"),
        ("service_code,service_name\n", "has a header but no services"),
    ],
)
def test_bad_csv_headers(tmp_path: Path, content: str, expected: str) -> None:
    sheet = tmp_path / "services.csv"
    sheet.write_text(content, encoding="utf-8")
    result = _invoke("services", "import", str(sheet), "--jurisdiction", "x.example")
    assert result.exit_code == 2
    assert expected in result.output


def test_csv_with_a_byte_order_mark_and_no_optional_columns(tmp_path: Path) -> None:
    sheet = tmp_path / "excel.csv"
    sheet.write_bytes("\ufeffService_Code,Service_Name\nX1, Streetlight out \n".encode())
    assert read_services_csv(sheet) == [
        {"service_code": "X1", "service_name": "Streetlight out", "type": "realtime"}
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"services": [', "is not valid JSON: Expecting value (line 1, column 15)"),
        ("[]", 'expected an object with a "services" list'),
        ('{"services": [{"service_name": "A"}]}', "services[0]: service_code is missing"),
        (
            '{"services": [{"service_code": "A", "service_name": "A", "type": "x"}]}',
            "services[0] (A): type 'x' is not one of",
        ),
        (
            '{"services": [{"service_code": "A", "service_name": "A", "attributes": '
            '[{"code": "Q", "datatype": "color", "order": 1}]}]}',
            "services[0] (A).attributes[0]: datatype 'color' is not one of",
        ),
        (
            '{"services": [{"service_code": "A", "service_name": "A"}, '
            '{"service_code": "A", "service_name": "B"}]}',
            "service_code 'A' appears twice",
        ),
        (
            '{"services": [{"service_code": "A", "service_name": "A", "attributes": '
            '[{"code": "Q", "datatype": "string", "order": 1, "values": '
            '[{"key": "k", "name": "n"}]}]}]}',
            "A/Q: values go with list datatypes only",
        ),
    ],
)
def test_bad_json_catalogues(tmp_path: Path, content: str, expected: str) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(content, encoding="utf-8")
    result = _invoke("services", "import", str(catalog), "--jurisdiction", "x.example")
    assert result.exit_code == 2
    assert expected in result.output
    assert "nothing was imported" in result.output


def test_file_and_argument_errors(tmp_path: Path) -> None:
    missing = _invoke("services", "import", str(tmp_path / "nope.csv"), "--jurisdiction", "x")
    assert (missing.exit_code, "Error: file not found:" in missing.output) == (2, True)
    odd = _invoke("services", "import", str(tmp_path / "catalog.xlsx"), "--jurisdiction", "x")
    assert odd.exit_code == 2
    assert "use --format json or --format csv" in odd.output
    zone = _invoke("jurisdictions", "create", "a.example", "--name", "A", "--timezone", "Mars/Base")
    assert zone.exit_code == 2
    assert "unknown time zone 'Mars/Base'" in zone.output
    code = _invoke("jurisdictions", "create", "a b", "--name", "A", "--timezone", "UTC")
    assert code.exit_code == 2
    assert "'a b' is not a valid jurisdiction_id" in code.output
    no_name = _invoke("jurisdictions", "create", "a.example", "--timezone", "UTC")
    assert no_name.exit_code == 2
    assert "Missing option '--name'" in no_name.output
    # The dry run compares with the database: tests/ops/test_divisions_cli.py runs it.


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    # typer ships its own copy of click: walk the group by duck typing.
    found: list[tuple[tuple[str, ...], Any]] = [(path, group)]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_help_everywhere() -> None:
    commands = _commands(typer.main.get_command(cli))
    names = {" ".join(path) for path, _ in commands}
    assert {"jurisdictions create", "services import", "worker", "serve", "migrate"} <= names
    for path, command in commands:
        summary = (command.help or "").strip().splitlines()
        assert summary, f"'{' '.join(path)}' has no help text"
        result = _invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        flat = " ".join(result.output.split())
        assert " ".join(summary[0].split()[:4]) in flat, (path, result.output)
