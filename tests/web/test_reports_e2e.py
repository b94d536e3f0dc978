"""The printable report pages end to end on the Toronto demo (captured 2018 requests, with
illustrative divisions, service levels and channels): a real server, Debian's headless
Chromium, and the CLI's PDF.

Chromium is required: without it this test fails (``make test`` installs it), it never skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.ops.server import (
    Server,
    cli_env,
    demo_server,
    make_run_default_jurisdiction,
    run_cli,
)
from tests.web.test_map_e2e import _browse


def _env(home: Path) -> dict[str, str]:
    return cli_env(home, OPEN311_DEFAULT_JURISDICTION=make_run_default_jurisdiction())


BAR = re.compile(r"<rect\b[^>]*\bclass=\"bar\"[^>]*\bwidth=\"([0-9.]+)\"")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str]]:
    """The demo served, and a key with the reports scope."""
    home = tmp_path_factory.mktemp("reports-server")
    with demo_server(home) as running:
        created = run_cli(
            home, "keys", "create", "Council office", "--scope", "reports", env=_env(home)
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().split()[-1]
        yield running, home, key


def test_the_demo_has_a_compliance_dashboard_for_2018(demo: tuple[Server, Path, str]) -> None:
    server, _, key = demo
    response = httpx.get(
        f"{server.url}/open311/v2/reports/key-metrics.json",
        params={"year": "2018"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["total"]["received"] >= 1000
    rated = [d for d in report["divisions"] if d["compliance_rate"] is not None]
    assert len(rated) >= 3, report["divisions"]
    assert {c["channel"] for c in report["channels"]} >= {"phone", "web"}
    # The demo's illustrative first-contact resolutions (closed at intake): not 0 %.
    assert report["total"]["first_contact_rate"] > 0


@pytest.mark.parametrize("name", ["key-metrics", "service-promise"])
def test_report_page_in_chromium(demo: tuple[Server, Path, str], tmp_path: Path, name: str) -> None:
    server, _, key = demo
    query = urlencode({"year": "2018", "start": "2018-01-01", "api_key": key})
    dom = _browse(tmp_path, "--dump-dom", f"{server.url}/web/reports/{name}.html?{query}")
    assert "Compliance" in dom
    widths = [float(w) for w in BAR.findall(dom)]
    assert len(widths) >= 5
    assert max(widths) > 100  # drawn, not empty
    tile = re.search(r"First-contact resolution<b>([^<]*)</b>", dom)
    assert tile is not None
    assert tile.group(1) not in ("0.0 %", "–")
    # Nothing loaded from anywhere: the server's log shows the page and nothing else for it.
    assert "<script" not in dom


def test_cli_prints_the_key_metrics_as_pdf(demo: tuple[Server, Path, str], tmp_path: Path) -> None:
    _, home, _ = demo
    target = tmp_path / "key-metrics-2018.pdf"
    printed = run_cli(
        home, "report", "key-metrics", "--year", "2018", "--pdf", str(target), env=_env(home)
    )
    assert printed.returncode == 0, printed.stderr
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 5000
    as_csv = run_cli(
        home,
        "report",
        "service-promise",
        "--start",
        "2018-01-01",
        "--end",
        "2018-12-31",
        "--group-by",
        "channel",
        "--csv",
        env=_env(home),
    )
    assert as_csv.returncode == 0, as_csv.stderr
    lines = as_csv.stdout.splitlines()
    assert lines[0].startswith("group_by,group,label,received")
    assert lines[-1].startswith("channel,total,Total,")
