"""The map page end to end: a real server, Debian's headless Chromium, DOM and screenshot.

Chromium is required: without it this test fails (``make test`` installs it), it never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.ops.server import Server, demo_server
from tests.web.png import decode

BROWSER_TIMEOUT_S = 90
WIDTH, HEIGHT = 1200, 900
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
)
WARD_PATH = re.compile(r"<path\b[^>]*\bclass=\"[^\"]*\bward\b[^\"]*\"[^>]*>")
POINT_PATH = re.compile(r"<path\b[^>]*\bclass=\"[^\"]*\brequest-point\b[^\"]*\"[^>]*>")
CHART_BLUE = (0x1C, 0x6D, 0xD0)  # the service chart's bars (and open request points)
SEA = (0xDD, 0xE7, 0xEE)  # the map's background where no ward is


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed, so the map page cannot be tested end to end. Install "
        "Debian's package (apt-get install chromium); `make test` (scripts/test.sh) does it.",
        pytrace=False,
    )


def _browse(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium once (fresh profile), bounded in time; its standard output."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments, no shell
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"Chromium did not finish in {BROWSER_TIMEOUT_S} s: {' '.join(command)}")
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The Toronto demo (1000 requests from autumn 2018) served on a free loopback port."""
    with demo_server(tmp_path_factory.mktemp("map-server")) as running:
        yield running  # type: ignore[misc]


def test_map_renders_wards_points_and_charts(server: Server, tmp_path: Path) -> None:
    dom = _browse(tmp_path, "--dump-dom", f"{server.url}/")
    assert 'data-state="ready"' in dom, dom[-3000:]
    wards = WARD_PATH.findall(dom)
    assert len(wards) == 25
    codes = {re.search(r'data-ward="([^"]+)"', w).group(1) for w in wards}  # type: ignore[union-attr]
    assert codes == {str(n) for n in range(1, 26)}
    # The page's first window is the 90 days up to the newest request (the data is from
    # 2018), showing open requests; every located one is a point.
    status = re.search(r'id="status-line"[^>]*>([^<]*)<', dom)
    assert status is not None
    assert "open requests in City of Toronto from 2018-07-31 to 2018-10-28" in status.group(1)
    listed = httpx.get(
        f"{server.url}/open311/v2/requests.json",
        params={"status": "open", "start_date": "2018-07-31", "end_date": "2018-10-29"},
    ).json()
    located = [r for r in listed if r["lat"] is not None]
    assert located
    assert len(POINT_PATH.findall(dom)) == len(located)
    assert f"{len(listed)} open requests" in status.group(1)
    # Chart.js drew both charts (it sizes and shows the canvas it renders into).
    for chart in ("chart-services", "chart-wards"):
        canvas = re.search(rf'<canvas id="{chart}"[^>]*>', dom)
        assert canvas is not None, chart
        assert "display: block" in canvas.group(0), canvas.group(0)
    assert "Requests per ward" in dom  # the legend


def test_map_screenshot_is_a_real_picture(server: Server, tmp_path: Path) -> None:
    shot = tmp_path / "map.png"
    _browse(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"{server.url}/map",
    )
    image = decode(shot.read_bytes())
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    colours = image.colours(step=2)
    pixels = sum(colours.values())
    assert len(colours) > 200, "too few colours: a blank or unstyled page"
    assert max(colours.values()) < 0.6 * pixels, "one colour covers most of the page"
    assert colours.get(SEA, 0) > 0.02 * pixels, "no map background (map.css not applied?)"
    assert colours.get(CHART_BLUE, 0) > 0.005 * pixels, "no chart bars or request points"
    # Wards shaded from pale yellow to red (blended over the background).
    warm = sum(n for (r, g, b), n in colours.items() if r >= 230 and r - b >= 40 and g >= 90)
    assert warm > 0.03 * pixels, "no shaded wards"
