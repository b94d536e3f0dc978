"""``open311 translations import``: checked, bounded, all or nothing; the CLI as a real process
(embedded database) and the import's checks on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.domain.catalog_translations import (
    MAX_FILE_BYTES,
    MAX_ROWS,
    TranslationFileError,
    import_translations,
    parse_translations,
    read_translations_csv,
)
from app.main import create_app
from app.settings import DatabaseSettings, Settings, WorkerSettings
from tests.conftest import Seed, engine_of
from tests.support import fetch_both

HEADER = "locale,service_code,attribute_code,value_key,field,text\n"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPEN311_DB__SQLITE_PATH": str(tmp_path / "cli.db")}
    env.pop("OPEN311_DB__URL", None)
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


async def _toronto_services(tmp_path: Path, locale: str) -> tuple[str, dict[str, str]]:
    """(Content-Language, code -> service_name) of Toronto's services in ``locale``."""
    settings = Settings(
        db=DatabaseSettings(sqlite_path=tmp_path / "cli.db"),
        worker=WorkerSettings(in_process=False),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            both = await fetch_both(http, "services", {"locale": locale})
    language = both.json_response.headers["content-language"]
    return language, {s["service_code"]: s["service_name"] for s in both.json}


async def test_cli_import_dry_run_then_for_real(tmp_path: Path) -> None:
    assert _run(tmp_path, "demo", "--no-requests", "--no-sudbury").returncode == 0
    _, english = await _toronto_services(tmp_path, "en")
    path = tmp_path / "fr.csv"
    path.write_text(
        HEADER
        + "fr,TO-0007,,,service_name,Nid-de-poule ou chaussée endommagée\n"
        + "fr,30102,,,service_name,Signaler un petit nid-de-poule\n",
        encoding="utf-8",
    )
    dry = _run(
        tmp_path, "translations", "import", str(path), "--jurisdiction", "toronto.ca", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "2 translations for toronto.ca in fr (2), no problems found (dry run" in dry.stdout
    assert await _toronto_services(tmp_path, "fr") == ("en", english)  # nothing written

    done = _run(tmp_path, "translations", "import", str(path), "--jurisdiction", "toronto.ca")
    assert done.returncode == 0, done.stderr
    assert "Imported 2 translations into toronto.ca (fr (2)): 2 new, 0 changed, 0 removed" in (
        done.stdout
    )
    language, french = await _toronto_services(tmp_path, "fr")
    assert language == "fr"
    assert french == {
        **english,
        "TO-0007": "Nid-de-poule ou chaussée endommagée",
        "30102": "Signaler un petit nid-de-poule",
    }

    # Again: unchanged; an empty text removes one.
    again = _run(tmp_path, "translations", "import", str(path), "--jurisdiction", "toronto.ca")
    assert "0 new, 0 changed, 0 removed, 2 unchanged" in again.stdout
    path.write_text(HEADER + "fr,30102,,,service_name,\n", encoding="utf-8")
    removed = _run(tmp_path, "translations", "import", str(path), "--jurisdiction", "toronto.ca")
    assert "0 new, 0 changed, 1 removed" in removed.stdout
    _, french = await _toronto_services(tmp_path, "fr")
    assert french["30102"] == english["30102"]
    assert french["TO-0007"] == "Nid-de-poule ou chaussée endommagée"


def test_cli_refuses_a_wrong_file_and_writes_nothing(tmp_path: Path) -> None:
    assert _run(tmp_path, "demo", "--no-requests", "--no-sudbury").returncode == 0
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "fr,TO-0007,,,service_name,Nid-de-poule\n"  # fine, but the file has problems
        + "fr,NOPE,,,service_name,Inconnu\n",
        encoding="utf-8",
    )
    result = _run(tmp_path, "translations", "import", str(path), "--jurisdiction", "toronto.ca")
    assert result.returncode == 2
    assert "cannot import bad.csv (1 problem); nothing was imported" in result.stderr
    assert "line 3: service_code 'NOPE' is not a service of toronto.ca" in result.stderr
    unknown = _run(tmp_path, "translations", "import", str(path), "--jurisdiction", "x.example")
    assert unknown.returncode == 2
    assert "no jurisdiction 'x.example'" in unknown.stderr
    missing = _run(tmp_path, "translations", "import", "nope.csv", "--jurisdiction", "toronto.ca")
    assert missing.returncode == 2
    assert "file not found" in missing.stderr


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("fr,POTHOLE,,,service_name,A,extra\n", "line 2: 7 fields, but the header has 6"),
        (",POTHOLE,,,service_name,A\n", "line 2: locale is empty"),
        ("f r,POTHOLE,,,service_name,A\n", "line 2: locale 'f r' is not a language tag"),
        ("xx,POTHOLE,,,service_name,A\n", "line 2: locale 'xx' is not a language CLDR knows"),
        ("fr,,,,service_name,A\n", "line 2: service_code is empty"),
        (
            "fr,POTHOLE,,,name,A\n",
            "line 2: field 'name' is not a text of a service; use one of service_name, "
            "description, keywords, group",
        ),
        (
            "fr,POTHOLE,SIZE,,service_name,A\n",
            "line 2: field 'service_name' is not a text of an attribute",
        ),
        ("fr,POTHOLE,,SMALL,name,A\n", "line 2: value_key 'SMALL' needs the attribute_code"),
        (
            "fr,POTHOLE,,,service_name," + "a" * 256 + "\n",
            "line 2: text is longer than 255 characters (the service_name)",
        ),
        (
            "fr,POTHOLE,,,group,A\nfr,POTHOLE,,,group,B\n",
            "line 3: the same text as line 2",
        ),
    ],
)
def test_file_problems_are_reported_with_their_line(rows: str, problem: str) -> None:
    with pytest.raises(TranslationFileError) as caught:
        parse_translations(HEADER + rows, "t.csv")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "t.csv is empty: expected a header row"),
        (HEADER, "t.csv has a header but no translations"),
        ("locale,service_code,text,colour\n", "line 1: unknown column(s) 'colour'"),
        ("locale,service_code,text\n", "line 1: the column 'field' is missing"),
        ("locale,locale,service_code,field,text\n", "line 1: column(s) locale appear twice"),
        (HEADER + 'fr,POTHOLE,,,group,"unclosed\n', "line 2: unexpected end of data"),
    ],
)
def test_header_problems(text: str, problem: str) -> None:
    with pytest.raises(TranslationFileError) as caught:
        parse_translations(text, "t.csv")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_bounds_are_checked_before_the_work(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # never read: refused by its size
    with pytest.raises(TranslationFileError) as caught:
        read_translations_csv(big)
    assert caught.value.problems == [
        f"big.csv is {MAX_FILE_BYTES + 1} bytes: at most {MAX_FILE_BYTES} bytes can be imported"
    ]
    many = HEADER + "".join(f"fr,S{i},,,service_name,N{i}\n" for i in range(MAX_ROWS + 5))
    with pytest.raises(TranslationFileError) as caught:
        parse_translations(many, "many.csv")
    assert (
        caught.value.problems[-1]
        == f"line {MAX_ROWS + 2}: more than {MAX_ROWS} rows; split the file"
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "fr,POTHOLE,,,group,Rues é\n").encode("latin-1"))
    with pytest.raises(TranslationFileError, match="not UTF-8 text"):
        read_translations_csv(latin)


async def test_what_the_file_names_must_exist(client: httpx.AsyncClient, seeded: Seed) -> None:
    rows = parse_translations(
        HEADER
        + "fr,NOPE,,,service_name,A\n"
        + "fr,POTHOLE,COLOUR,,description,A\n"
        + "fr,POTHOLE,DEPTH,CM,name,A\n"
        + "fr,POTHOLE,SIZE,HUGE,name,A\n"
        + "en,POTHOLE,,,service_name,Pothole!\n"
        + "fr,POTHOLE,SIZE,SMALL,name,Petit\n",
        "t.csv",
    )
    engine = engine_of(client)
    with pytest.raises(TranslationFileError) as caught:
        await import_translations(engine, seeded.jurisdiction_pk, seeded.jurisdiction_id, rows)
    code = seeded.jurisdiction_id
    assert caught.value.problems == [
        f"line 2: service_code 'NOPE' is not a service of {code}",
        "line 3: POTHOLE has no attribute 'COLOUR'",
        "line 4: attribute 'DEPTH' of POTHOLE has no values (datatype number)",
        "line 5: attribute 'SIZE' of POTHOLE has no value 'HUGE'",
        f"line 6: {code}'s services are written in en: change them with 'open311 services "
        "import' instead",
    ]
    # Nothing was written: the good row is not served.
    both = await fetch_both(client, "services/POTHOLE", {"locale": "fr"})
    assert both.json_response.headers["content-language"] == "en"
