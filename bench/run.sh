#!/usr/bin/env bash
# The benchmark of issue 8 in one command:
#   bash bench/run.sh [--quick] [--rows N] [--rounds R] [--duration S] [--with-10m] [--profile] ...
# Installs what it needs (the project's .venv, PostgreSQL + PostGIS, wrk from the OS packages),
# then runs `python -m bench` (all options: bash bench/run.sh --help). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

bash scripts/bootstrap.sh >&2
if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk (apt)" >&2
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2; then
        $SUDO apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2
    fi
fi
for arg in "$@"; do
    if [ "$arg" = "--profile" ] && [ ! -x .venv/bin/py-spy ]; then
        echo "==> installing py-spy into .venv (for --profile)" >&2
        .venv/bin/python -m pip install -q py-spy >&2
    fi
done
if [ -z "${BENCH_ADMIN_DSN:-}" ]; then
    BENCH_ADMIN_DSN="$(bash scripts/postgis.sh | tail -1)"
    export BENCH_ADMIN_DSN
fi

# Stop whatever the harness started if this script is interrupted.
child=""
cleanup() {
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -m bench "$@" &
child=$!
wait "$child"
status=$?
child=""
exit "$status"
