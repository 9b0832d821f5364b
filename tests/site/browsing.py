"""What the browser checks share: where Chromium is, how it is started, and a local web server.

Chromium is Debian's ``chromium`` package (or ``QUADNET_CHROMIUM``), driven by Playwright; never
``playwright install``. Without it a browser test skips with a message on a developer machine and
fails under CI (``CI`` set), where .ci/run installs it.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - pinned in requirements.txt
    sync_playwright = PlaywrightTimeout = None

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "IN_CI", "PlaywrightTimeout", "launch_chromium", "serve", "unavailable"]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

IN_CI = os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("QUADNET_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _chromium()


def unavailable(reason: str):
    """Fail under CI, where .ci/run installs everything; skip on a developer machine."""
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def launch_chromium() -> Iterator:
    """Headless Chromium (a Playwright ``Browser``), closed on exit; skips or fails (see
    :func:`unavailable`) when it is missing or does not start."""
    if CHROMIUM is None:
        unavailable(
            "headless Chromium not found (/usr/bin/chromium): `apt-get install "
            "chromium` (Debian), or set QUADNET_CHROMIUM to its path"
        )
    if sync_playwright is None:
        unavailable("the playwright package is missing (pip install -r requirements.txt)")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken install is as bad as a missing one
            unavailable(f"cannot start {CHROMIUM}: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free port of 127.0.0.1; yields the base URL (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
