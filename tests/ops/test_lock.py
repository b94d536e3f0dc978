"""Reproducible installs (issue 17, point 4): the lock files are what everything installs.

``requirements.lock`` (runtime, the Docker image) and ``requirements-dev.lock`` (runtime + the
dev extra, the venv of ``make run``/``make test``/CI) are compiled by ``scripts/lock.sh`` with
a sha256 for every file. Checked here on the real files and the running venv: every line is an
exact pin with hashes; every requirement of pyproject.toml, and every requirement of those
(read from the installed packages' metadata), is pinned by a version it accepts; the venv runs
exactly the pinned versions (a drifted venv fails here); FastAPI and Starlette may not move
past the locked minor (LeanRoute reads FastAPI internals); the image and the bootstrap
install from the locks with ``--require-hashes``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: frozenset[str]


def _read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """name -> pin; every line must be ``name==version`` followed only by hashes."""
    pins: dict[NormalizedName, Pin] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        requirement = Requirement(words[0])
        options = words[1:]
        specs = list(requirement.specifier)
        assert len(specs) == 1, f"{path.name}: not one exact pin: {line}"
        assert specs[0].operator == "==", f"{path.name}: not an exact pin: {line}"
        assert requirement.url is None, f"{path.name}: a URL, not a pin: {line}"
        assert options, f"{path.name}: {requirement.name} has no hash"
        assert all(HASH.fullmatch(o) for o in options), f"{path.name}: {line}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = Pin(Version(specs[0].version), frozenset(options))
    return pins


@pytest.fixture(scope="module")
def runtime_lock() -> dict[NormalizedName, Pin]:
    return _read_lock(RUNTIME_LOCK)


@pytest.fixture(scope="module")
def dev_lock() -> dict[NormalizedName, Pin]:
    return _read_lock(DEV_LOCK)


def _unmet(roots: list[str], lock: dict[NormalizedName, Pin]) -> list[str]:
    """The requirements reachable from ``roots`` that the lock leaves out or pins wrongly.

    The walk reads each package's requirements from the venv's installed metadata (the
    version the lock pins: see test_the_venv_runs_the_locked_versions), with the extras asked
    for and the markers of this machine (the lock's target: CPython 3.11 on Linux x86_64).
    """
    unmet: list[str] = []
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue = [Requirement(r) for r in roots]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        pin = lock.get(name)
        if pin is None or not requirement.specifier.contains(pin.version, prereleases=True):
            unmet.append(f"{requirement} (locked: {pin.version if pin else 'nothing'})")
            continue
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            asked = {"", *requirement.extras}
            environments = [{**default_environment(), "extra": extra} for extra in asked]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                queue.append(child)
    return unmet


def test_every_locked_line_is_an_exact_pin_with_hashes(
    runtime_lock: dict[NormalizedName, Pin], dev_lock: dict[NormalizedName, Pin], tmp_path: Path
) -> None:
    # _read_lock asserts the form of every line; here: the locks are not empty shells.
    for name in ("fastapi", "starlette", "sqlalchemy", "pydantic", "asyncpg", "uvicorn"):
        assert name in runtime_lock, name
    for name in ("pytest", "ruff", "schemathesis", "setuptools", "uv", "pip"):
        assert name in dev_lock, name
        assert name not in runtime_lock, f"{name} is a dev tool, not for the image"
    # The reader refuses what a hand-edited lock would bring.
    broken = tmp_path / "requirements.lock"
    for line, error in [
        ("extra-package==1.0", "has no hash"),
        (f"fastapi>=0.115 --hash=sha256:{'0' * 64}", "not an exact pin"),
        ("fastapi==0.115.0 --hash=md5:00", "--hash=md5:00"),
    ]:
        broken.write_text(DEV_LOCK.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
        with pytest.raises(AssertionError, match=error):
            _read_lock(broken)


def test_the_image_runs_what_the_tests_ran(
    runtime_lock: dict[NormalizedName, Pin], dev_lock: dict[NormalizedName, Pin]
) -> None:
    differ = {n: p.version for n, p in runtime_lock.items() if dev_lock.get(n) != p}
    assert not differ, f"pinned differently (or not at all) in {DEV_LOCK.name}: {differ}"


def test_every_runtime_requirement_is_locked(runtime_lock: dict[NormalizedName, Pin]) -> None:
    unmet = _unmet(PROJECT["dependencies"], runtime_lock)
    assert not unmet, f"not in {RUNTIME_LOCK.name} or pinned outside the range: {unmet}"


def test_every_dev_requirement_is_locked(dev_lock: dict[NormalizedName, Pin]) -> None:
    roots = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["dev"]]
    unmet = _unmet(roots, dev_lock)
    assert not unmet, f"not in {DEV_LOCK.name} or pinned outside the range: {unmet}"


def test_the_walk_catches_a_missing_or_wrong_pin(dev_lock: dict[NormalizedName, Pin]) -> None:
    # uvicorn[standard] reaches uvloop only through its extra: dropping it must be noticed.
    without = {n: p for n, p in dev_lock.items() if n != "uvloop"}
    assert any(u.startswith("uvloop") for u in _unmet(["uvicorn[standard]"], without))
    older = {**dev_lock, canonicalize_name("fastapi"): Pin(Version("0.100.0"), frozenset())}
    assert _unmet(["fastapi>=0.115"], older) == ["fastapi>=0.115 (locked: 0.100.0)"]


def test_the_venv_runs_the_locked_versions(dev_lock: dict[NormalizedName, Pin]) -> None:
    # scripts/bootstrap.sh re-installs when the lock changes; a venv changed by hand since
    # (pip install -U fastapi) is a different program from CI's and fails here.
    installed = {name: Version(metadata.version(name)) for name in dev_lock}
    for name in ("fastapi", "starlette", "sqlalchemy", "pydantic"):
        assert installed[canonicalize_name(name)] == dev_lock[canonicalize_name(name)].version
    drifted = {n: f"{v} (locked {dev_lock[n].version})" for n, v in installed.items()}
    drifted = {n: d for n, d in drifted.items() if installed[n] != dev_lock[n].version}
    assert not drifted, f"run `bash scripts/bootstrap.sh` after removing .venv: {drifted}"


@pytest.mark.parametrize("package", ["fastapi", "starlette"])
def test_fastapi_and_starlette_stay_in_the_locked_minor(
    package: str, runtime_lock: dict[NormalizedName, Pin]
) -> None:
    (requirement,) = (
        Requirement(r)
        for r in PROJECT["dependencies"]
        if canonicalize_name(Requirement(r).name) == package
    )
    locked = runtime_lock[canonicalize_name(package)].version
    major, minor = locked.release[:2]
    assert requirement.specifier.contains(locked)
    assert requirement.specifier.contains(Version(f"{major}.{minor}.0"))
    assert not requirement.specifier.contains(Version(f"{major}.{minor + 1}.0"))
    assert not requirement.specifier.contains(Version(f"{major + 1}.0.0"))


def _pip_installs(script: str) -> list[list[str]]:
    """The arguments after ``pip install`` of every pip install command in a script."""
    script = script.replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        if line.lstrip().startswith("#") or "pip install" not in line:
            continue
        for command in re.split(r"&&|;|\|\|", line):
            words = shlex.split(command.strip().removeprefix("RUN "))
            for at in range(len(words) - 1):
                if words[at : at + 2] == ["pip", "install"]:
                    found.append(words[at + 2 :])
    return found


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    installs = _pip_installs(dockerfile)
    assert installs == [
        ["--require-hashes", "-r", "requirements.lock"],
        ["--no-deps", "."],
    ], installs
    assert "COPY requirements.lock ./" in dockerfile
    assert dockerfile.index("COPY requirements.lock") < dockerfile.index("--require-hashes")
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not any(RUNTIME_LOCK.match(pattern) for pattern in ignored)


def test_the_bootstrap_installs_the_dev_lock_with_hashes() -> None:
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    installs = [[w for w in words if w != "-qq"] for words in _pip_installs(bootstrap)]
    assert installs == [
        ["--require-hashes", "-r", "requirements-dev.lock"],
        ["--no-deps", "--no-build-isolation", "-e", "."],
    ], installs
    (stamp,) = (line for line in bootstrap.splitlines() if line.startswith("STAMP="))
    assert "requirements-dev.lock" in stamp
    assert "pyproject.toml" in stamp


def test_make_upgrade_refreshes_the_locks_and_runs_the_suite() -> None:
    make = shutil.which("make")
    assert make, "make is part of the README's commands"
    dry = subprocess.run(  # noqa: S603 - make itself, fixed arguments, no shell
        [make, "--no-print-directory", "-n", "upgrade"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert dry == ["bash scripts/lock.sh --upgrade", "bash scripts/test.sh"]
    lock_script = (ROOT / "scripts" / "lock.sh").read_text(encoding="utf-8")
    assert "--generate-hashes" in lock_script
    assert "--output-file requirements-dev.lock" in lock_script
    assert "--output-file requirements.lock" in lock_script
