"""``open311 divisions``, ``services move|moves|levels|list``, ``services import --division
--dry-run``, ``jurisdictions calendar`` and ``keys create --channel``, as real processes on
PostGIS and on the embedded backend."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from sqlalchemy import select

from app.domain.api_keys import verify_key
from app.settings import Settings
from app.store.engine import make_engine
from app.store.tables import Division, Jurisdiction, ServiceMove, ServiceType
from tests.conftest import CATALOG, clear
from tests.ops.server import run_cli
from tests.ops.test_cli import _env

J = "ops.example"


async def test_divisions_moves_levels_and_onboarding_from_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    env = _env(settings, tmp_path)
    engine = make_engine(settings, null_pool=True)
    await clear(engine)

    def cli(*args: str, code: int = 0) -> str:
        done = run_cli(tmp_path, *args, env=env)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stdout if code == 0 else done.stderr

    async def divisions() -> dict[str, str]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Division.__table__.c.code, Division.__table__.c.name))
            return {str(code): str(name) for code, name in rows}

    try:
        cli("jurisdictions", "create", J, "--name", "Ops City", "--timezone", "America/Toronto")
        cli("services", "import", str(CATALOG), "--jurisdiction", J)
        assert "Added division roads (Transportation Services)." in cli(
            "divisions", "add", "Roads", "--name", "Transportation Services", "--jurisdiction", J
        )
        taken = cli("divisions", "add", "roads", "--name", "Other", "--jurisdiction", J, code=2)
        assert "Error: A division 'roads' exists already." in taken

        moved = cli(
            "services",
            "move",
            "POTHOLE",
            "--division",
            "roads",
            "--reason",
            "Road crews",
            "--jurisdiction",
            J,
        )
        user = getpass.getuser()
        assert "Moved POTHOLE from (no division) to roads (Transportation Services)" in moved
        assert f"recorded as moved by cli ({user})" in moved
        assert "is in roads already" in cli(
            "services", "move", "POTHOLE", "--division", "roads", "--jurisdiction", J
        )
        assert "Error: No division 'parks'" in cli(
            "services", "move", "POTHOLE", "--division", "parks", "--jurisdiction", J, code=2
        )
        assert "Division roads is now named 'Transportation'." in cli(
            "divisions", "rename", "roads", "--name", "Transportation", "--jurisdiction", J
        )
        assert "POTHOLE: service levels acknowledge=1 business_day; resolve=5 business_days." in (
            cli(
                "services",
                "levels",
                "POTHOLE",
                "resolve=5 business_days; acknowledge=1 business day",
                "--jurisdiction",
                J,
            )
        )
        bad_levels = cli(
            "services", "levels", "POTHOLE", "resolve=5 weeks", "--jurisdiction", J, code=2
        )
        assert "service_levels:" in bad_levels
        listed = cli("services", "list", "--jurisdiction", J)
        assert (
            "POTHOLE\tPothole\troads\tacknowledge=1 business_day; resolve=5 business_days"
            in listed.splitlines()
        )

        # Onboarding Parks: the dry run shows the diff and writes nothing.
        sheet = tmp_path / "parks.csv"
        sheet.write_text(
            "service_code,service_name,service_levels\n"
            "PFR-1,Park washroom cleaning,resolve=3 business_days\n"
            "POTHOLE,Pothole,\n",
            encoding="utf-8",
        )
        onboard = (
            "services",
            "import",
            str(sheet),
            "--jurisdiction",
            J,
            "--division",
            "pfr",
            "--division-name",
            "Parks, Forestry & Recreation",
        )
        dry = cli(*onboard, "--dry-run")
        assert "parks.csv: 2 services, no problems found (dry run)." in dry
        assert "  + division pfr: 'Parks, Forestry & Recreation' (new)" in dry
        assert "  + PFR-1  Park washroom cleaning [pfr]" in dry
        assert "  > POTHOLE  Pothole: moved from roads to pfr" in dry
        assert (
            "      service_levels: 'acknowledge=1 business_day; resolve=5 business_days' -> (none)"
            in dry
        )
        assert (
            "Would import into ops.example: 1 added, 0 changed, 1 moved, 0 removed, 0 unchanged; "
            "nothing was written." in dry
        )
        # Ops City has no calendar: the import says what its business-day targets miss.
        assert "  ! ops.example has no business calendar" in dry
        assert await divisions() == {"roads": "Transportation"}

        applied = cli(*onboard)
        assert "Imported 2 services into ops.example: 1 new, 1 updated." in applied
        assert "Changes: 1 added, 0 changed, 1 moved, 0 removed, 0 unchanged." in applied
        assert await divisions() == {
            "roads": "Transportation",
            "pfr": "Parks, Forestry & Recreation",
        }
        service, move = ServiceType.__table__, ServiceMove.__table__
        async with engine.connect() as conn:
            levels = dict(
                (await conn.execute(select(service.c.service_code, service.c.service_levels))).all()
            )
            moves = (
                await conn.execute(
                    select(
                        move.c.from_code, move.c.to_code, move.c.moved_by, move.c.reason
                    ).order_by(move.c.id)
                )
            ).all()
        assert levels["PFR-1"] == "resolve=3 business_days"
        assert levels["POTHOLE"] is None
        assert [tuple(m) for m in moves] == [
            (None, "roads", f"cli ({user})", "Road crews"),
            (None, "pfr", f"cli ({user}) (import)", None),
            ("roads", "pfr", f"cli ({user}) (import)", None),
        ]
        history = cli("services", "moves", "POTHOLE", "--jurisdiction", J).splitlines()
        assert [line.split("\t")[1:4] for line in history] == [
            ["POTHOLE", "roads -> pfr", f"cli ({user}) (import)"],
            ["POTHOLE", "- -> roads", f"cli ({user})"],
        ]
        assert "Removed division roads." in cli("divisions", "remove", "roads", "--jurisdiction", J)
        assert cli("divisions", "list", "--jurisdiction", J).splitlines() == [
            "pfr\tParks, Forestry & Recreation\t2 services\t-"
        ]

        # The business calendar: none, then stored (checked), then shown.
        assert cli("jurisdictions", "calendar", J).splitlines() == [f"{J}: calendar none"]
        calendar = tmp_path / "calendar.json"
        calendar.write_text(
            json.dumps(
                {
                    "timezone": "America/Toronto",
                    "hours": "Mon-Fri 08:30-16:30",
                    "holidays": {"country": "CA", "subdivision": "ON"},
                    "closures": ["2026-12-24"],
                }
            ),
            encoding="utf-8",
        )
        stored = cli("jurisdictions", "calendar", J, "--set", str(calendar))
        assert stored.startswith(f"{J}: calendar stored\n")
        assert json.loads(stored.split("\n", 1)[1])["closures"] == ["2026-12-24"]
        calendar.write_text('{"timezone": "Mars/Base", "hours": "Mon 09:00-17:00"}', "utf-8")
        assert "not an IANA time zone" in cli(
            "jurisdictions", "calendar", J, "--set", str(calendar), code=2
        )
        async with engine.connect() as conn:
            kept = (
                await conn.execute(
                    select(Jurisdiction.__table__.c.business_calendar).where(
                        Jurisdiction.__table__.c.code == J
                    )
                )
            ).scalar_one()
        assert kept["hours"] == "Mon-Fri 08:30-16:30"

        # Keys carry their intake channel.
        created = cli("keys", "create", "Contact Centre", "--scope", "submit", "--channel", "Phone")
        key = created.strip().splitlines()[-1]
        async with engine.connect() as conn:
            assert (await verify_key(conn, key)).channel == "phone"
        assert any(
            line.endswith("channel phone\tactive") for line in cli("keys", "list").splitlines()
        )
        assert "channel 'fax' is not one of phone, web" in cli(
            "keys", "create", "X", "--channel", "fax", code=2
        )
    finally:
        await clear(engine)
        await engine.dispose()
