"""The package builds without setuptools deprecation warnings (issue 21, point 4).

``make run`` used to print pages of ``project.license as a TOML table is deprecated``. The
wheel metadata is built here with the venv's own setuptools (no build isolation, no network),
every warning an error, on a copy of the project so the worktree stays clean.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression

ROOT = Path(__file__).resolve().parents[2]
BUILD_METADATA = """
import pathlib, sys
import setuptools.build_meta as backend
out = pathlib.Path(sys.argv[1])
name = backend.prepare_metadata_for_build_wheel(str(out))
print((out / name / "METADATA").read_text(encoding="utf-8"))
"""


def test_the_licence_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    licence = project["project"]["license"]
    assert isinstance(licence, str), "project.license must be an SPDX string, not a table"
    assert canonicalize_license_expression(licence) == licence == "MIT"
    # Setuptools reads SPDX expressions from version 77 on.
    assert project["build-system"]["requires"] == ["setuptools>=77"]


def test_the_metadata_builds_with_no_warning(tmp_path: Path) -> None:
    source = tmp_path / "project"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    out.mkdir()
    built = subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-W", "error", "-c", BUILD_METADATA, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "Warning" not in built.stderr, built.stderr[-3000:]
    assert "License-Expression: MIT\n" in built.stdout
    assert "Name: open311-server\n" in built.stdout
