#!/usr/bin/env bash
# Create .venv and install the locked dependencies (requirements-dev.lock, with hashes) and the
# project when the lock or pyproject.toml changed.
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
# The venv is the dev lock, exactly: reinstalled when the lock or pyproject.toml changes.
STAMP=.venv/.installed-$(cat requirements-dev.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$STAMP" ]; then
    echo "==> installing the locked dependencies and the project into .venv"
    # -qq: errors only (pip's progress, notes and the build backend's notices are not for the
    # person waiting); tests/ops/test_packaging.py keeps the build free of deprecations.
    # Every file is checked against the lock's sha256 (--require-hashes); the project itself
    # comes after, with --no-deps (its dependencies are the lock's) and built by the locked
    # setuptools (no build isolation: nothing unlocked is downloaded).
    .venv/bin/python -m pip install -qq --require-hashes -r requirements-dev.lock
    .venv/bin/python -m pip install -qq --no-deps --no-build-isolation -e .
    # What the lock no longer names leaves the venv (an import that works only here would
    # fail on a fresh machine).
    .venv/bin/python - <<'PY'
import re, subprocess, sys
from importlib.metadata import distributions
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
with open("requirements-dev.lock", encoding="utf-8") as lock:
    locked = {norm(m[1]) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read(), re.M)}
keep = locked | {"pip", "open311-server"}
installed = {norm(d.metadata["Name"]) for d in distributions() if d.metadata["Name"]}
extra = sorted(installed - keep)
if extra:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-qq", "-y", *extra], check=True)
PY
    rm -f .venv/.installed-*
    touch "$STAMP"
fi
