"""Alembic environment (async; PostgreSQL + PostGIS or the embedded SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection

import app.store.tables  # noqa: F401  (complete metadata)
from app.settings import Settings, get_settings
from app.store.engine import make_engine
from app.store.types import metadata
from app.store.where_sql import MIGRATION_ONLY_INDEXES, MIGRATION_ONLY_PREFIXES

config = context.config


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # PostGIS' own tables (spatial_ref_sys, tiger/topology schemas) are not ours.
    if type_ == "table" and name in ("spatial_ref_sys",):
        return False
    # Made by migrations alone (SQLite's R*Tree and FTS5 tables, an expression index).
    if type_ == "table" and name and name.startswith(MIGRATION_ONLY_PREFIXES):
        return False
    if type_ == "index" and name in MIGRATION_ONLY_INDEXES:
        return False
    include = cast(Callable[..., Any], alembic_helpers.include_object)  # untyped upstream
    return bool(include(obj, name, type_, reflected, compare_to))


def _include_object_sqlite(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # Spatial (GiST) indexes exist only on PostGIS.
    if type_ == "index" and obj.dialect_options["postgresql"].get("using"):
        return False
    return _include_object(obj, name, type_, reflected, compare_to)


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include_object_sqlite if sqlite else _include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        render_as_batch=sqlite,
        compare_type=True,
    )


def _run_sync(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite batch mode rebuilds a table (create a copy, copy the rows, DROP, rename). With
        # foreign keys enforced, that DROP deletes or refuses the rows of every table referring
        # to it (ON DELETE CASCADE would empty service_request). The pragma is a no-op inside a
        # transaction, so it goes to the driver before Alembic begins one; the references are
        # checked as a whole before the migration commits.
        _driver_pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke references: {broken[:5]}")
    finally:
        if sqlite:
            _driver_pragma(connection, "PRAGMA foreign_keys=ON")


def _driver_pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.cursor()
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()


async def _run_async(settings: Settings) -> None:
    engine = make_engine(settings, null_pool=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


def run() -> None:
    """Run migrations on the given connection, or on the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    settings = config.attributes.get("settings") or get_settings()
    asyncio.run(_run_async(settings))


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run()
