#!/usr/bin/env bash
# Compile the lock files from pyproject.toml with uv (a dev tool, itself locked):
#   requirements.lock      the runtime dependencies (the Dockerfile installs it)
#   requirements-dev.lock  runtime + the dev extra (scripts/bootstrap.sh installs it into .venv)
# Every pin carries the sha256 of each file PyPI has for it, so pip installs them with
# --require-hashes. The target is CPython 3.11 on Linux x86_64 (developers, CI, the image).
#   bash scripts/lock.sh            after editing pyproject.toml: keep every pin that still fits
#   bash scripts/lock.sh --upgrade  newest releases within pyproject's ranges (make upgrade)
# Extra arguments go to `uv pip compile` (e.g. --upgrade-package httpx).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
compile=(.venv/bin/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11
    --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock")
# The dev lock also pins pip ("-": the requirement on stdin), the installer of the venv.
echo pip | "${compile[@]}" - --extra dev "$@" --output-file requirements-dev.lock
# The runtime lock is the dev lock less the dev tools: the image runs what the tests ran.
"${compile[@]}" --constraint requirements-dev.lock --output-file requirements.lock
