#!/usr/bin/env bash
# Create .venv and install the project (with test tools) when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "==> installing python3"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3 python3-venv python3-pip
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python 3.11 or newer is required (found $("$PYTHON" --version))." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$STAMP" ]; then
    echo "==> installing the project and its test tools into .venv"
    # -qq: errors only (pip's progress, notes and the build backend's notices are not for the
    # person waiting); tests/ops/test_packaging.py keeps the build free of deprecations.
    .venv/bin/python -m pip install -qq --upgrade pip
    .venv/bin/python -m pip install -qq -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$STAMP"
fi
