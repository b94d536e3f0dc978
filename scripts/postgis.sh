#!/usr/bin/env bash
# Make sure a local PostgreSQL with PostGIS is installed and running, and that the role the
# tests use exists. Prints the admin URL for OPEN311_TEST_DATABASE_URL on its last line.
# Uses the OS packages (Debian/Ubuntu); needs root or sudo the first time.
set -euo pipefail

ROLE="${OPEN311_PG_ROLE:-open311}"
PASSWORD="${OPEN311_PG_PASSWORD:-open311}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "==> $*" >&2; }
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "installing PostgreSQL and PostGIS (apt)"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-contrib >&2
fi
VERSION="$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')"
if [ -z "$VERSION" ]; then
    VERSION="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    log "creating cluster $VERSION/main"
    $SUDO pg_createcluster "$VERSION" main >&2
fi
if [ ! -f "/usr/share/postgresql/$VERSION/extension/postgis.control" ]; then
    log "installing PostGIS for PostgreSQL $VERSION (apt)"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-$VERSION-postgis-3" >&2
fi
if [ ! -f "/usr/share/postgresql/$VERSION/extension/postgis.control" ]; then
    echo "PostGIS is still missing for PostgreSQL $VERSION: cannot run the PostGIS tests." >&2
    exit 1
fi
STATUS="$(pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $4}')"
if [ "$STATUS" != "online" ]; then
    log "starting PostgreSQL $VERSION/main"
    $SUDO pg_ctlcluster "$VERSION" main start >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $3}')"
for _ in $(seq 1 30); do
    if as_postgres psql -p "$PORT" -qAtc 'select 1' >/dev/null 2>&1; then break; fi
    sleep 0.5
done
EXISTS="$(as_postgres psql -p "$PORT" -qAtc "select 1 from pg_roles where rolname='$ROLE'")"
if [ "$EXISTS" != "1" ]; then
    log "creating role $ROLE"
    # Superuser: the tests create and drop a database per run and CREATE EXTENSION postgis.
    as_postgres psql -p "$PORT" -qc "CREATE ROLE \"$ROLE\" LOGIN SUPERUSER PASSWORD '$PASSWORD'" >&2
fi
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/postgres"
