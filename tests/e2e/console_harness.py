"""The console's browser-test harness: Debian's Chromium driven by Playwright (no browser
download), a real `wxtoken console` subprocess, and the helpers the tests share.

Chromium missing: the tests skip with one line that says how to install it, except on CI
(CI=true), where a skip would hide that the browser tests never ran, so they fail instead.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import WXTOKEN, stop_process

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "Chromium not found at /usr/bin/chromium: apt-get install chromium"
# `make screenshots` sets this to docs/screenshots; otherwise they go to the test's temp dir.
SCREENSHOTS_ENV = "SCREENSHOTS_DIR"


def require_chromium() -> None:
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = INSTALL
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed: pip install -e '.[dev]'"
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(missing)


def browser_context(tmp: Path) -> Iterator[BrowserContext]:
    """One Chromium for a test module, with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@dataclass
class ConsoleProc:
    """`wxtoken console` as an admin runs it, reading its stderr as it comes."""

    proc: subprocess.Popen[str]
    start_url: str
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)

    def raw(self, method: str, path: str, headers: dict[str, str], body: str = "") -> Any:
        """A request outside the browser (headers a browser would never send)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode()
        finally:
            conn.close()


def start_console(env: dict[str, str], *args: str) -> ConsoleProc:
    proc = subprocess.Popen(
        [WXTOKEN, "console", "--port", "0", "--no-browser", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    threading.Thread(target=lines.extend, args=(proc.stderr,), daemon=True).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in lines:
            if "/start?token=" in line:
                url = line.strip()
                port = int(url.split("://127.0.0.1:")[1].split("/")[0])
                return ConsoleProc(proc, url, port, lines)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("console did not start: " + "".join(lines))


def shots_dir(default: Path) -> Path:
    """Where the screenshots go: $SCREENSHOTS_DIR (`make screenshots`), else `default`."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    path = Path(chosen) if chosen else default
    path.mkdir(parents=True, exist_ok=True)
    return path


UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.name || el.id || el.outerHTML)"""


def unlabelled(page: Page) -> list[str]:
    """Form fields on the page that no label names."""
    found: list[str] = page.evaluate(UNLABELLED_JS)
    return found


def tab_to(page: Page, element_id: str, limit: int = 40) -> list[str]:
    """Press Tab until `element_id` has the focus; the ids focused on the way (fails if never)."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = str(page.evaluate("() => document.activeElement && document.activeElement.id"))
        seen.append(focused)
        if focused == element_id:
            return seen
    raise AssertionError(f"Tab never reached #{element_id}; focus went through {seen}")


def type_into(page: Page, element_id: str, text: str) -> None:
    """Reach the field by keyboard and replace its value by typing."""
    tab_to(page, element_id)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
