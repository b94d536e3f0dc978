"""Where and text search on GET requests: the indexes behind bbox, lat/long/radius and q.

- PostgreSQL: ``ix_service_request_search``, a GIN index on the full-text document of a
  request (description and address, ``simple`` configuration); the GiST index on the location
  exists since 0001.
- SQLite: ``service_request_rtree`` (R*Tree of the located requests' points) and
  ``service_request_fts`` (FTS5 over description and address, external content), each kept in
  step with ``service_request`` by triggers, and filled from the rows already stored.

Revision ID: 0011_where
Revises: 0011
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_where"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = (
    "CREATE VIRTUAL TABLE service_request_rtree USING rtree(id, min_lon, max_lon, min_lat, "
    "max_lat)",
    "INSERT INTO service_request_rtree (id, min_lon, max_lon, min_lat, max_lat) "
    "SELECT id, lon, lon, lat, lat FROM service_request WHERE lat IS NOT NULL AND lon IS NOT NULL",
    """CREATE TRIGGER service_request_rtree_insert AFTER INSERT ON service_request
    WHEN new.lat IS NOT NULL AND new.lon IS NOT NULL BEGIN
        INSERT INTO service_request_rtree (id, min_lon, max_lon, min_lat, max_lat)
        VALUES (new.id, new.lon, new.lon, new.lat, new.lat);
    END""",
    """CREATE TRIGGER service_request_rtree_update AFTER UPDATE OF id, lat, lon
    ON service_request BEGIN
        DELETE FROM service_request_rtree WHERE id = old.id;
        INSERT INTO service_request_rtree (id, min_lon, max_lon, min_lat, max_lat)
        SELECT new.id, new.lon, new.lon, new.lat, new.lat
        WHERE new.lat IS NOT NULL AND new.lon IS NOT NULL;
    END""",
    """CREATE TRIGGER service_request_rtree_delete AFTER DELETE ON service_request BEGIN
        DELETE FROM service_request_rtree WHERE id = old.id;
    END""",
    "CREATE VIRTUAL TABLE service_request_fts USING fts5(description, address, "
    "content='service_request', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "INSERT INTO service_request_fts (service_request_fts) VALUES ('rebuild')",
    """CREATE TRIGGER service_request_fts_insert AFTER INSERT ON service_request BEGIN
        INSERT INTO service_request_fts (rowid, description, address)
        VALUES (new.id, new.description, new.address);
    END""",
    """CREATE TRIGGER service_request_fts_update AFTER UPDATE OF id, description, address
    ON service_request BEGIN
        INSERT INTO service_request_fts (service_request_fts, rowid, description, address)
        VALUES ('delete', old.id, old.description, old.address);
        INSERT INTO service_request_fts (rowid, description, address)
        VALUES (new.id, new.description, new.address);
    END""",
    """CREATE TRIGGER service_request_fts_delete AFTER DELETE ON service_request BEGIN
        INSERT INTO service_request_fts (service_request_fts, rowid, description, address)
        VALUES ('delete', old.id, old.description, old.address);
    END""",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS service_request_fts_delete",
    "DROP TRIGGER IF EXISTS service_request_fts_update",
    "DROP TRIGGER IF EXISTS service_request_fts_insert",
    "DROP TABLE IF EXISTS service_request_fts",
    "DROP TRIGGER IF EXISTS service_request_rtree_delete",
    "DROP TRIGGER IF EXISTS service_request_rtree_update",
    "DROP TRIGGER IF EXISTS service_request_rtree_insert",
    "DROP TABLE IF EXISTS service_request_rtree",
)
# The same expression as app.store.where_sql.SEARCH_DOCUMENT (the planner matches it).
POSTGRES_UP = (
    "CREATE INDEX ix_service_request_search ON service_request USING gin "
    "(to_tsvector('simple'::regconfig, COALESCE(description, '') || ' ' || "
    "COALESCE(address, '')))",
)
POSTGRES_DOWN = ("DROP INDEX IF EXISTS ix_service_request_search",)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRES_DOWN:
        op.execute(statement)
