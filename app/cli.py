"""The ``open311`` command: serve, migrate, load the demo, manage API keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from app.settings import Settings, get_settings

cli = typer.Typer(help="Open311 GeoReport v2 server.", no_args_is_help=True)
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

T = TypeVar("T")


def _with_engine(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    from app.db import make_engine

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
    from app.migrate import upgrade

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
) -> None:
    """Load the Toronto demo (jurisdiction, services, requests); safe to run again."""
    from app.demo.loader import load_demo
    from app.domain.api_keys import create_key, hash_key
    from app.migrate import upgrade
    from app.models import ApiKey

    settings = get_settings()
    upgrade(settings)

    async def work(engine: object) -> None:
        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncEngine

        assert isinstance(engine, AsyncEngine)
        report = await load_demo(
            engine, with_requests=requests, tolerance_m=settings.wards.tolerance_m
        )
        typer.echo(
            f"Demo jurisdiction {report.jurisdiction}: {report.services} services, "
            f"{report.requests_added} requests added, {report.requests_skipped} already present "
            f"({_where(settings)})."
        )
        if api_key:
            table = ApiKey.__table__
            async with engine.begin() as conn:
                exists = (
                    await conn.execute(
                        select(table.c.id).where(table.c.key_hash == hash_key(api_key))
                    )
                ).first()
                if exists is None:
                    await create_key(conn, "demo", api_key)
            typer.echo(f"Demo API key: {api_key}")

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
        proxy_headers=True,
    )


@keys_cli.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="The app the key is for.")]) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    from app.domain.api_keys import create_key

    async def work(engine: object) -> tuple[str, int]:
        from sqlalchemy.ext.asyncio import AsyncEngine

        assert isinstance(engine, AsyncEngine)
        async with engine.begin() as conn:
            return await create_key(conn, name)

    key, key_id = _with_engine(get_settings(), work)
    typer.echo(f"Created key {key_id} for {name!r}. Store it now; it cannot be shown again:")
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List API keys (prefix only)."""
    from app.domain.api_keys import ApiKeyInfo, list_keys

    async def work(engine: object) -> list[ApiKeyInfo]:
        from sqlalchemy.ext.asyncio import AsyncEngine

        assert isinstance(engine, AsyncEngine)
        async with engine.connect() as conn:
            return await list_keys(conn)

    for key in _with_engine(get_settings(), work):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}\t{key.prefix}…\t{key.name}\t{state}")


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Id shown by 'keys list'.")]) -> None:
    """Revoke an API key."""
    from app.domain.api_keys import revoke_key

    async def work(engine: object) -> bool:
        from sqlalchemy.ext.asyncio import AsyncEngine

        assert isinstance(engine, AsyncEngine)
        async with engine.begin() as conn:
            return await revoke_key(conn, key_id)

    if not _with_engine(get_settings(), work):
        typer.echo(f"No active key {key_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked key {key_id}.")


@jurisdictions_cli.command("list")
def jurisdictions_list() -> None:
    """List the jurisdictions served."""
    from sqlalchemy import select

    from app.models import Jurisdiction

    async def work(engine: object) -> list[tuple[str, str, str]]:
        from sqlalchemy.ext.asyncio import AsyncEngine

        assert isinstance(engine, AsyncEngine)
        table = Jurisdiction.__table__
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.code, table.c.name, table.c.timezone).order_by(table.c.code)
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

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

    set_id = _run_or_exit(settings, work)
    note = f" ({repaired} repaired)" if repaired else ""
    state = "current" if current else "not current"
    typer.echo(f"Boundary set {name!r} (id {set_id}): {len(areas)} areas{note}, {state}.")
    if reassign:
        wards_reassign(jurisdiction)


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

    _run_or_exit(get_settings(), work)
    typer.echo(f"{name!r} is now the current set of {jurisdiction}.")


@boundaries_cli.command("reassign")
def wards_reassign(
    jurisdiction: Annotated[str, typer.Argument(help="jurisdiction_id.")],
    batch_size: Annotated[int, typer.Option(help="Requests per transaction.")] = 5000,
) -> None:
    """Re-assign every request of a jurisdiction to its current wards (in batches)."""
    from sqlalchemy import func, select

    from app.domain.boundaries import jurisdiction_pk, reassign_wards
    from app.models import ServiceRequest

    settings = get_settings()

    async def work(engine: AsyncEngine) -> tuple[int, int]:
        table = ServiceRequest.__table__
        async with engine.connect() as conn:
            pk = await jurisdiction_pk(conn, jurisdiction)
            total = (
                await conn.execute(
                    select(func.count()).select_from(table).where(table.c.jurisdiction_id == pk)
                )
            ).scalar_one()
        with typer.progressbar(length=total, label="Re-assigning wards") as bar:
            return await reassign_wards(
                engine,
                jurisdiction,
                tolerance_m=settings.wards.tolerance_m,
                batch_size=batch_size,
                progress=bar.update,
            )

    processed, assigned = _run_or_exit(settings, work)
    typer.echo(f"{processed} requests processed, {assigned} in a ward.")


def _run_or_exit(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from app.errors import Open311Error

    try:
        return _with_engine(settings, work)
    except Open311Error as exc:
        typer.echo(f"Error: {'; '.join(exc.descriptions)}", err=True)
        raise typer.Exit(2) from exc


def main() -> None:
    """Entry point of the ``open311`` script."""
    cli()
