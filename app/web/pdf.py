"""Print an HTML document to PDF with Debian's headless Chromium (as the map page's browser
test drives it): a fresh profile, no network, bounded in time."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

TIMEOUT_S = 120
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-pdf-header-footer",
)


class PdfError(Exception):
    """Chromium is missing, failed or took too long."""


def chromium() -> str:
    """The Chromium program (PdfError when it is not installed)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise PdfError("Chromium is not installed (apt-get install chromium).")


def print_pdf(page: str, target: Path) -> None:
    """Write ``page`` (a self-contained HTML document) to ``target`` as PDF."""
    program = chromium()
    with tempfile.TemporaryDirectory(prefix="open311-pdf-") as work:
        source = Path(work) / "report.html"
        source.write_text(page, encoding="utf-8")
        output = Path(work) / "report.pdf"
        command = [
            program,
            *FLAGS,
            f"--user-data-dir={Path(work) / 'profile'}",
            f"--print-to-pdf={output}",
            source.as_uri(),
        ]
        process = subprocess.Popen(  # noqa: S603 - our program, fixed arguments, no shell
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            _, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PdfError(f"Chromium did not finish in {TIMEOUT_S} s.") from None
        if process.returncode != 0 or not output.is_file():
            tail = err.decode(errors="replace")[-500:]
            raise PdfError(f"Chromium failed ({process.returncode}): {tail}")
        shutil.copyfile(output, target)
