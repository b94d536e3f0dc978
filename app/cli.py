"""The ``open311`` command: serve, migrate, load the demo, manage API keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from app.cli_errors import Open311Group
from app.domain.catalog_files import CSV_COLUMNS, CatalogFileError
from app.settings import Settings, get_settings

# Every command runs inside Open311Group's handler: a failure is one line on stderr and a
# non-zero exit (app/cli_errors.py); `open311 --debug COMMAND` adds the traceback.
cli = typer.Typer(help="Open311 GeoReport v2 server.", no_args_is_help=True, cls=Open311Group)
keys_cli = typer.Typer(help="API keys of client apps.", no_args_is_help=True)
jurisdictions_cli = typer.Typer(help="Jurisdictions served.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(jurisdictions_cli, name="jurisdictions")
boundaries_cli = typer.Typer(
    help="Boundary sets (wards) and ward assignment.", no_args_is_help=True
)
cli.add_typer(boundaries_cli, name="boundaries")

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.domain.catalog_translations import ImportReport
    from app.domain.jurisdictions import JurisdictionInfo


@cli.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a command fails.")
    ] = False,
) -> None:
    """Open311 GeoReport v2 server."""


T = TypeVar("T")


def _with_engine(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    from app.store.engine import make_engine

    async def run() -> T:
        engine = make_engine(settings, null_pool=True)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _where(settings: Settings) -> str:
    if settings.embedded:
        return f"embedded SQLite database {settings.db.sqlite_path}"
    return "PostgreSQL database " + settings.database_url.split("@")[-1]


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or upgrade the database schema (Alembic)."""
    from app.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings, revision)
    typer.echo(f"Migrated the {_where(settings)} to {revision}.")


@cli.command()
def demo(
    requests: Annotated[
        bool, typer.Option(help="Also load the 1000 captured Toronto 2018 requests.")
    ] = True,
    api_key: Annotated[
        str | None,
        typer.Option(help="Also create a demo API key with this value (if it does not exist)."),
    ] = None,
    original_dates: Annotated[
        bool,
        typer.Option(
            "--original-dates",
            help="Keep the captured 2018 dates (by default every request is moved forward by "
            "whole days so that the newest was made yesterday).",
        ),
    ] = False,
    sudbury: Annotated[
        bool,
        typer.Option(
            help="Also load Greater Sudbury, a second jurisdiction: its 12 wards and an "
            "illustrative service list in English and French."
        ),
    ] = True,
    reports_key: Annotated[
        str | None,
        typer.Option(
            help="Also create a demo key with the reports scope with this value (for the "
            "report pages, /web/reports/key-metrics.html?api_key=...)."
        ),
    ] = None,
) -> None:
    """Load the demo (Toronto: services, requests; Greater Sudbury, bilingual); safe to run
    again."""
    from app.demo.loader import load_demo, load_sudbury_demo
    from app.domain.api_keys import ensure_key
    from app.store.migrate import upgrade

    for name, value in (("--api-key", api_key), ("--reports-key", reports_key)):
        if value is not None and len(value) < 8:
            raise _fail(f"{name} {value!r} is too short: use at least 8 characters.")
    settings = get_settings()
    upgrade(settings)

    async def work(engine: AsyncEngine) -> None:
        report = await load_demo(
            engine,
            with_requests=requests,
            tolerance_m=settings.wards.tolerance_m,
            original_dates=original_dates,
        )
        typer.echo(
            f"Demo jurisdiction {report.jurisdiction}: {report.services} services, "
            f"{report.requests_added} requests added, {report.requests_skipped} already present "
            f"({_where(settings)})."
        )
        if requests:
            moved = (
                "kept at their captured 2018 dates"
                if original_dates
                else f"moved forward {report.days_moved} days so the newest was made yesterday "
                "(--original-dates keeps 2018)"
            )
            redated = ""
            if report.requests_redated:
                redated = f"; {report.requests_redated} stored ones re-dated"
            typer.echo(f"Request dates {moved}{redated}.")
        typer.echo(
            f"Embedded geocoder of {report.jurisdiction}: {report.address_points} address "
            "points (the captured requests' own addresses)."
        )
        if sudbury:
            second = await load_sudbury_demo(engine, tolerance_m=settings.wards.tolerance_m)
            typer.echo(
                f"Demo jurisdiction {second.jurisdiction}: {second.services} services in "
                f"English, {second.translations} French texts, 12 wards; reach it with "
                f"jurisdiction_id={second.jurisdiction}."
            )
            if not settings.default_jurisdiction:
                typer.echo(
                    f"Two jurisdictions: serve with OPEN311_DEFAULT_JURISDICTION="
                    f"{report.jurisdiction} (make run does) to answer calls without "
                    "jurisdiction_id for it; without it they need jurisdiction_id."
                )
        if api_key:
            async with engine.begin() as conn:
                await ensure_key(conn, "demo", api_key)
            typer.echo(f"Demo API key: {api_key}")
        if reports_key:
            async with engine.begin() as conn:
                await ensure_key(conn, "demo reports", reports_key, scopes=["reports"])
            typer.echo(
                f"Demo reports key: {reports_key} (e.g. /web/reports/key-metrics.html?"
                f"api_key={reports_key})"
            )

    _with_engine(settings, work)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
) -> None:
    """Run the HTTP server (uvicorn)."""
    import uvicorn

    settings = get_settings()
    typer.echo(
        f"Serving GeoReport v2 at http://{host}:{port}{settings.base_path}/discovery.json "
        f"on the {_where(settings)}."
    )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level=settings.log_level,
        # X-Forwarded-For is believed only from OPEN311_HTTP__TRUSTED_PROXIES, by the app
        # itself (app.main); uvicorn's own handling would believe any caller on loopback.
        proxy_headers=False,
    )


@cli.command()
def worker(
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
) -> None:
    """Run the background worker (batch submissions, webhook deliveries) until stopped."""
    import signal

    from app.worker import Worker

    settings = get_settings()

    async def work(engine: AsyncEngine) -> None:
        from app.store.engine import ping

        # Fail at once (one line) when the database cannot be used; later outages are
        # waited out by the loop.
        await ping(engine)
        loop_worker = Worker(engine, settings)
        if once:
            from app.domain.webhooks import delivery_client

            async with delivery_client(settings) as client:
                try:
                    typer.echo(f"{await loop_worker.run_once(client)} items processed.")
                finally:
                    await loop_worker.aclose()
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"Worker running on the {_where(settings)}; Ctrl-C stops it.")
        await loop_worker.run(stop)

    _with_engine(settings, work)


@cli.command("export")
def export(
    output: Annotated[Path, typer.Option(help="The file to write (replaced when complete).")],
    format: Annotated[str, typer.Option(help="csv, geojson or ndjson.")] = "csv",
    jurisdiction: Annotated[
        str | None, typer.Option(help="jurisdiction_id (default: the default one).")
    ] = None,
    service_code: Annotated[
        list[str] | None, typer.Option(help="Service codes (repeat or comma-separate).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="open, closed or both.")] = None,
    start_date: Annotated[str | None, typer.Option(help="Earliest requested (W3C).")] = None,
    end_date: Annotated[str | None, typer.Option(help="Latest requested (W3C).")] = None,
    updated_after: Annotated[str | None, typer.Option(help="Earliest updated (W3C).")] = None,
    updated_before: Annotated[str | None, typer.Option(help="Latest updated (W3C).")] = None,
    ward: Annotated[list[str] | None, typer.Option(help="Ward codes.")] = None,
    extensions: Annotated[bool, typer.Option(help="Add the ward and channel fields.")] = False,
) -> None:
    """Export requests (public fields, every match, GET requests' filters) to a file."""
    import os

    from app.api.filters import parse_filters
    from app.domain.catalog import CatalogCache
    from app.domain.exports import count_matching, encode, export_batches
    from app.georeport.exports import ExportFormat
    from app.georeport.params import Parameters
    from app.store import open_store

    try:
        fmt = ExportFormat(format.lower())
    except ValueError:
        typer.echo(f"Unknown format {format!r}: use csv, geojson or ndjson.", err=True)
        raise typer.Exit(2) from None
    pairs: list[tuple[str, str]] = [
        (name, value)
        for name, value in (
            ("status", status),
            ("start_date", start_date),
            ("end_date", end_date),
            ("updated_after", updated_after),
            ("updated_before", updated_before),
        )
        if value is not None
    ]
    pairs += [("service_code", code) for code in service_code or ()]
    pairs += [("ward", code) for code in ward or ()]
    if extensions:
        pairs.append(("extensions", "true"))
    settings = get_settings()

    async def run() -> tuple[int, JurisdictionInfo]:
        store = open_store(settings)
        try:
            place = await _resolve(jurisdiction)(store.engine)
            filters = parse_filters(Parameters(pairs), place.tz, settings.requests, export=True)
            catalog = await CatalogCache(store.engine).get(place.pk)
            total = await count_matching(store, place, catalog, filters)
            batches = export_batches(store, place, catalog, filters, settings)
            written = 0
            temporary = output.with_name(f".{output.name}.part")
            label = f"Exporting {total} requests of {place.code}"
            try:
                with (
                    typer.progressbar(length=total, label=label, file=None) as bar,
                    temporary.open("wb") as out,
                ):

                    def counted(n: int) -> None:
                        nonlocal written
                        written += n
                        bar.update(n)

                    async for part in encode(batches, fmt, extensions=extensions, counted=counted):
                        out.write(part)
                os.replace(temporary, output)
            except BaseException:
                temporary.unlink(missing_ok=True)  # no half-written file left behind
                raise
            return written, place
        finally:
            await store.close()

    written, place = asyncio.run(run())
    typer.echo(f"Wrote {written} requests of {place.code} to {output} ({fmt.value}).")


requests_cli = typer.Typer(help="Service requests (staff updates).", no_args_is_help=True)
cli.add_typer(requests_cli, name="requests")


@requests_cli.command("update")
def requests_update(
    service_request_id: Annotated[str, typer.Argument(help="The request's id.")],
    jurisdiction: Annotated[
        str | None, typer.Option(help="jurisdiction_id (needed with several jurisdictions).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="open, closed or a detailed status (IN_PROGRESS, FIXED, ...)."),
    ] = None,
    notes: Annotated[str | None, typer.Option(help="status_notes.")] = None,
    agency: Annotated[str | None, typer.Option(help="agency_responsible.")] = None,
    notice: Annotated[str | None, typer.Option(help="service_notice.")] = None,
    expected: Annotated[str | None, typer.Option(help="expected_datetime (W3C with zone).")] = None,
    description: Annotated[str | None, typer.Option(help="Public text of the update.")] = None,
    code: Annotated[str | None, typer.Option(help="external_status_code.")] = None,
) -> None:
    """Change a request (status, notes, agency, ...); the change is kept as an update."""
    from app.domain.jurisdictions import JurisdictionRegistry
    from app.domain.updates import Change, apply_change
    from app.store.engine import write_transaction

    settings = get_settings()

    async def work(engine: AsyncEngine) -> dict[str, object]:
        target = await JurisdictionRegistry(engine, settings).resolve(jurisdiction)
        change = Change(
            status=status,
            status_notes=notes,
            agency_responsible=agency,
            service_notice=notice,
            expected_datetime=expected,
            description=description,
            external_status_code=code,
        )
        async with write_transaction(engine) as conn:
            return await apply_change(conn, target, service_request_id, change)

    item = _with_engine(settings, work)
    typer.echo(
        f"Update {item['update_id']} of request {item['service_request_id']}: "
        f"status {item['status']} at {item['updated_datetime']}."
    )


@keys_cli.command("create")
def keys_create(
    app: Annotated[str, typer.Argument(help="The app the key is for (created if new).")],
    contact: Annotated[str | None, typer.Option(help="Contact of the app.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="submit (default), update, staff, read_private, admin, reports; repeat for "
            "several."
        ),
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Restrict the key to this jurisdiction_id.")
    ] = None,
    sandbox: Annotated[bool, typer.Option(help="A sandbox key (test requests).")] = False,
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests per minute for this key.")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            help="Intake channel of the requests it files: phone, web, mobile_app, email, "
            "counter, kiosk, social_media, partner or api (default: its app's, api)."
        ),
    ] = None,
) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    from app.domain.api_keys import create_key

    async def work(engine: AsyncEngine) -> tuple[str, int]:
        async with engine.begin() as conn:
            return await create_key(
                conn,
                app,
                app=app,
                contact=contact,
                scopes=scope or ["submit"],
                jurisdiction=jurisdiction,
                sandbox=sandbox,
                rate_limit_per_minute=rate_limit,
                channel=channel,
            )

    key, key_id = _with_engine(get_settings(), work)
    typer.echo(f"Created key {key_id} for {app!r}. Store it now; it cannot be shown again:")
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List API keys (prefix only)."""
    from app.domain.api_keys import ApiKeyListing, list_keys

    async def work(engine: AsyncEngine) -> list[ApiKeyListing]:
        async with engine.connect() as conn:
            return await list_keys(conn)

    for key in _with_engine(get_settings(), work):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        extras = [key.scopes]
        if key.sandbox:
            extras.append("sandbox")
        if key.jurisdiction:
            extras.append(key.jurisdiction)
        if key.rate_limit_per_minute:
            extras.append(f"{key.rate_limit_per_minute}/min")
        extras.append(f"channel {key.channel}")
        typer.echo(f"{key.id}\t{key.prefix}…\t{key.name}\t{' '.join(extras)}\t{state}")


@keys_cli.command("rotate")
def keys_rotate(key_id: Annotated[int, typer.Argument(help="Id shown by 'keys list'.")]) -> None:
    """Replace a key by a new one with the same rights (the old one is revoked)."""
    from app.domain.api_keys import rotate_key

    async def work(engine: AsyncEngine) -> tuple[str, int]:
        async with engine.begin() as conn:
            return await rotate_key(conn, key_id)

    key, new_id = _with_engine(get_settings(), work)
    typer.echo(f"Key {key_id} revoked; new key {new_id}. Store it now; it cannot be shown again:")
    typer.echo(key)


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Id shown by 'keys list'.")]) -> None:
    """Revoke an API key."""
    from app.domain.api_keys import revoke_key

    async def work(engine: AsyncEngine) -> bool:
        async with engine.begin() as conn:
            return await revoke_key(conn, key_id)

    if not _with_engine(get_settings(), work):
        typer.echo(f"No active key {key_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked key {key_id}.")


@cli.command("apps")
def apps_list() -> None:
    """List client apps."""
    from app.domain.api_keys import list_apps

    async def work(engine: AsyncEngine) -> list[dict[str, object]]:
        async with engine.connect() as conn:
            return await list_apps(conn)

    for item in _with_engine(get_settings(), work):
        typer.echo(
            f"{item['id']}\t{item['name']}\t{item['contact'] or '-'}\t"
            f"{item['active_keys']} active keys"
        )


@cli.command("sandbox-reset")
def sandbox_reset(
    app: Annotated[str | None, typer.Option(help="Only this app's sandbox.")] = None,
) -> None:
    """Delete sandbox requests (made with sandbox keys)."""
    from app.domain.api_keys import reset_sandbox
    from app.media.runtime import close_object_store, sandbox_photos

    settings = get_settings()

    async def work(engine: AsyncEngine) -> int:
        try:
            async with engine.begin() as conn:
                return await reset_sandbox(conn, app, photos=sandbox_photos(settings.media))
        finally:
            await close_object_store(settings.media)

    typer.echo(f"Deleted {_with_engine(settings, work)} sandbox requests and their photos.")


@jurisdictions_cli.command("list")
def jurisdictions_list() -> None:
    """List the jurisdictions served."""
    from app.domain.jurisdictions import list_jurisdictions

    async def work(engine: AsyncEngine) -> list[tuple[str, str, str]]:
        async with engine.connect() as conn:
            return await list_jurisdictions(conn)

    for code, name, tz in _with_engine(get_settings(), work):
        typer.echo(f"{code}\t{name}\t{tz}")


@boundaries_cli.command("import")
def boundaries_import(
    path: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection (EPSG:4326).")],
    jurisdiction: Annotated[str, typer.Option(help="jurisdiction_id, e.g. toronto.ca.")],
    name: Annotated[str, typer.Option(help="Name of the new boundary set, e.g. wards-2018.")],
    kind: Annotated[str, typer.Option(help="Kind of area.")] = "ward",
    code_field: Annotated[str | None, typer.Option(help="Property holding the area code.")] = None,
    name_field: Annotated[str | None, typer.Option(help="Property holding the area name.")] = None,
    current: Annotated[bool, typer.Option(help="Make the new set the current one.")] = True,
    repair: Annotated[bool, typer.Option(help="Repair invalid rings (make_valid).")] = False,
    reassign: Annotated[
        bool, typer.Option(help="Then re-assign existing requests to the new wards.")
    ] = False,
) -> None:
    """Import a boundary set from GeoJSON, with validation and a progress bar."""
    from app.domain.boundaries import BoundaryError, import_boundary_set, read_geojson

    settings = get_settings()
    try:
        areas = read_geojson(path, code_field=code_field, name_field=name_field, repair=repair)
    except BoundaryError as exc:
        typer.echo(f"Cannot import: {exc.descriptions[0]}", err=True)
        raise typer.Exit(2) from exc
    repaired = sum(a.repaired for a in areas)

    async def work(engine: AsyncEngine) -> int:
        with typer.progressbar(length=len(areas), label=f"Importing {len(areas)} areas") as bar:
            return await import_boundary_set(
                engine,
                jurisdiction=jurisdiction,
                name=name,
                areas=areas,
                kind=kind,
                make_current=current,
                source=str(path.name),
                progress=bar.update,
            )

    set_id = _with_engine(settings, work)
    note = f" ({repaired} repaired)" if repaired else ""
    state = "current" if current else "not current"
    typer.echo(f"Boundary set {name!r} (id {set_id}): {len(areas)} areas{note}, {state}.")
    if reassign:
        wards_reassign(jurisdiction)


addresses_cli = typer.Typer(help="Address points: the embedded geocoder of each jurisdiction.")
cli.add_typer(addresses_cli, name="addresses")


@addresses_cli.command("import")
def addresses_import(
    path: Annotated[
        Path, typer.Argument(help="CSV, GeoJSON points or GeoReport requests (JSON), WGS84.")
    ],
    jurisdiction: Annotated[str, typer.Option(help="jurisdiction_id, e.g. toronto.ca.")],
    replace: Annotated[
        bool, typer.Option(help="Replace the jurisdiction's address points (else: add).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Read and count only; write nothing.")] = False,
) -> None:
    """Import a jurisdiction's address points (what its embedded geocoder is built from)."""
    from app.domain.addresses import (
        AddressImport,
        AddressImportError,
        import_address_points,
        read_points,
    )

    settings = get_settings()
    try:
        records, skipped = read_points(path, settings.geocode)
    except AddressImportError as exc:
        typer.echo(f"Cannot import: {exc.descriptions[0]}", err=True)
        raise typer.Exit(2) from exc

    async def work(engine: AsyncEngine) -> AddressImport:
        async with engine.begin() as conn:
            return await import_address_points(
                conn, jurisdiction, records, skipped=skipped, replace=replace, dry_run=dry_run
            )

    done = _with_engine(settings, work)
    removed = f", {done.removed} replaced" if replace else ""
    if done.dry_run:
        typer.echo(
            f"Dry run: {done.read} address points read ({done.skipped} rows skipped){removed}; "
            "nothing written."
        )
    else:
        typer.echo(
            f"Imported {done.stored} address points into {jurisdiction} "
            f"({done.skipped} rows skipped){removed}."
        )


@boundaries_cli.command("list")
def boundaries_list() -> None:
    """List boundary sets."""
    from app.domain.boundaries import BoundarySetInfo, list_sets

    async def work(engine: AsyncEngine) -> list[BoundarySetInfo]:
        async with engine.connect() as conn:
            return await list_sets(conn)

    for item in _with_engine(get_settings(), work):
        flag = "current" if item.current else "-"
        typer.echo(f"{item.jurisdiction}\t{item.kind}\t{item.name}\t{item.areas} areas\t{flag}")


@boundaries_cli.command("activate")
def boundaries_activate(
    name: Annotated[str, typer.Argument(help="The boundary set to make current.")],
    jurisdiction: Annotated[str, typer.Option(help="jurisdiction_id.")],
) -> None:
    """Make a boundary set current (re-assign requests afterwards with 'wards reassign')."""
    from app.domain.boundaries import find_set, set_current

    async def work(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await set_current(conn, await find_set(conn, jurisdiction, name))

    _with_engine(get_settings(), work)
    typer.echo(f"{name!r} is now the current set of {jurisdiction}.")


@boundaries_cli.command("reassign")
def wards_reassign(
    jurisdiction: Annotated[str, typer.Argument(help="jurisdiction_id.")],
    batch_size: Annotated[int, typer.Option(help="Requests per transaction.")] = 5000,
) -> None:
    """Re-assign every request of a jurisdiction to its current wards (in batches)."""
    from app.domain.boundaries import count_requests, reassign_wards

    settings = get_settings()

    async def work(engine: AsyncEngine) -> tuple[int, int]:
        async with engine.connect() as conn:
            total = await count_requests(conn, jurisdiction)
        with typer.progressbar(length=total, label="Re-assigning wards") as bar:
            return await reassign_wards(
                engine,
                jurisdiction,
                tolerance_m=settings.wards.tolerance_m,
                batch_size=batch_size,
                progress=bar.update,
            )

    processed, assigned = _with_engine(settings, work)
    typer.echo(f"{processed} requests processed, {assigned} in a ward.")


@cli.command()
def conformance(
    url: Annotated[
        str,
        typer.Argument(
            help="Base URL of a GeoReport v2 endpoint, e.g. http://127.0.0.1:8000/open311/v2."
        ),
    ],
    api_key: Annotated[
        str | None,
        typer.Option(help="Also check POST requests and tokens (creates real test requests)."),
    ] = None,
    jurisdiction_id: Annotated[
        str | None, typer.Option(help="jurisdiction_id sent with every call.")
    ] = None,
    service_code: Annotated[
        str | None,
        typer.Option(help="Service to POST to (default: a realtime service with attributes)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here.")] = None,
    json_report: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON report here.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option(help="Also run this suite: updates, chicago or ours (repeatable)."),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Run only checks matching this name or glob.")
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option(help="Skip checks matching this name or glob.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 on WARN findings too.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per HTTP request.")] = 30.0,
) -> None:
    """Check any GeoReport v2 server against the spec; exits 1 if a check FAILs."""
    from app.conformance.runner import run_cli, select

    if not url.startswith(("http://", "https://")):
        typer.echo(f"Error: {url!r} is not an http(s) URL.", err=True)
        raise typer.Exit(2)
    try:
        select(suite or (), only or (), skip or ())
    except ValueError as exc:
        typer.echo(f"Error: {exc}.", err=True)
        raise typer.Exit(2) from exc
    code = run_cli(
        url,
        api_key=api_key,
        jurisdiction_id=jurisdiction_id,
        service_code=service_code,
        junit=junit,
        json_path=json_report,
        html=html,
        suites=suite or (),
        only=only or (),
        skip=skip or (),
        strict=strict,
        timeout=timeout,
        echo=typer.echo,
    )
    raise typer.Exit(code)


@cli.command()
def openapi(
    output: Annotated[
        Path | None,
        typer.Option(help="Write the document to this file (default: standard output)."),
    ] = None,
) -> None:
    """Print or write the OpenAPI document of the API (the file openapi/openapi.json)."""
    from app.api.docs import render_openapi
    from app.main import create_app

    text = render_openapi(create_app(get_settings()).openapi())
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}.", err=True)


# --- jurisdictions create, services import --------------------------------------------------

services_cli = typer.Typer(help="Service catalogues (service types).", no_args_is_help=True)
cli.add_typer(services_cli, name="services")

MAX_PROBLEMS_SHOWN = 20


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


@jurisdictions_cli.command("create")
def jurisdictions_create(
    code: Annotated[str, typer.Argument(help="The jurisdiction_id clients send, e.g. toronto.ca.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'City of Toronto'.")],
    timezone: Annotated[
        str, typer.Option(help="IANA time zone of the city, e.g. America/Toronto.")
    ],
    accepts_outside: Annotated[
        bool,
        typer.Option(
            "--accepts-outside",
            help="Accept locations outside every ward (stored without a ward) instead of "
            "refusing them with a 400.",
        ),
    ] = False,
    contact: Annotated[
        str | None, typer.Option(help="Discovery contact text of this jurisdiction.")
    ] = None,
    key_service: Annotated[
        str | None, typer.Option(help="Discovery text: how app developers get a key.")
    ] = None,
) -> None:
    """Create a jurisdiction (a city served by this endpoint)."""
    import re
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from app.domain.jurisdictions import create_jurisdiction

    code, name = code.strip(), name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", code):
        raise _fail(
            f"{code!r} is not a valid jurisdiction_id: use letters, digits, '.', '_' and '-' "
            "(e.g. toronto.ca)."
        )
    if not name or len(name) > 255:
        raise _fail("--name must be 1 to 255 characters.")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(
            f"unknown time zone {timezone!r}: use an IANA name such as America/Toronto."
        ) from exc
    settings = get_settings()

    async def work(engine: AsyncEngine) -> str | None:
        async with engine.begin() as conn:
            return await create_jurisdiction(
                conn,
                code=code,
                name=name,
                timezone=timezone,
                contact=contact,
                key_service=key_service,
                accepts_outside=accepts_outside,
            )

    existing = _with_engine(settings, work)
    if existing is not None:
        raise _fail(f"jurisdiction {existing!r} exists already ('open311 jurisdictions list').", 1)
    outside = "accepted" if accepts_outside else "refused"
    typer.echo(
        f"Created jurisdiction {code} ({name}, {timezone}); locations outside its wards are "
        f"{outside}.\nNext: 'open311 boundaries import FILE --jurisdiction {code} --name NAME' "
        f"and 'open311 services import FILE --jurisdiction {code}'."
    )


@services_cli.command("import")
def services_import(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help='A JSON catalogue ({"divisions": [...], "services": [...]}, as app/demo/data/'
            "toronto_catalog.json, attributes and service levels included) or a CSV file with "
            "the columns " + ", ".join(CSV_COLUMNS) + ".",
        ),
    ],
    jurisdiction: Annotated[str, typer.Option(help="jurisdiction_id, e.g. toronto.ca.")],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="json or csv (default: from the file name's extension)."),
    ] = None,
    division: Annotated[
        str | None,
        typer.Option(
            help="Onboard this division (a code): its services are the file's, and its "
            "services the file leaves out are no longer offered (unless --keep-missing)."
        ),
    ] = None,
    division_name: Annotated[
        str | None, typer.Option(help="Name of --division (creates or renames it).")
    ] = None,
    keep_missing: Annotated[
        bool,
        typer.Option("--keep-missing", help="With --division: keep its services not in the file."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file and show what would change; write nothing."),
    ] = False,
) -> None:
    """Create or update services by service_code, showing what changes (added, changed,
    moved, removed).

    A CSV row updates a service's fields and keeps its attributes: attributes are imported
    from JSON only (a JSON service replaces its attributes). A service goes to the division it
    names, else to --division, else stays where it is; moves are recorded. Nothing is written
    if any row is wrong.
    """
    from app.domain.catalog_files import read_catalogue_file
    from app.domain.catalog_import import ImportPlan, apply_import, plan_import
    from app.errors import JurisdictionNotFound
    from app.store.engine import write_transaction

    kind = (file_format or path.suffix.lstrip(".")).lower()
    if kind not in ("json", "csv"):
        raise _fail(f"cannot tell the format of {path.name}: use --format json or --format csv.")
    if not path.is_file():
        raise _fail(f"file not found: {path}" if not path.exists() else f"{path} is not a file.")
    if keep_missing and division is None:
        raise _fail("--keep-missing goes with --division.")
    try:
        catalogue = read_catalogue_file(path, "csv" if kind == "csv" else "json")
    except CatalogFileError as exc:
        shown = exc.problems[:MAX_PROBLEMS_SHOWN]
        more = len(exc.problems) - len(shown)
        lines = [f"  {p}" for p in shown] + ([f"  ... and {more} more"] if more > 0 else [])
        typer.echo(
            f"Error: cannot import {path.name} ({len(exc.problems)} problem"
            f"{'s' if len(exc.problems) != 1 else ''}); nothing was imported:\n" + "\n".join(lines),
            err=True,
        )
        raise typer.Exit(2) from exc
    count = len(catalogue.services)
    settings = get_settings()
    options: dict[str, Any] = {
        "division": division,
        "division_name": division_name,
        "keep_missing": keep_missing,
    }

    async def target(engine: AsyncEngine) -> JurisdictionInfo | None:
        try:
            return await _resolve(jurisdiction)(engine)
        except JurisdictionNotFound:
            return None

    async def work(engine: AsyncEngine) -> tuple[str, ImportPlan | None]:
        place = await target(engine)
        if place is None:
            if dry_run:
                return jurisdiction, None
            raise _fail(
                f"no jurisdiction {jurisdiction!r}: create it with 'open311 jurisdictions "
                "create' (or list them with 'open311 jurisdictions list')."
            )
        options["has_calendar"] = place.calendar is not None
        if dry_run:
            async with engine.connect() as conn:
                return place.code, await plan_import(
                    conn, place.pk, place.code, catalogue, **options
                )
        with typer.progressbar(length=count, label=f"Importing {count} services") as bar:
            async with write_transaction(engine) as conn:
                plan = await apply_import(
                    conn,
                    place.pk,
                    place.code,
                    catalogue,
                    by=_cli_user(),
                    progress=bar.update,
                    **options,
                )
        return place.code, plan

    code, plan = _with_engine(settings, work)
    if dry_run:
        typer.echo(f"{path.name}: {count} services, no problems found (dry run).")
        if plan is None:
            typer.echo(
                f"There is no jurisdiction {jurisdiction!r} yet: create it with 'open311 "
                "jurisdictions create', then every service would be added."
            )
            return
        for line in plan.lines():
            typer.echo(f"  {line}")
        typer.echo(f"Would import into {code}: {plan.summary()}; nothing was written.")
        return
    assert plan is not None  # noqa: S101 - a real import has a plan
    for line in plan.lines():
        typer.echo(f"  {line}")
    added = len(plan.of("added"))
    typer.echo(f"Imported {count} services into {code}: {added} new, {count - added} updated.")
    typer.echo(f"Changes: {plan.summary()}.")


def _cli_user() -> str:
    """Who runs the command, as recorded with what it changes (``cli (login)``)."""
    import getpass

    from app.domain.divisions import actor_name

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container without one)
        user = None
    return actor_name(None, cli_user=user)


def _resolve(jurisdiction: str | None) -> Callable[[AsyncEngine], Awaitable[JurisdictionInfo]]:
    """The jurisdiction a command names (any case), or the default one when it names none."""

    async def resolve(engine: AsyncEngine) -> JurisdictionInfo:
        from app.domain.jurisdictions import JurisdictionRegistry
        from app.errors import JurisdictionNotFound

        registry = JurisdictionRegistry(engine, get_settings(), ttl=0)
        if not jurisdiction or not jurisdiction.strip():
            return await registry.resolve(None)
        for place in await registry.all():
            if place.code.lower() == jurisdiction.strip().lower():
                return place
        raise JurisdictionNotFound(
            f"no jurisdiction {jurisdiction!r}: create it with 'open311 jurisdictions create' "
            "(or list them with 'open311 jurisdictions list')."
        )

    return resolve


JurisdictionOption = Annotated[
    str | None, typer.Option(help="jurisdiction_id (needed with several jurisdictions).")
]


@services_cli.command("list")
def services_list(
    jurisdiction: JurisdictionOption = None,
    division: Annotated[str | None, typer.Option(help="Only this division's services.")] = None,
    inactive: Annotated[bool, typer.Option(help="Also services no longer offered.")] = False,
) -> None:
    """List services with their division and service levels."""
    from app.domain.catalog import ServiceInfo, read_services

    async def work(engine: AsyncEngine) -> list[ServiceInfo]:
        place = await _resolve(jurisdiction)(engine)
        async with engine.connect() as conn:
            return await read_services(conn, place.pk, inactive=inactive)

    for service in _with_engine(get_settings(), work):
        if division is not None and service.division != division.strip().lower():
            continue
        state = "" if service.active else "\t(not offered)"
        typer.echo(
            f"{service.code}\t{service.name}\t{service.division or '-'}\t"
            f"{service.service_levels or '-'}{state}"
        )


@services_cli.command("move")
def services_move(
    service_code: Annotated[str, typer.Argument(metavar="CODE", help="The service_code.")],
    division: Annotated[str, typer.Option(help="The division (code) it moves to.")],
    jurisdiction: JurisdictionOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded with the move).")] = None,
) -> None:
    """Move a service to another division; the move is recorded with who and when."""
    from app.domain.divisions import MoveInfo, move_service
    from app.store.engine import write_transaction

    async def work(engine: AsyncEngine) -> MoveInfo | None:
        place = await _resolve(jurisdiction)(engine)
        async with write_transaction(engine) as conn:
            return await move_service(
                conn, place.pk, service_code, division, by=_cli_user(), reason=reason
            )

    move = _with_engine(get_settings(), work)
    if move is None:
        typer.echo(f"{service_code} is in {division} already; nothing changed.")
        return
    typer.echo(
        f"Moved {move.service_code} from {move.from_code or '(no division)'} to {move.to_code} "
        f"({move.to_name}); recorded as moved by {move.moved_by} at "
        f"{move.moved_at.isoformat(timespec='seconds')}."
    )


translations_cli = typer.Typer(
    help="Translations of the service catalogues (other languages).", no_args_is_help=True
)
cli.add_typer(translations_cli, name="translations")


def _problems(what: str, problems: list[str]) -> typer.Exit:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    lines = [f"  {p}" for p in shown] + ([f"  ... and {more} more"] if more > 0 else [])
    typer.echo(
        f"Error: cannot import {what} ({len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''}); nothing was imported:\n" + "\n".join(lines),
        err=True,
    )
    return typer.Exit(2)


@translations_cli.command("import")
def translations_import(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A CSV file (UTF-8) with the columns locale, service_code, attribute_code, "
            "value_key, field, text: one translated text a row; an empty text removes one.",
        ),
    ],
    jurisdiction: Annotated[str, typer.Option(help="jurisdiction_id, e.g. greatersudbury.ca.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the file and that everything it names exists; write nothing.",
        ),
    ] = False,
) -> None:
    """Create, replace or remove translated texts of a jurisdiction's services, attributes
    and values (see README, Languages). Nothing is written if any row is wrong."""
    from app.domain.catalog_translations import (
        TranslationFileError,
        import_translations,
        read_translations_csv,
    )
    from app.domain.jurisdictions import find_jurisdiction

    if not path.is_file():
        raise _fail(f"file not found: {path}" if not path.exists() else f"{path} is not a file.")
    try:
        rows = read_translations_csv(path)
    except TranslationFileError as exc:
        raise _problems(path.name, exc.problems) from exc

    async def work(engine: AsyncEngine) -> tuple[str, ImportReport]:
        async with engine.connect() as conn:
            found = await find_jurisdiction(conn, jurisdiction)
        if found is None:
            raise _fail(
                f"no jurisdiction {jurisdiction!r}: create it with 'open311 jurisdictions "
                "create' (or list them with 'open311 jurisdictions list')."
            )
        pk, code = found
        try:
            report = await import_translations(engine, pk, code, rows, dry_run=dry_run)
        except TranslationFileError as exc:
            raise _problems(path.name, exc.problems) from exc
        return code, report

    code, report = _with_engine(get_settings(), work)
    languages = ", ".join(f"{tag} ({count})" for tag, count in sorted(report.locales.items()))
    if dry_run:
        typer.echo(
            f"{path.name}: {report.rows} translations for {code} in {languages}, no problems "
            "found (dry run: nothing was written)."
        )
        return
    typer.echo(
        f"Imported {report.rows} translations into {code} ({languages}): {report.created} new, "
        f"{report.updated} changed, {report.removed} removed, {report.unchanged} unchanged. "
        "Running servers serve them within seconds."
    )


@services_cli.command("moves")
def services_moves(
    service_code: Annotated[
        str | None, typer.Argument(metavar="[CODE]", help="Only this service's moves.")
    ] = None,
    jurisdiction: JurisdictionOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
) -> None:
    """List recorded moves of services between divisions, newest first."""
    from app.domain.divisions import MoveInfo, list_moves

    async def work(engine: AsyncEngine) -> list[MoveInfo]:
        place = await _resolve(jurisdiction)(engine)
        async with engine.connect() as conn:
            return await list_moves(conn, place.pk, service_code, limit)

    for move in _with_engine(get_settings(), work):
        typer.echo(
            f"{move.moved_at.isoformat(timespec='seconds')}\t{move.service_code}\t"
            f"{move.from_code or '-'} -> {move.to_code or '-'}\t{move.moved_by}"
            + (f"\t{move.reason}" if move.reason else "")
        )


@services_cli.command("levels")
def services_levels(
    service_code: Annotated[str, typer.Argument(metavar="CODE", help="The service_code.")],
    levels: Annotated[
        str,
        typer.Argument(
            metavar="LEVELS",
            help="Targets, e.g. 'acknowledge=1 business_day; resolve=5 business_days' (units: "
            "business_days, business_hours, calendar_hours, calendar_days); '' clears them.",
        ),
    ],
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Set a service's service levels (its expected_datetime comes from the resolve target)."""
    from app.domain.service_promise import set_service_levels
    from app.store.engine import write_transaction

    async def work(engine: AsyncEngine) -> str | None:
        place = await _resolve(jurisdiction)(engine)
        async with write_transaction(engine) as conn:
            return await set_service_levels(conn, place.pk, service_code, levels)

    stored = _with_engine(get_settings(), work)
    typer.echo(f"{service_code}: service levels {stored or '(none)'}.")


divisions_cli = typer.Typer(
    help="Divisions (agencies) of a jurisdiction: each service belongs to one.",
    no_args_is_help=True,
)
cli.add_typer(divisions_cli, name="divisions")


@divisions_cli.command("list")
def divisions_list(jurisdiction: JurisdictionOption = None) -> None:
    """List divisions with their number of services."""
    from app.domain.divisions import DivisionInfo, list_divisions

    async def work(engine: AsyncEngine) -> list[DivisionInfo]:
        place = await _resolve(jurisdiction)(engine)
        async with engine.connect() as conn:
            return await list_divisions(conn, place.pk)

    for item in _with_engine(get_settings(), work):
        typer.echo(f"{item.code}\t{item.name}\t{item.services} services\t{item.contact or '-'}")


@divisions_cli.command("add")
def divisions_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. pfr.")],
    name: Annotated[str, typer.Option(help="Name, e.g. 'Parks, Forestry & Recreation'.")],
    jurisdiction: JurisdictionOption = None,
    contact: Annotated[str | None, typer.Option(help="Contact of the division.")] = None,
) -> None:
    """Add a division (its name becomes its services' agency_responsible)."""
    from app.domain.divisions import DivisionInfo, create_division
    from app.store.engine import write_transaction

    async def work(engine: AsyncEngine) -> DivisionInfo:
        place = await _resolve(jurisdiction)(engine)
        async with write_transaction(engine) as conn:
            return await create_division(conn, place.pk, code, name, contact)

    item = _with_engine(get_settings(), work)
    typer.echo(f"Added division {item.code} ({item.name}).")


@divisions_cli.command("rename")
def divisions_rename(
    code: Annotated[str, typer.Argument(help="The division's code.")],
    name: Annotated[str, typer.Option(help="Its new name.")],
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Rename a division (new requests of its services carry the new name)."""
    from app.domain.divisions import DivisionInfo, update_division
    from app.store.engine import write_transaction

    async def work(engine: AsyncEngine) -> DivisionInfo:
        place = await _resolve(jurisdiction)(engine)
        async with write_transaction(engine) as conn:
            return await update_division(conn, place.pk, code, name=name)

    item = _with_engine(get_settings(), work)
    typer.echo(f"Division {item.code} is now named {item.name!r}.")


@divisions_cli.command("remove")
def divisions_remove(
    code: Annotated[str, typer.Argument(help="The division's code.")],
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Remove a division that holds no service (move its services first)."""
    from app.domain.divisions import remove_division
    from app.store.engine import write_transaction

    async def work(engine: AsyncEngine) -> None:
        place = await _resolve(jurisdiction)(engine)
        async with write_transaction(engine) as conn:
            await remove_division(conn, place.pk, code)

    _with_engine(get_settings(), work)
    typer.echo(f"Removed division {code}.")


@jurisdictions_cli.command("calendar")
def jurisdictions_calendar(
    code: Annotated[str, typer.Argument(help="jurisdiction_id.")],
    set_file: Annotated[
        Path | None,
        typer.Option(
            "--set",
            help='Store this JSON calendar ({"timezone", "hours", "holidays", "closures"}).',
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Store none (a demo city's example then applies).")
    ] = False,
) -> None:
    """Show or set a jurisdiction's business calendar (hours, holidays, closures)."""
    from app.domain.service_promise import (
        MAX_CALENDAR_BYTES,
        set_calendar,
        show_calendar,
    )
    from app.store.engine import write_transaction

    if set_file is not None and clear:
        raise _fail("give --set FILE or --clear, not both.")
    config: object = None
    if set_file is not None:
        if not set_file.is_file():
            raise _fail(f"file not found: {set_file}")
        if set_file.stat().st_size > MAX_CALENDAR_BYTES:
            raise _fail(f"{set_file} is larger than {MAX_CALENDAR_BYTES} bytes.")
        config = json.loads(set_file.read_text(encoding="utf-8"))

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        place = await _resolve(code)(engine)
        if set_file is None and not clear:
            async with engine.connect() as conn:
                return await show_calendar(conn, place)
        async with write_transaction(engine) as conn:
            return await set_calendar(conn, place, config)

    shown = _with_engine(get_settings(), work)
    typer.echo(f"{shown['jurisdiction_id']}: calendar {shown['source']}")
    if shown["calendar"] is not None:
        typer.echo(json.dumps(shown["calendar"], indent=2, ensure_ascii=False))


report_cli = typer.Typer(
    help="Service-promise reports (JSON, CSV, or a PDF of the printable page).",
    no_args_is_help=True,
)
cli.add_typer(report_cli, name="report")
PdfOption = Annotated[
    Path | None, typer.Option("--pdf", help="Write the printable page as PDF (headless Chromium).")
]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV instead of JSON.")]


def _report_out(report: dict[str, Any], csv_text: str, page: str, pdf: Path | None) -> None:
    if pdf is not None:
        from app.web.pdf import PdfError, print_pdf

        try:
            print_pdf(page, pdf)
        except PdfError as exc:
            raise _fail(str(exc), 1) from None
        typer.echo(f"Wrote {pdf}.")
    elif csv_text:
        typer.echo(csv_text, nl=False)
    else:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


@report_cli.command("service-promise")
def report_service_promise(
    jurisdiction: JurisdictionOption = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (inclusive).")] = None,
    group_by: Annotated[
        str, typer.Option(help="division, service, ward, channel or month.")
    ] = "division",
    as_csv: CsvOption = False,
    pdf: PdfOption = None,
) -> None:
    """The service-promise (compliance) report of a period."""
    from app.domain import reports
    from app.web.report_page import service_promise_page

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        place = await _resolve(jurisdiction)(engine)
        grouping = reports.parse_group_by(group_by)
        period = reports.parse_period(start, end, await reports.default_year(engine, place))
        return await reports.service_promise(engine, place, period, grouping)

    report = _with_engine(get_settings(), work)
    csv_text = reports.service_promise_csv(report) if as_csv else ""
    _report_out(report, csv_text, service_promise_page(report) if pdf else "", pdf)


@report_cli.command("key-metrics")
def report_key_metrics(
    jurisdiction: JurisdictionOption = None,
    year: Annotated[
        int | None, typer.Option(help="The year (default: that of the newest request).")
    ] = None,
    as_csv: CsvOption = False,
    pdf: PdfOption = None,
) -> None:
    """The key-metrics report of a year (volumes, top and trending services, compliance)."""
    from app.domain import reports
    from app.web.report_page import key_metrics_page

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        place = await _resolve(jurisdiction)(engine)
        fallback = await reports.default_year(engine, place)
        chosen = reports.parse_year(None if year is None else str(year), fallback)
        return await reports.key_metrics(engine, place, chosen)

    report = _with_engine(get_settings(), work)
    csv_text = reports.key_metrics_csv(report) if as_csv else ""
    _report_out(report, csv_text, key_metrics_page(report) if pdf else "", pdf)


federation_cli = typer.Typer(
    help="Federation: partner (remote) and region jurisdictions.", no_args_is_help=True
)
cli.add_typer(federation_cli, name="federation")


@federation_cli.command("add-remote")
def federation_add_remote(
    code: Annotated[str, typer.Argument(help="Our jurisdiction_id for the partner.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    url: Annotated[str, typer.Option(help="The partner's GeoReport v2 base URL.")],
    format: Annotated[str, typer.Option("--format", help="json or xml.")] = "json",
    partner_key: Annotated[
        str | None, typer.Option(help="Our api_key at the partner (for forwarded POSTs).")
    ] = None,
    partner_jurisdiction: Annotated[
        str | None, typer.Option(help="The partner's jurisdiction_id, if it needs one.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA zone of the partner city.")] = "UTC",
) -> None:
    """Create or update a remote jurisdiction (then: 'open311 federation refresh CODE')."""
    from app.federation.partners import add_remote

    async def work(engine: AsyncEngine) -> int:
        return await add_remote(
            engine,
            code=code,
            name=name,
            url=url,
            fmt=format,
            partner_key=partner_key,
            partner_jurisdiction=partner_jurisdiction,
            timezone=timezone,
        )

    _with_engine(get_settings(), work)
    typer.echo(f"Remote jurisdiction {code} -> {url.rstrip('/')} ({format.lower()}).")


@federation_cli.command("add-region")
def federation_add_region(
    code: Annotated[str, typer.Argument(help="Our jurisdiction_id for the region.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    partners_file: Annotated[
        Path | None,
        typer.Option(help="GeoJSON of partner boundaries, coded with remote jurisdiction ids."),
    ] = None,
    code_field: Annotated[
        str, typer.Option(help="Property holding the partner's jurisdiction_id.")
    ] = "jurisdiction_id",
    timezone: Annotated[str, typer.Option(help="IANA zone of the region.")] = "UTC",
) -> None:
    """Create or update a region that routes POSTs by location to its partners."""
    from app.domain.boundaries import BoundaryError, read_geojson
    from app.federation.partners import add_region

    areas = None
    if partners_file is not None:
        try:
            areas = read_geojson(partners_file, code_field=code_field, name_field=None)
        except BoundaryError as exc:
            raise _fail(f"cannot read {partners_file}: {exc.descriptions[0]}") from exc

    async def work(engine: AsyncEngine) -> int:
        return await add_region(engine, code=code, name=name, areas=areas, timezone=timezone)

    _with_engine(get_settings(), work)
    typer.echo(f"Region {code}: {len(areas or [])} partner boundaries.")


@federation_cli.command("refresh")
def federation_refresh(
    code: Annotated[str | None, typer.Argument(help="One jurisdiction (default: all).")] = None,
) -> None:
    """Mirror partners' services and sync their requests now."""
    from app.federation.service import Federation, RefreshReport

    settings = get_settings()

    async def work(engine: AsyncEngine) -> list[RefreshReport]:
        async with Federation(engine, settings) as federation:
            return await federation.refresh(code)

    failed = 0
    for report in _with_engine(settings, work):
        if report.error is not None:
            failed += 1
            typer.echo(
                f"{report.code}: failed ({report.error.status_code}): {report.error}", err=True
            )
            continue
        typer.echo(
            f"{report.code}: {report.services} services, {report.added} requests added, "
            f"{report.updated} updated"
            + (f"; {len(report.warnings)} warnings" if report.warnings else "")
        )
    if failed:
        raise typer.Exit(1)


@federation_cli.command("status")
def federation_status() -> None:
    """Every jurisdiction with its kind, status and last sync."""
    from app.federation.partners import listing

    async def work(engine: AsyncEngine) -> list[dict[str, object]]:
        async with engine.connect() as conn:
            return await listing(conn)

    for item in _with_engine(get_settings(), work):
        typer.echo(
            "\t".join(
                str(item[k] or "-")
                for k in (
                    "jurisdiction_id",
                    "kind",
                    "status",
                    "last_synced_at",
                    "partner_url",
                    "name",
                )
            )
        )


def main() -> None:
    """Entry point of the ``open311`` script."""
    cli()
