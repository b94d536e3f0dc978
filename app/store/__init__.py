"""The store: every SQL statement and every dialect branch of the server (with ``app.geo``).

``base`` is the interface the domain calls (``Store``), with one implementation per backend:
``postgres`` (asyncpg + PostGIS) and ``sqlite`` (the embedded default, ``sqlite3``).
``requests`` holds the SQL of service requests both share, ``engine`` makes engines and
transactions, ``types`` the dialect-dependent column types, ``tables`` the SQLModel tables,
``migrations`` their Alembic history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings
    from app.store.base import Store


def open_store(settings: Settings) -> Store:
    """The store of the configured database (connections are opened on first use)."""
    # Imported here: each backend's module loads its driver only when it is the one in use.
    if settings.embedded:
        from app.store.sqlite import SqliteStore

        return SqliteStore(settings)
    from app.store.postgres import PostgresStore

    return PostgresStore(settings)
