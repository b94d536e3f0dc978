"""``python -m app conformance`` end to end, as a process, against servers on loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from app.conformance import select
from tests.support import make_run_default_jurisdiction

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "conformance-e2e-key-0123456789"
SUMMARY = re.compile(
    r"^(\d+) passed, (\d+) failed, (\d+) warned, (\d+) info, (\d+) not tested$", re.MULTILINE
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_command(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPEN311_")}
    env["OPEN311_DB__SQLITE_PATH"] = str(tmp_path / "open311.db")
    # As make run serves the demo (Toronto and Greater Sudbury): Toronto without an id.
    env["OPEN311_DEFAULT_JURISDICTION"] = make_run_default_jurisdiction()
    return env


@pytest.fixture
def demo_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The Toronto demo served by ``python -m app serve`` on a free loopback port."""
    loaded = app_command("demo", "--api-key", API_KEY, env=server_env)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/open311/v2"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/discovery.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_cli_passes_our_demo_server(
    demo_server: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    junit, report, page = tmp_path / "out.xml", tmp_path / "out.json", tmp_path / "out.html"
    result = app_command(
        "conformance",
        demo_server,
        "--api-key",
        API_KEY,
        "--suite",
        "ours",
        "--strict",
        "--junit",
        str(junit),
        "--json",
        str(report),
        "--html",
        str(page),
        "--timeout",
        "30",
        env=server_env,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    checks = [c.name for c in select(["ours"])]
    assert [line.split()[1] for line in lines if line.startswith("PASS ")] == checks
    match = SUMMARY.search(result.stdout)
    assert match is not None, result.stdout
    assert match.group(0) == f"{len(checks)} passed, 0 failed, 0 warned, 0 info, 0 not tested"
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [r["check"] for r in data["results"]] == checks
    assert data["exit_code"] == 0
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html.replace(demo_server, "").replace("http://wiki.open311", "")
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - parses this server's own response
    assert suite is not None
    assert suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(checks)
    assert not [c for c in suite.iter("testcase") if c.find("failure") is not None]


class Garbage(BaseHTTPRequestHandler):
    """Answers everything with 200 and a body that is neither XML nor JSON."""

    def _answer(self) -> None:
        body = b"<html>not a GeoReport server</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_cli_exits_non_zero_on_a_broken_server(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    junit = tmp_path / "broken.xml"
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/open311/v2"
        result = app_command("conformance", base, "--junit", str(junit), env=server_env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^FAIL  services\.formats  .*malformed", result.stdout, re.MULTILINE)
    assert "SKIP  post.create  needs --api-key" in result.stdout
    not_tested = result.stdout.split("\nNot tested:\n", 1)[1]
    assert "\n  post.create: needs --api-key" in not_tested
    assert "rule content_type.media_type — digest §1.1 [SPEC]" in result.stdout
    match = SUMMARY.search(result.stdout)
    assert match is not None, result.stdout
    assert int(match.group(2)) > 0
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - parses this server's own response
    assert suite is not None
    assert suite.get("failures") == match.group(2)


def test_the_pytest_plugin_turns_checks_into_tests(
    demo_server: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    junit = tmp_path / "plugin.xml"
    # Loaded explicitly with -p (the way a checkout without the installed entry point does).
    env = {**server_env, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "app.conformance.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "--open311-url",
            demo_server,
            "--open311-only",
            "requests.*",
            "-m",
            "open311_fail",
            f"--junitxml={junit}",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cases = ET.parse(junit).getroot().iter("testcase")  # noqa: S314 - parses this server's own response
    names = [c.get("name") for c in cases]
    fail_level = [c.name for c in select(only=["requests.*"]) if c.level.value == "FAIL"]
    assert names == fail_level


def test_the_cli_refuses_a_non_http_url(server_env: dict[str, str]) -> None:
    result = app_command("conformance", "ftp://example.org/open311/v2", env=server_env)
    assert result.returncode == 2
    assert "is not an http(s) URL" in result.stderr
