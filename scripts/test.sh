#!/usr/bin/env bash
# The one test command (make test, .ci/run): set up, provision PostGIS, lint, run every test
# on PostGIS and on the embedded SQLite backend. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
if [ -z "${OPEN311_TEST_DATABASE_URL:-}" ]; then
    OPEN311_TEST_DATABASE_URL="$(bash scripts/postgis.sh | tail -1)"
    export OPEN311_TEST_DATABASE_URL
fi
echo "==> PostGIS for tests: ${OPEN311_TEST_DATABASE_URL%%:*}://…@${OPEN311_TEST_DATABASE_URL##*@}"
if ! command -v chromium >/dev/null 2>&1; then
    # The map page's end-to-end test drives Debian's headless Chromium (it fails without it).
    echo "==> installing Chromium for the browser test (apt)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
echo "==> lint (ruff)"
.venv/bin/ruff check app tests
.venv/bin/ruff format --check app tests
echo "==> types (mypy --strict app) and import contracts (.importlinter)"
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
echo "==> tests"
exec .venv/bin/pytest "$@"
